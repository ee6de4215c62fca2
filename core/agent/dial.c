/*
 * dial.c — one stream from the relay, served by the agent.
 *
 * The relay writes a PROXY v2 header first: the public client's addresses
 * and TLVs naming the service (0xE0), the sniffed protocol (0xE1) and the
 * SNI/Host (0x02). We read exactly until that header is complete, choose the
 * local target (the service's, or the dial hook's answer if it is allowed),
 * connect, optionally send our own PROXY v2 header to the local service
 * (send_proxy), then splice whatever followed the header and the rest.
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "lua/l_agent.h"
#include "sniff/proxy.h"
#include "util/log.h"
#include "util/str.h"

enum { HDR_MAX = 4096, HDR_TIMEOUT = 10, HEADROOM = 1024 };

struct tnl_dial {
    struct tnl_dial *next, *prev;
    struct tnl_agent *agent;
    struct tnl_io *stream;
    struct tnl_io *local;
    struct tnl_buf *buf;                /* header + early bytes; data after HEADROOM */
    struct tnl_proxy_hdr ph;
    char service[64], proto[32], authority[256];
    char src[TNL_ADDR_STR_MAX], dst[TNL_ADDR_STR_MAX];
    const struct tnl_agent_service *svc;
    int send_proxy;
    struct tnl_hostport target;
    struct tnl_connect connect;
    struct tnl_splice splice;
    ev_timer timer;
    double started;
    int hooked;                         /* the dial hook is running (parked) */
    void *hook;                         /* struct tnl_hook_run *, while parked */
};

static void dial_free(struct tnl_dial *d, int abort, const char *why)
{
    struct tnl_agent *a = d->agent;
    struct tnl_log l;
    if (why && tnl_log_begin(&l, abort ? TNL_LOG_WARN : TNL_LOG_INFO, "stream_end")) {
        tnl_log_str(&l, "agent", a->cfg->name);
        tnl_log_uint(&l, "stream", tnl_mux_stream_id(d->stream));
        tnl_log_str(&l, "service", d->service);
        tnl_log_str(&l, "src", d->src);
        tnl_log_uint(&l, "bytes_in", d->splice.ab.bytes + d->connect.early_sent);
        tnl_log_uint(&l, "bytes_out", d->splice.ba.bytes);
        tnl_log_num(&l, "duration", tnl_now() - d->started);
        tnl_log_str(&l, "reason", why);
        tnl_log_end(&l);
    }
    ev_timer_stop(tnl_ev, &d->timer);
    tnl_lua_dial_cancel(d->hook);
    tnl_connect_cancel(&d->connect);
    tnl_splice_release(&d->splice);
    tnl_buf_put(d->buf);
    if (d->stream)
        tnl_io_close(d->stream, abort);
    if (d->local)
        tnl_io_close(d->local, abort);
    if (d->prev)
        d->prev->next = d->next;
    else
        a->dials = d->next;
    if (d->next)
        d->next->prev = d->prev;
    a->streams_open--;
    free(d);
    tnl_loop_work_done();
}

static void splice_done(struct tnl_splice *s, int err, char side)
{
    struct tnl_dial *d = s->owner;
    char why[160];
    if (err)
        snprintf(why, sizeof why, "%s error: %s", side == 'a' ? "relay stream" : "local service", strerror(-err));
    dial_free(d, err != 0, err ? why : "done");
}

static void local_connected(struct tnl_connect *cn, int fd, const char *err)
{
    struct tnl_dial *d = cn->owner;
    if (fd < 0) {
        dial_free(d, 1, err);   /* the relay sees a reset: its client gets 502 / a close */
        return;
    }
    d->local = tnl_io_fd_new(fd);
    if (!d->local) {
        dial_free(d, 1, "out of memory");
        return;
    }
    struct tnl_buf *b = d->buf;
    d->buf = NULL;
    b->off += cn->early_sent;           /* gone out with the connect */
    tnl_splice_start(&d->splice, d->stream, d->local, b, 0, splice_done, d);
}

/* What the local service gets first: our PROXY v2 header (send_proxy), then
 * the bytes that followed the relay's header. */
static void first_bytes(struct tnl_dial *d)
{
    if (d->send_proxy && !d->ph.local) {
        uint8_t hdr[64];
        int n = tnl_proxy_v2_write(hdr, sizeof hdr, (struct sockaddr *)&d->ph.src,
                                   (struct sockaddr *)&d->ph.dst, NULL, 0);
        if (n > 0 && (size_t)n <= d->buf->off) {
            d->buf->off -= (size_t)n;
            memcpy(d->buf->data + d->buf->off, hdr, (size_t)n);
        }
    }
}

void tnl_dial_target(struct tnl_dial *d, const struct tnl_hostport *hp)
{
    char why[400];
    d->hook = NULL;
    if (!tnl_agent_allowed(d->agent->cfg, hp)) {
        snprintf(why, sizeof why, "dial hook chose %s:%u, which no service of this agent allows", hp->host, hp->port);
        tnl_dial_refuse(d, why);
        return;
    }
    d->target = *hp;
    first_bytes(d);
    tnl_connect_start(&d->connect, hp, d->agent->cfg->connect_timeout, d->buf->data + d->buf->off,
                      tnl_buf_pending(d->buf), local_connected, d);
}

void tnl_dial_refuse(struct tnl_dial *d, const char *why)
{
    d->hook = NULL;
    dial_free(d, 1, why);
}

int tnl_agent_allowed(const struct tnl_agent_cfg *cfg, const struct tnl_hostport *hp)
{
    for (int i = 0; i < cfg->nservices; i++)
        if (cfg->services[i].target.port == hp->port && strcmp(cfg->services[i].target.host, hp->host) == 0)
            return 1;
    for (int i = 0; i < cfg->nallow; i++)
        if ((cfg->allow[i].port == 0 || cfg->allow[i].port == hp->port) && strcmp(cfg->allow[i].host, hp->host) == 0)
            return 1;
    return 0;
}

static void copy_tlv(struct tnl_slice v, char *out, size_t cap)
{
    size_t n = v.n < cap - 1 ? v.n : cap - 1;
    memcpy(out, v.p, n);
    out[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
}

/* The header is complete: find the service, ask the hook or take its target. */
static void header_done(struct tnl_dial *d)
{
    size_t off = 0;
    uint8_t type;
    struct tnl_slice v;
    while (tnl_proxy_tlv_next(d->ph.tlvs, &off, &type, &v)) {
        if (type == TNL_PP2_TYPE_TNL_SERVICE)
            copy_tlv(v, d->service, sizeof d->service);
        else if (type == 0xE1)
            copy_tlv(v, d->proto, sizeof d->proto);
        else if (type == TNL_PP2_TYPE_AUTHORITY)
            copy_tlv(v, d->authority, sizeof d->authority);
    }
    if (!d->ph.local) {
        tnl_addr_format((struct sockaddr *)&d->ph.src, d->src, sizeof d->src);
        tnl_addr_format((struct sockaddr *)&d->ph.dst, d->dst, sizeof d->dst);
    }
    const struct tnl_agent_cfg *cfg = d->agent->cfg;
    for (int i = 0; i < cfg->nservices && !d->svc; i++)
        if (strcmp(cfg->services[i].name, d->service) == 0)
            d->svc = &cfg->services[i];
    if (!d->svc) {
        char why[160];
        snprintf(why, sizeof why, "the relay asked for service '%s', which this agent does not have", d->service);
        dial_free(d, 1, why);
        return;
    }
    d->send_proxy = d->svc->send_proxy;
    d->buf->off = HEADROOM + d->ph.header_len;
    if (cfg->dial_ref == LUA_NOREF) {
        tnl_dial_target(d, &d->svc->target);
        return;
    }
    /* The hook may answer at once (tnl_dial_target frees nothing we touch
     * after) or park; tnl_dial_set_hook records the parked run. */
    tnl_lua_dial(d->agent, d, d->service, d->proto, d->authority, d->src, d->dst);
}

void tnl_dial_set_hook(struct tnl_dial *d, void *run)
{
    d->hook = run;
}

static void header_ready(struct tnl_io *io, int events)
{
    struct tnl_dial *d = io->owner;
    const char *err = NULL;
    struct tnl_buf *b = d->buf;
    ssize_t r = tnl_io_read(io, b->data + b->len, b->cap - b->len);
    if (r == -EAGAIN)
        return;
    if (r <= 0) {
        dial_free(d, 1, r == 0 ? "relay stream ended before its header" : "relay stream failed");
        return;
    }
    b->len += (size_t)r;
    enum tnl_sniff_status st = tnl_proxy_parse(b->data + HEADROOM, b->len - HEADROOM, &d->ph, &err);
    if (st == TNL_SNIFF_NEED_MORE && b->len < b->cap)
        return;
    if (st != TNL_SNIFF_MATCH) {
        dial_free(d, 1, err ? err : "the relay stream does not start with a PROXY v2 header");
        return;
    }
    ev_timer_stop(tnl_ev, &d->timer);
    tnl_io_want(io, 0);
    header_done(d);
}

static void header_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    dial_free(w->data, 1, "no stream header in time");
}

void tnl_agent_stream(struct tnl_agent *a, struct tnl_io *stream)
{
    struct tnl_dial *d = calloc(1, sizeof *d);
    struct tnl_buf *b = d ? tnl_buf_alloc(HEADROOM + HDR_MAX) : NULL;
    if (!b) {
        free(d);
        tnl_io_close(stream, 1);
        return;
    }
    d->agent = a;
    d->stream = stream;
    d->buf = b;
    b->len = b->off = HEADROOM;
    d->started = tnl_now();
    tnl_strlcpy(d->src, "?", sizeof d->src);
    d->next = a->dials;
    if (a->dials)
        a->dials->prev = d;
    a->dials = d;
    a->streams_open++;
    a->streams_total++;
    tnl_loop_work_add();
    ev_timer_init(&d->timer, header_timeout, HDR_TIMEOUT, 0);
    d->timer.data = d;
    ev_timer_start(tnl_ev, &d->timer);
    stream->owner = d;
    stream->ready = header_ready;
    tnl_io_want(stream, TNL_IO_READ);
}

void tnl_agent_dials_abort(struct tnl_agent *a)
{
    while (a->dials)
        dial_free(a->dials, 1, "agent stopping");
}

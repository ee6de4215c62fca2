/*
 * conn.c — a public connection: sniff, route, connect, splice (see conn.h).
 *
 * The connection keeps the client's first bytes in its peek buffer and writes
 * them to the upstream before anything else, so the upstream sees exactly what
 * the client sent (TLS stays end to end: the router holds no certificate).
 */
#include "router/conn.h"
#include "router/conn_int.h"
#include "util/str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>

#include "lua/l_route.h"
#include "lua/l_sniffer.h"
#include "limit/admission.h"
#include "net/io_shaped.h"
#include "relay/relay.h"
#include "router/reject.h"
#include "sniff/proxy.h"
#include "util/log.h"
#include "util/metrics.h"

struct tnl_conn *tnl_conns;
static unsigned nconns;
static unsigned npending;       /* connections still sniffing or routing (admission cap) */
static uint64_t next_id;

enum { PEEK_INITIAL = 4096, LINGER_SECONDS = 2, LINGER_MAX_BYTES = 256 * 1024 };

unsigned tnl_conn_count(void)
{
    return nconns;
}

uint64_t tnl_conn_client_bytes(const struct tnl_conn *c)
{
    uint64_t sent = c->splice.ab.bytes + c->connect.early_sent;   /* the connect sent the first */
    return sent >= c->proxy_sent ? sent - c->proxy_sent : 0;
}

void tnl_conn_live_bytes(const struct tnl_service *svc, uint64_t *in, uint64_t *out)
{
    *in = *out = 0;
    for (const struct tnl_conn *c = tnl_conns; c; c = c->next)
        if (!svc || c->service == svc) {
            *in += tnl_conn_client_bytes(c);
            *out += c->splice.ba.bytes;
        }
}

const uint8_t *tnl_conn_bytes(const struct tnl_conn *c, size_t *len)
{
    size_t start = TNL_PEEK_HEADROOM + c->proxy_len;
    *len = c->peek ? c->peek->len - start : 0;
    return c->peek ? c->peek->data + start : (const uint8_t *)"";
}

static void leave_pending(struct tnl_conn *c)
{
    if (c->pending) {
        c->pending = 0;
        npending--;
    }
}

static void free_sniff_state(struct tnl_conn *c)
{
    leave_pending(c);
    tnl_buf_put(c->peek);
    c->peek = NULL;
    free(c->scratch);
    c->scratch = NULL;
    if (c->fields_ref != LUA_NOREF) {
        tnl_ctx_unref_value(c->cfg->ctx, c->fields_ref);
        c->fields_ref = LUA_NOREF;
    }
}

static void log_close(struct tnl_conn *c)
{
    struct tnl_log l;
    if (!tnl_log_begin(&l, TNL_LOG_INFO, "close"))
        return;
    tnl_log_uint(&l, "conn", c->id);
    tnl_log_str(&l, "listener", c->cfg->name);
    if (c->proto)
        tnl_log_str(&l, "proto", c->proto);
    tnl_log_str(&l, "src", c->src_str);
    if (c->service) {
        tnl_log_str(&l, "service", c->service->name);
        tnl_log_str(&l, "agent", c->service->owner);
    } else if (c->upstream.host[0]) {
        char up[TNL_ADDR_HOST_MAX + 8];
        tnl_hostport_format(&c->upstream, up, sizeof up);
        tnl_log_str(&l, "upstream", up);
    }
    /* with what another worker moved before it was handed here (move.h) */
    tnl_log_uint(&l, "bytes_in", tnl_conn_client_bytes(c) + c->earlier_in);
    tnl_log_uint(&l, "bytes_out", c->splice.ba.bytes + c->earlier_out);
    tnl_log_num(&l, "duration", tnl_now() - c->t_start);
    tnl_log_str(&l, "reason", c->reason[0] ? c->reason : "done");
    tnl_log_end(&l);
}

/* The one exit: logged, counted, and everything it owns released. */
static void conn_free(struct tnl_conn *c, int abort)
{
    log_close(c);
    tnl_conn_release(c, abort);
}

void tnl_conn_release(struct tnl_conn *c, int abort)
{
    tnl_metrics.bytes_in += tnl_conn_client_bytes(c);
    tnl_metrics.bytes_out += c->splice.ba.bytes;
    ev_timer_stop(tnl_ev, &c->timer);
    if (c->hook)
        tnl_hook_cancel(c->hook);
    tnl_connect_cancel(&c->connect);
    tnl_splice_release(&c->splice);
    free_sniff_state(c);
    if (c->client)
        tnl_io_close(c->client, abort);
    if (c->up)
        tnl_io_close(c->up, abort);
    if (c->service)
        tnl_service_unref(c->service, tnl_conn_client_bytes(c), c->splice.ba.bytes);
    if (c->prev)
        c->prev->next = c->next;
    else
        tnl_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    nconns--;
    tnl_entry_cfg_unref(c->cfg);
    free(c);
    tnl_loop_work_done();
}

static void set_reason(struct tnl_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_reason(struct tnl_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof c->reason, fmt, ap);
    va_end(ap);
}

/* ---- LINGER: answer written, drain the client until it closes ------------ */

static void linger_ready(struct tnl_io *io, int events)
{
    struct tnl_conn *c = io->owner;
    uint8_t sink[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t r = tnl_io_read(io, sink, sizeof sink);
        if (r == -EAGAIN)
            return;
        if (r <= 0 || (c->lingered += (size_t)r) > LINGER_MAX_BYTES) {
            conn_free(c, 0);
            return;
        }
    }
}

static void timer_linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    conn_free(w->data, 0);
}

static enum tnl_reason metric_of(enum tnl_reject kind)
{
    switch (kind) {
    case TNL_REJECT_NO_ROUTE: return TNL_R_NO_ROUTE;
    case TNL_REJECT_UPSTREAM: return TNL_R_UPSTREAM;
    case TNL_REJECT_UNAUTHORIZED: return TNL_R_UNAUTHORIZED;
    default: return TNL_R_SNIFF;
    }
}

static void reject_as(struct tnl_conn *c, enum tnl_reject kind, enum tnl_reason metric, const char *reason);

static void reject(struct tnl_conn *c, enum tnl_reject kind, const char *reason)
{
    reject_as(c, kind, metric_of(kind), reason);
}

/* Refuse: answer in the client's protocol, count, log, then linger. */
static void reject_as(struct tnl_conn *c, enum tnl_reject kind, enum tnl_reason metric, const char *reason)
{
    uint8_t answer[512];
    tnl_metrics.conns_rejected[metric]++;
    struct tnl_log l;
    if (!c->reason[0])
        set_reason(c, "%s", reason);
    if (tnl_log_begin(&l, TNL_LOG_INFO, "reject")) {
        tnl_log_uint(&l, "conn", c->id);
        tnl_log_str(&l, "listener", c->cfg->name);
        tnl_log_str(&l, "src", c->src_str);
        tnl_log_str(&l, "proto", c->proto ? c->proto : "unknown");
        tnl_log_str(&l, "reason", reason);
        tnl_log_end(&l);
    }
    size_t n = kind == TNL_REJECT_CLOSE ? 0 :
               tnl_reject_answer(c->proto, &c->sr, kind, answer, sizeof answer);
    free_sniff_state(c);
    tnl_connect_cancel(&c->connect);
    if (n > 0)
        (void)tnl_io_write(c->client, answer, n);
    if (c->client_eof) {
        conn_free(c, 0);
        return;
    }
    /* Half-close and read what the client still sends until it closes: a
     * close with unread bytes would reset the connection (and lose the answer). */
    c->client->ops->shutdown(c->client);
    c->state = TNL_CONN_LINGER;
    c->client->owner = c;               /* it may have been the splice's until now */
    c->client->ready = linger_ready;
    tnl_io_want(c->client, TNL_IO_READ);
    ev_timer_stop(tnl_ev, &c->timer);
    ev_timer_init(&c->timer, timer_linger_cb, LINGER_SECONDS, 0);
    c->timer.data = c;
    ev_timer_start(tnl_ev, &c->timer);
}

void tnl_conn_route_reject(struct tnl_conn *c, enum tnl_reject kind, const char *reason)
{
    c->hook = NULL;
    reject(c, kind, reason);
}

void tnl_conn_route_failed(struct tnl_conn *c, const char *reason)
{
    c->hook = NULL;
    reject_as(c, TNL_REJECT_UPSTREAM, TNL_R_HOOK, reason);
}

/* ---- SPLICE -------------------------------------------------------------- */

static void splice_done(struct tnl_splice *s, int err, char side)
{
    struct tnl_conn *c = s->owner;
    /* An agent that cannot reach its service (or refuses by policy) resets the
     * stream before sending anything back: answer the client in its protocol
     * (HTTP 502, TLS internal_error, ...) instead of passing the reset on. */
    if (err && side == 'b' && c->service && s->ba.bytes == 0) {
        char why[200];
        snprintf(why, sizeof why, "agent '%s' could not serve '%s' (stream reset before any reply)",
                 c->service->owner, c->service->name);
        c->client_eof = s->ab.eof;
        tnl_splice_release(s);
        tnl_io_close(c->up, 1);
        c->up = NULL;
        c->state = TNL_CONN_ROUTE;
        reject(c, TNL_REJECT_UPSTREAM, why);
        return;
    }
    if (err) {
        snprintf(c->reason, sizeof c->reason, "%s error: %s",
                 side == 'a' ? "client" : "upstream", strerror(-err));
    }
    conn_free(c, err != 0);
}

/* Put our PROXY v2 header in the headroom just before the peeked bytes: the
 * client's addresses, the name it asked for and, towards an agent, the
 * service and the sniffed protocol. */
static void prepend_proxy(struct tnl_conn *c, struct tnl_buf *b)
{
    uint8_t hdr[TNL_PEEK_HEADROOM];
    struct tnl_proxy_tlv tlvs[3];
    size_t nt = 0;
    const struct tnl_slice *auth = c->sr.sni.n ? &c->sr.sni : c->sr.host.n ? &c->sr.host : NULL;
    if (auth && auth->n <= 255)
        tlvs[nt++] = (struct tnl_proxy_tlv){ TNL_PP2_TYPE_AUTHORITY, auth->p, (uint16_t)auth->n };
    if (c->service) {
        tlvs[nt++] = (struct tnl_proxy_tlv){ TNL_PP2_TYPE_TNL_SERVICE, c->service->name,
                                             (uint16_t)strlen(c->service->name) };
        tlvs[nt++] = (struct tnl_proxy_tlv){ TNL_PP2_TYPE_TNL_PROTO, c->proto, (uint16_t)strlen(c->proto) };
    }
    int n = tnl_proxy_v2_write(hdr, sizeof hdr, (struct sockaddr *)&c->src, (struct sockaddr *)&c->dst,
                               tlvs, nt);
    if (n <= 0 || (size_t)n > b->off)
        return;
    b->off -= (size_t)n;
    memcpy(b->data + b->off, hdr, (size_t)n);
    c->proxy_sent = (size_t)n;
}

/* No byte either way for the idle limit: close (both sides see a FIN). */
static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_conn *c = w->data;
    double limit = c->service && c->service->relay ? c->service->relay->cfg->stream_idle : c->cfg->idle_timeout;
    double idle = tnl_now() - c->splice.last_active;
    if (idle >= limit) {
        set_reason(c, "idle timeout (%gs without a byte)", limit);
        conn_free(c, 0);
        return;
    }
    ev_timer_set(w, limit - idle, 0);
    ev_timer_start(tnl_ev, w);
}

/* What the upstream gets first: the client's bytes untouched, after our
 * PROXY header if asked for. */
static void first_bytes(struct tnl_conn *c, int proxy)
{
    c->peek->off = TNL_PEEK_HEADROOM + c->proxy_len;
    if (proxy)
        prepend_proxy(c, c->peek);
}

/* The peek buffer (first_bytes) becomes the first a->b buffer of the splice;
 * or a splice moved from another process resumes with its pipes. */
void tnl_conn_splice(struct tnl_conn *c, struct tnl_io *up, const struct tnl_splice_pipe *carry)
{
    struct tnl_buf *b = c->peek;
    c->up = up;
    c->peek = NULL;
    free_sniff_state(c);
    c->state = TNL_CONN_SPLICE;
    ev_timer_stop(tnl_ev, &c->timer);
    double idle = c->service && c->service->relay ? c->service->relay->cfg->stream_idle : c->cfg->idle_timeout;
    if (idle > 0) {
        ev_timer_init(&c->timer, idle_cb, idle, 0);
        c->timer.data = c;
        ev_timer_start(tnl_ev, &c->timer);
    }
    if (carry)
        tnl_splice_resume(&c->splice, c->client, c->up, carry, splice_done, c);
    else
        tnl_splice_start(&c->splice, c->client, c->up, b, c->client_eof, splice_done, c);
}

static void connected(struct tnl_connect *cn, int fd, const char *err)
{
    struct tnl_conn *c = cn->owner;
    if (fd < 0) {
        set_reason(c, "%s", err);
        reject(c, TNL_REJECT_UPSTREAM, err);
        return;
    }
    struct tnl_io *up = tnl_io_fd_new(fd);
    if (!up) {
        reject(c, TNL_REJECT_UPSTREAM, "out of memory");
        return;
    }
    c->peek->off += cn->early_sent;     /* gone out with the connect */
    tnl_conn_splice(c, up, NULL);
}

static void log_route(struct tnl_conn *c)
{
    struct tnl_log l;
    if (!tnl_log_begin(&l, TNL_LOG_INFO, "route"))
        return;
    tnl_log_uint(&l, "conn", c->id);
    tnl_log_str(&l, "listener", c->cfg->name);
    tnl_log_str(&l, "proto", c->proto);
    if (c->sr.sni.n)
        tnl_log_strn(&l, "sni", (const char *)c->sr.sni.p, c->sr.sni.n);
    if (c->sr.host.n)
        tnl_log_strn(&l, "host", (const char *)c->sr.host.p, c->sr.host.n);
    if (c->service) {
        tnl_log_str(&l, "service", c->service->name);
        tnl_log_str(&l, "agent", c->service->owner);
    } else {
        char up[TNL_ADDR_HOST_MAX + 8];
        tnl_hostport_format(&c->upstream, up, sizeof up);
        tnl_log_str(&l, "upstream", up);
    }
    tnl_log_end(&l);
}

/* Bandwidth limits of the service and of its agent's session: reading from
 * the client counts "in", reading from the agent's stream "out". */
static void shape(struct tnl_conn *c, struct tnl_io **stream, struct tnl_service *svc)
{
    struct tnl_session *sess = svc->session;
    struct tnl_shaper *in[2] = { svc->shape_in, sess->shape_in }, *out[2] = { svc->shape_out, sess->shape_out };
    if (in[0] || in[1]) {
        struct tnl_io *w = tnl_io_shaped_new(c->client, in, 2);
        if (w)
            c->client = w;
    }
    if (out[0] || out[1]) {
        struct tnl_io *w = tnl_io_shaped_new(*stream, out, 2);
        if (w)
            *stream = w;
    }
}

void tnl_conn_route_service(struct tnl_conn *c, struct tnl_service *svc)
{
    char why[160];
    c->hook = NULL;
    if (!svc->session) {
        snprintf(why, sizeof why, "agent '%s' of service '%s' is offline", svc->owner, svc->name);
        reject(c, TNL_REJECT_UPSTREAM, why);
        return;
    }
    struct tnl_io *st = tnl_service_open_stream(svc);
    if (!st) {
        snprintf(why, sizeof why, "agent '%s' refused a new stream for '%s'", svc->owner, svc->name);
        reject(c, TNL_REJECT_UPSTREAM, why);
        return;
    }
    c->service = svc;
    tnl_service_ref(svc);
    log_route(c);
    shape(c, &st, svc);
    first_bytes(c, 1);
    tnl_conn_splice(c, st, NULL);
}

void tnl_conn_route_upstream(struct tnl_conn *c, const struct tnl_hostport *hp)
{
    c->hook = NULL;
    c->upstream = *hp;
    c->state = TNL_CONN_CONNECT;
    log_route(c);
    first_bytes(c, c->cfg->send_proxy);
    tnl_connect_start(&c->connect, hp, c->cfg->connect_timeout, c->peek->data + c->peek->off,
                      tnl_buf_pending(c->peek), connected, c);
}

/* ---- SNIFF --------------------------------------------------------------- */

/* Token listeners: the Bearer token of an HTTP request becomes conn.identity.
 * 0 to go on, -1 after a refusal (token required and missing or invalid). */
static int check_token(struct tnl_conn *c)
{
    const struct tnl_slice *a = &c->sr.authorization;
    const char *why = "no Authorization: Bearer token";
    if (strcmp(c->proto, "http") == 0 && a->n > 7 && strncasecmp((const char *)a->p, "Bearer ", 7) == 0) {
        if (tnl_token_verify((const char *)a->p + 7, a->n - 7, c->cfg->token_secret, c->cfg->token_len,
                             (int64_t)time(NULL), &c->identity, &why) == TNL_TOKEN_OK)
            return 0;
        memset(&c->identity, 0, sizeof c->identity);
    } else if (strcmp(c->proto, "http") != 0) {
        why = "only HTTP requests can carry a token";
    }
    if (!c->cfg->token_required)
        return 0;
    char reason[200];
    snprintf(reason, sizeof reason, "token refused: %s", why);
    reject(c, TNL_REJECT_UNAUTHORIZED, reason);
    return -1;
}

static void decided(struct tnl_conn *c, const char *proto)
{
    c->proto = proto;
    c->state = TNL_CONN_ROUTE;
    ev_timer_stop(tnl_ev, &c->timer);
    tnl_io_want(c->client, 0);     /* further bytes wait in the kernel for the splice */
    if (c->cfg->token_len && check_token(c) < 0)
        return;
    if (c->cfg->service)
        tnl_conn_route_service(c, c->cfg->service);     /* a tcp service's own port */
    else if (c->cfg->relay && c->cfg->route_ref == LUA_NOREF)
        tnl_relay_route(c);                             /* by exposed name, no Lua */
    else
        tnl_route_call(c);
}

/* The PROXY header from a load balancer: 1 when done, 0 to wait, -1 after reject. */
static int sniff_proxy_header(struct tnl_conn *c, const uint8_t *data, size_t len)
{
    struct tnl_proxy_hdr h;
    const char *err = NULL;
    enum tnl_sniff_status st = tnl_proxy_parse(data, len, &h, &err);
    if (st == TNL_SNIFF_NEED_MORE && !c->sniff_final)
        return 0;
    if (st != TNL_SNIFF_MATCH) {
        reject(c, TNL_REJECT_CLOSE, st == TNL_SNIFF_INVALID ? err :
               st == TNL_SNIFF_NEED_MORE ? "incomplete PROXY protocol header" :
               "expected a PROXY protocol header from the load balancer");
        return -1;
    }
    if (!h.local) {
        c->src = h.src;
        c->dst = h.dst;
        tnl_addr_format((struct sockaddr *)&c->src, c->src_str, sizeof c->src_str);
        tnl_addr_format((struct sockaddr *)&c->dst, c->dst_str, sizeof c->dst_str);
    }
    c->proxy_len = h.header_len;
    c->proxy_done = 1;
    if (c->cfg->no_sniff) {
        decided(c, "opaque");
        return -1;          /* decided: nothing more to sniff */
    }
    return 1;
}

/* Lua matchers, in registration order: 1 decided, 0 wait, -1 after reject. */
static int sniff_lua(struct tnl_conn *c, const uint8_t *body, size_t blen)
{
    struct tnl_ctx *ctx = c->cfg->ctx;
    for (int i = 0; i < ctx->nsniffers; i++) {
        if (c->lua_ruled_out & (1ULL << i))
            continue;
        int fields = LUA_NOREF;
        enum tnl_lua_match m = tnl_lua_sniffer_run(ctx, i, body, blen, c->id, &fields);
        if (m == TNL_LUA_MATCH) {
            c->fields_ref = fields;
            tnl_strlcpy(c->lua_proto, ctx->sniffers[i].name, sizeof c->lua_proto);
            decided(c, c->lua_proto);
            return 1;
        }
        if (m == TNL_LUA_FAILED) {
            reject_as(c, TNL_REJECT_CLOSE, TNL_R_HOOK, "sniffer hook failed");
            return -1;
        }
        if (m == TNL_LUA_NEED_MORE && !c->sniff_final)
            return 0;
        /* false, or it still wants more but no more bytes can come (the
         * client ended, or the peek limit): it cannot match, try the next. */
        c->lua_ruled_out |= 1ULL << i;
    }
    decided(c, "opaque");
    return 1;
}

static void sniff(struct tnl_conn *c)
{
    const uint8_t *data = c->peek->data + TNL_PEEK_HEADROOM;
    size_t len = c->peek->len - TNL_PEEK_HEADROOM;
    if (c->cfg->proxy_protocol && !c->proxy_done && sniff_proxy_header(c, data, len) <= 0)
        return;
    const uint8_t *body = data + c->proxy_len;
    size_t blen = len - c->proxy_len;
    if (blen == 0) {
        if (c->client_eof) {
            set_reason(c, "client closed before sending anything");
            conn_free(c, 0);
        }
        return;
    }
    tnl_sniff_result_init(&c->sr, c->scratch, c->peek->cap);
    enum tnl_sniff_status st = tnl_sniff_builtin(body, blen, &c->sr);
    char why[160];
    switch (st) {
    case TNL_SNIFF_MATCH:
        decided(c, c->sr.proto);
        return;
    case TNL_SNIFF_INVALID:
        c->proto = c->sr.proto;
        snprintf(why, sizeof why, "invalid %s: %s", c->sr.proto ? c->sr.proto : "data",
                 c->sr.error ? c->sr.error : "malformed");
        reject(c, TNL_REJECT_CLOSE, why);
        return;
    case TNL_SNIFF_NEED_MORE:
        if (!c->sniff_final)
            return;
        snprintf(why, sizeof why, "%s before the protocol could be recognised (%zu bytes)",
                 c->client_eof ? "client closed" : "peek limit reached", blen);
        reject(c, TNL_REJECT_CLOSE, why);
        return;
    case TNL_SNIFF_NO_MATCH:
        sniff_lua(c, body, blen);
        return;
    }
}

/* Room left under the listener's peek limit, growing the buffer towards it;
 * 0 when the limit is reached. */
static size_t peek_room(struct tnl_conn *c)
{
    size_t limit = TNL_PEEK_HEADROOM + c->proxy_len + c->cfg->peek_max;
    struct tnl_buf *b = c->peek;
    if (b->len >= limit)
        return 0;
    if (b->len < b->cap)
        return (b->cap < limit ? b->cap : limit) - b->len;
    size_t cap = b->cap * 2 < limit ? b->cap * 2 : limit;
    struct tnl_buf *nb = tnl_buf_alloc(cap);
    uint8_t *ns = malloc(cap);
    if (!nb || !ns) {
        free(nb);
        free(ns);
        return 0;
    }
    memcpy(nb->data, b->data, b->len);
    nb->len = b->len;
    nb->off = b->off;
    free(b);
    free(c->scratch);
    c->peek = nb;
    c->scratch = ns;
    return nb->cap - nb->len;
}

static void sniff_ready(struct tnl_io *io, int events)
{
    struct tnl_conn *c = io->owner;
    size_t room = peek_room(c);
    if (room > 0) {
        ssize_t r = tnl_io_read(io, c->peek->data + c->peek->len, room);
        if (r == -EAGAIN)
            return;
        if (r < 0) {
            set_reason(c, "client error while sniffing: %s", strerror((int)-r));
            conn_free(c, 1);
            return;
        }
        if (r == 0)
            c->client_eof = 1;
        c->peek->len += (size_t)r;
    }
    if (c->client_eof || peek_room(c) == 0) {
        c->sniff_final = 1;
        tnl_io_want(io, 0);
    }
    sniff(c);
}

/* The sniff timeout: on_timeout = "opaque" routes whatever has arrived (even
 * nothing: server-speaks-first protocols) as opaque; "close" refuses. */
static void sniff_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_conn *c = w->data;
    size_t blen;
    tnl_conn_bytes(c, &blen);
    tnl_io_want(c->client, 0);
    if (c->cfg->proxy_protocol && !c->proxy_done) {
        reject(c, TNL_REJECT_CLOSE, "sniff timeout: no complete PROXY protocol header");
        return;
    }
    if (c->cfg->on_timeout == TNL_TIMEOUT_OPAQUE) {
        decided(c, "opaque");
        return;
    }
    if (blen == 0) {
        set_reason(c, "sniff timeout: client sent nothing in %gs", c->cfg->sniff_timeout);
        conn_free(c, 0);
        return;
    }
    char why[160];
    snprintf(why, sizeof why, "sniff timeout: protocol not recognised after %gs (%zu bytes)",
             c->cfg->sniff_timeout, blen);
    reject(c, TNL_REJECT_CLOSE, why);
}

struct tnl_conn *tnl_conn_new(struct tnl_entry_cfg *cfg, struct tnl_io *client)
{
    struct tnl_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = ++next_id;
    c->cfg = cfg;
    tnl_entry_cfg_ref(cfg);
    c->client = client;
    c->fields_ref = LUA_NOREF;
    c->t_start = tnl_now();
    c->next = tnl_conns;
    if (tnl_conns)
        tnl_conns->prev = c;
    tnl_conns = c;
    nconns++;
    tnl_loop_work_add();
    return c;
}

void tnl_conn_format_addrs(struct tnl_conn *c)
{
    tnl_addr_format((struct sockaddr *)&c->src, c->src_str, sizeof c->src_str);
    tnl_addr_format((struct sockaddr *)&c->dst, c->dst_str, sizeof c->dst_str);
}

void tnl_conn_accept(struct tnl_entry_cfg *cfg, int fd, const struct sockaddr *peer, socklen_t plen,
                     const struct sockaddr *local)
{
    if (!tnl_admit_conn(peer, npending)) {
        close(fd);              /* refused before any work: counted and logged by admission */
        return;
    }
    struct tnl_io *io = tnl_io_fd_new(fd);
    struct tnl_conn *c = io ? tnl_conn_new(cfg, io) : NULL;
    if (!c) {
        if (io)
            tnl_io_close(io, 0);
        tnl_logf(TNL_LOG_ERROR, "accept_error", "out of memory");
        return;
    }
    c->pending = 1;
    npending++;
    tnl_metrics.conns_accepted++;
    memcpy(&c->src, peer, plen);
    socklen_t dlen = sizeof c->dst;
    if (local)
        memcpy(&c->dst, local, tnl_addr_len(local));
    else
        getsockname(fd, (struct sockaddr *)&c->dst, &dlen);
    tnl_conn_format_addrs(c);

    struct tnl_log l;
    if (tnl_log_begin(&l, TNL_LOG_INFO, "accept")) {
        tnl_log_uint(&l, "conn", c->id);
        tnl_log_str(&l, "listener", cfg->name);
        tnl_log_str(&l, "src", c->src_str);
        tnl_log_end(&l);
    }

    size_t cap = TNL_PEEK_HEADROOM + (cfg->peek_max < PEEK_INITIAL ? cfg->peek_max : PEEK_INITIAL);
    c->peek = tnl_buf_alloc(cap);
    c->scratch = malloc(cap);
    if (!c->peek || !c->scratch) {
        set_reason(c, "out of memory");
        conn_free(c, 1);
        return;
    }
    c->peek->len = c->peek->off = TNL_PEEK_HEADROOM;
    c->state = TNL_CONN_SNIFF;
    io->owner = c;
    io->ready = sniff_ready;
    if (cfg->no_sniff && !cfg->proxy_protocol) {
        decided(c, "opaque");
        return;
    }
    ev_timer_init(&c->timer, sniff_timeout_cb, cfg->sniff_timeout, 0);
    c->timer.data = c;
    ev_timer_start(tnl_ev, &c->timer);
    tnl_io_want(io, TNL_IO_READ);
    /* The first bytes most often came with the connection: read them in this
     * loop turn rather than after the next poll (one -EAGAIN when not). */
    tnl_io_fd_presume(io, TNL_IO_READ);
}

void tnl_conns_abort_all(const char *reason)
{
    while (tnl_conns) {
        struct tnl_conn *c = tnl_conns;
        if (!c->reason[0] || c->state == TNL_CONN_SPLICE)
            set_reason(c, "%s", reason);
        conn_free(c, 1);
    }
}

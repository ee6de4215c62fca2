/*
 * server.c — the management endpoint's listener and requests (see mgmt.h).
 */
#include "mgmt/mgmt.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "http/request.h"
#include "loop/loop.h"
#include "net/io.h"
#include "net/listener.h"
#include "util/log.h"
#include "util/metrics.h"

enum { REQ_MAX = TNL_HTTP_HEAD_MAX, MGMT_TIMEOUT = 10 };

static struct tnl_mgmt_cfg cfg;
static struct tnl_listener listener = { .fd = -1 };

struct mgmt_conn {
    struct tnl_io *io;
    ev_timer timer;
    char src[TNL_ADDR_STR_MAX];
    char *out;
    size_t out_len, out_off;
    size_t len;
    uint8_t buf[REQ_MAX];
};

static void conn_free(struct mgmt_conn *c)
{
    ev_timer_stop(tnl_ev, &c->timer);
    tnl_io_close(c->io, 0);
    free(c->out);
    sodium_memzero(c->buf, c->len);     /* a bearer token may be in there */
    free(c);
}

static void write_ready(struct tnl_io *io, int events)
{
    struct mgmt_conn *c = io->owner;
    while (c->out_off < c->out_len) {
        ssize_t w = tnl_io_write(io, c->out + c->out_off, c->out_len - c->out_off);
        if (w == -EAGAIN)
            return;
        if (w <= 0)
            break;
        c->out_off += (size_t)w;
    }
    io->ops->shutdown(io);
    conn_free(c);
}

static void respond(struct mgmt_conn *c, int status, const char *type, const char *extra, const char *body,
                    size_t len)
{
    c->out = malloc(len + 512);
    c->out_len = c->out ? tnl_http_response(c->out, len + 512, status, type, extra, body, len) : 0;
    if (!c->out_len) {
        conn_free(c);
        return;
    }
    c->io->ready = write_ready;
    tnl_io_want(c->io, TNL_IO_WRITE);
}

static void respond_text(struct mgmt_conn *c, int status, const char *text)
{
    respond(c, status, "text/plain; charset=utf-8",
            status == 401 ? "WWW-Authenticate: Bearer realm=\"tunnel management\"\r\n" : NULL, text, strlen(text));
}

static int authorized(const struct tnl_http_req *req)
{
    struct tnl_slice tok;
    if (cfg.token_len == 0)
        return 1;
    if (tnl_http_bearer(req->authorization, &tok) < 0 || tok.n != cfg.token_len)
        return 0;
    return sodium_memcmp(tok.p, cfg.token, cfg.token_len) == 0;
}

static void serve(struct mgmt_conn *c, const struct tnl_http_req *req)
{
    struct tnl_jsonw j;
    tnl_metrics.mgmt_requests++;
    if (!authorized(req)) {
        tnl_metrics.mgmt_denied++;
        respond_text(c, 401, "401 Unauthorized: a valid Bearer token is required\n");
        return;
    }
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        respond_text(c, 405, "405 Method Not Allowed: GET only\n");
        return;
    }
    size_t pl = req->path.n;
    const char *path = (const char *)req->path.p;
    const char *q = memchr(path, '?', pl);
    if (q)
        pl = (size_t)(q - path);
    tnl_jsonw_init(&j);
    if (pl == 7 && memcmp(path, "/health", 7) == 0) {
        int up = !tnl_loop_draining();
        const char *body = up ? "{\"status\":\"ok\"}\n" : "{\"status\":\"draining\"}\n";
        respond(c, up ? 200 : 503, "application/json", NULL, body, strlen(body));
    } else if (pl == 7 && memcmp(path, "/status", 7) == 0) {
        tnl_mgmt_status(&j);
        if (j.failed)
            respond_text(c, 500, "out of memory\n");
        else
            respond(c, 200, "application/json", NULL, j.buf, j.len);
    } else if (pl == 8 && memcmp(path, "/metrics", 8) == 0) {
        tnl_mgmt_metrics(&j);
        if (j.failed)
            respond_text(c, 500, "out of memory\n");
        else
            respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, j.buf, j.len);
    } else {
        respond_text(c, 404, "404 Not Found: try /health, /status or /metrics\n");
    }
    tnl_jsonw_free(&j);
}

static void read_ready(struct tnl_io *io, int events)
{
    struct mgmt_conn *c = io->owner;
    struct tnl_http_req req;
    const char *why = NULL;
    ssize_t r = tnl_io_read(io, c->buf + c->len, sizeof c->buf - c->len);
    if (r == -EAGAIN)
        return;
    if (r <= 0) {
        conn_free(c);
        return;
    }
    c->len += (size_t)r;
    enum tnl_sniff_status st = tnl_http_parse_request(c->buf, c->len, 0, &req, &why);
    if (st == TNL_SNIFF_NEED_MORE && c->len < sizeof c->buf)
        return;
    tnl_io_want(io, 0);
    ev_timer_stop(tnl_ev, &c->timer);
    if (st != TNL_SNIFF_MATCH) {
        respond_text(c, 400, "400 Bad Request\n");
        return;
    }
    serve(c, &req);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    conn_free(w->data);
}

/* Refusals by the ACL are logged at most once a second, with a count. */
static void log_denied(const char *src)
{
    static double last;
    static unsigned suppressed;
    if (tnl_now() - last < 1.0) {
        suppressed++;
        return;
    }
    struct tnl_log l;
    if (tnl_log_begin(&l, TNL_LOG_WARN, "mgmt_denied")) {
        tnl_log_str(&l, "src", src);
        tnl_log_str(&l, "reason", "source address outside the management ACL");
        if (suppressed)
            tnl_log_uint(&l, "suppressed", suppressed);
        tnl_log_end(&l);
    }
    last = tnl_now();
    suppressed = 0;
}

static void on_accept(struct tnl_listener *l, int fd, const struct sockaddr *peer, socklen_t plen)
{
    (void)l; (void)plen;
    struct mgmt_conn *c = calloc(1, sizeof *c);
    struct tnl_io *io = c ? tnl_io_fd_new(fd) : NULL;
    if (!io) {
        if (!c)
            close(fd);
        free(c);
        return;
    }
    c->io = io;
    io->owner = c;
    tnl_addr_format(peer, c->src, sizeof c->src);
    ev_timer_init(&c->timer, timeout_cb, MGMT_TIMEOUT, 0);
    c->timer.data = c;
    ev_timer_start(tnl_ev, &c->timer);
    int allowed = 0;
    for (int i = 0; i < cfg.nallow && !allowed; i++)
        allowed = tnl_cidr_match(&cfg.allow[i], peer);
    if (!allowed) {
        tnl_metrics.mgmt_denied++;
        log_denied(c->src);
        respond_text(c, 403, "403 Forbidden: your address is not in the management ACL\n");
        return;
    }
    io->ready = read_ready;
    tnl_io_want(io, TNL_IO_READ);
}

int tnl_mgmt_configure(const struct tnl_mgmt_cfg *next, char *err, size_t cap)
{
    int same_addr = next && listener.fd >= 0 && next->bindlen == cfg.bindlen &&
                    memcmp(&next->bind, &cfg.bind, cfg.bindlen) == 0;
    if (!next || !same_addr) {
        if (listener.fd >= 0) {
            tnl_listener_close(&listener);
            tnl_logf(TNL_LOG_INFO, "mgmt_close", "management endpoint closed");
        }
    }
    if (next && !same_addr) {
        int rc = tnl_listener_open(&listener, (const struct sockaddr *)&next->bind, next->bindlen, on_accept, NULL);
        if (rc < 0) {
            listener.fd = -1;
            snprintf(err, cap, "management endpoint: cannot listen on %s: %s", next->addr, strerror(-rc));
            return rc;
        }
        tnl_logf(TNL_LOG_INFO, "mgmt_listen", "management endpoint on http://%s/ (health, status, metrics)",
                 listener.addr_str);
    }
    sodium_memzero(cfg.token, sizeof cfg.token);
    if (next)
        cfg = *next;
    else
        memset(&cfg, 0, sizeof cfg);
    return 0;
}

const char *tnl_mgmt_addr(void)
{
    return listener.fd >= 0 ? listener.addr_str : "";
}

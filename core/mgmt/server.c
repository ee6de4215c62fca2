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

#include "http/exchange.h"
#include "http/request.h"
#include "loop/loop.h"
#include "net/io.h"
#include "net/listener.h"
#include "util/log.h"
#include "util/metrics.h"

enum { REQ_MAX = TNL_HTTP_HEAD_MAX, MGMT_TIMEOUT = 10 };

static struct tnl_mgmt_cfg cfg;
static struct tnl_listener listener = { .fd = -1 };

static void respond(struct tnl_http_exchange *x, int status, const char *type, const char *extra,
                    const char *body, size_t len)
{
    char *out = malloc(len + 512);
    size_t n = out ? tnl_http_response(out, len + 512, status, type, extra, body, len) : 0;
    tnl_http_exchange_send(x, out, n);
}

static void respond_text(struct tnl_http_exchange *x, int status, const char *text)
{
    respond(x, status, "text/plain; charset=utf-8",
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

static void serve(struct tnl_http_exchange *x, const struct tnl_http_req *req)
{
    struct tnl_jsonw j;
    tnl_metrics.mgmt_requests++;
    if (!authorized(req)) {
        tnl_metrics.mgmt_denied++;
        respond_text(x, 401, "401 Unauthorized: a valid Bearer token is required\n");
        return;
    }
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        respond_text(x, 405, "405 Method Not Allowed: GET only\n");
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
        respond(x, up ? 200 : 503, "application/json", NULL, body, strlen(body));
    } else if (pl == 7 && memcmp(path, "/status", 7) == 0) {
        tnl_mgmt_status(&j);
        if (j.failed)
            respond_text(x, 500, "out of memory\n");
        else
            respond(x, 200, "application/json", NULL, j.buf, j.len);
    } else if (pl == 8 && memcmp(path, "/metrics", 8) == 0) {
        tnl_mgmt_metrics(&j);
        if (j.failed)
            respond_text(x, 500, "out of memory\n");
        else
            respond(x, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, j.buf, j.len);
    } else {
        respond_text(x, 404, "404 Not Found: try /health, /status or /metrics\n");
    }
    tnl_jsonw_free(&j);
}

static void on_data(struct tnl_http_exchange *x, const uint8_t *buf, size_t len, int full)
{
    struct tnl_http_req req;
    const char *why = NULL;
    enum tnl_sniff_status st = tnl_http_parse_request(buf, len, 0, &req, &why);
    if (st == TNL_SNIFF_NEED_MORE && !full)
        return;
    if (st != TNL_SNIFF_MATCH)
        respond_text(x, 400, "400 Bad Request\n");
    else
        serve(x, &req);
}

static const struct tnl_http_exchange_cbs exchange_cbs = { .data = on_data };

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
    struct tnl_http_exchange *x = tnl_http_exchange_new(REQ_MAX, MGMT_TIMEOUT, peer, &exchange_cbs, NULL);
    struct tnl_io *io = x ? tnl_io_fd_new(fd) : NULL;
    if (!io) {
        if (x)
            tnl_http_exchange_free(x);      /* tnl_io_fd_new closed fd */
        else
            close(fd);
        return;
    }
    tnl_http_exchange_attach(x, io);
    int allowed = 0;
    for (int i = 0; i < cfg.nallow && !allowed; i++)
        allowed = tnl_cidr_match(&cfg.allow[i], peer);
    if (!allowed) {
        tnl_metrics.mgmt_denied++;
        log_denied(x->src);
        respond_text(x, 403, "403 Forbidden: your address is not in the management ACL\n");
        return;
    }
    tnl_http_exchange_read(x);
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

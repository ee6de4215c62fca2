/*
 * server.c — a relay's enrollment listener.
 *
 * TLS 1.3 with the relay's certificate (no client certificate: the new agent
 * has none yet), one HTTP request per connection (request.h): a CSR and a
 * bootstrap token. The token is hashed here and only its hash goes to Lua,
 * which checks it against the store, the deny list and authorize(id,
 * "enroll"); then this relay's CA signs. Answers: 200 with the certificate and
 * the CA certificate (PEM), or 400 / 401 / 403 with a one-line reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "enroll/request.h"
#include "limit/admission.h"
#include "lua/l_relay.h"
#include "pki/pki.h"
#include "relay/relay.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"

enum { ENROLL_TIMEOUT = 10, BUF_MAX = TNL_ENROLL_HEAD_MAX + TNL_ENROLL_BODY_MAX };

struct enroll_conn {
    struct tnl_relay *relay;
    struct tnl_io *io;
    ev_timer timer;
    char src[TNL_ADDR_STR_MAX];
    size_t len;
    char *out;
    size_t out_len, out_off;
    uint8_t buf[BUF_MAX];
};

static void conn_free(struct enroll_conn *c)
{
    ev_timer_stop(tnl_ev, &c->timer);
    if (c->io)
        tnl_io_close(c->io, 0);
    free(c->out);
    sodium_memzero(c->buf, c->len);    /* the bootstrap token was in there */
    free(c);
    tnl_loop_work_done();
}

static void log_enroll(struct enroll_conn *c, const char *event, const char *name, const char *role,
                       const char *why)
{
    struct tnl_log l;
    if (!tnl_log_begin(&l, why ? TNL_LOG_WARN : TNL_LOG_INFO, event))
        return;
    tnl_log_str(&l, "src", c->src);
    if (name)
        tnl_log_str(&l, "name", name);
    if (role)
        tnl_log_str(&l, "role", role);
    if (why)
        tnl_log_str(&l, "reason", why);
    tnl_log_end(&l);
}

static void send_ready(struct tnl_io *io, int events)
{
    struct enroll_conn *c = io->owner;
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

static void respond(struct enroll_conn *c, int status, const char *type, const char *body, size_t len)
{
    c->out = malloc(len + 256);
    c->out_len = c->out ? tnl_enroll_response(c->out, len + 256, status, type, body, len) : 0;
    if (!c->out_len) {
        conn_free(c);
        return;
    }
    c->io->ready = send_ready;
    tnl_io_want(c->io, TNL_IO_WRITE);
}

static void refuse(struct enroll_conn *c, int status, const char *name, const char *why)
{
    char body[300];
    int n = snprintf(body, sizeof body, "%s\n", why);
    log_enroll(c, "enroll_refused", name, NULL, why);
    tnl_metrics.enrollments_refused++;
    respond(c, status, "text/plain", body, (size_t)n);
}

static void handle(struct enroll_conn *c, const struct tnl_enroll_req *req)
{
    char err[512], cn[256], hash[2 * crypto_hash_sha256_BYTES + 1], role[64] = "";
    uint8_t md[crypto_hash_sha256_BYTES];
    double ttl = c->relay->cfg->cert_ttl;
    if (req->path.n != 10 || memcmp(req->path.p, "/v1/enroll", 10) != 0) {
        refuse(c, 404, NULL, "the enrollment endpoint is POST /v1/enroll");
        return;
    }
    X509_REQ *csr = tnl_pki_csr_parse((const char *)req->body.p, req->body.n, err, sizeof err);
    if (!csr || tnl_pki_csr_check(csr, cn, sizeof cn, err, sizeof err) < 0) {
        X509_REQ_free(csr);
        refuse(c, 400, NULL, err);
        return;
    }
    EVP_PKEY *pk = X509_REQ_get0_pubkey(csr);
    int bits = EVP_PKEY_get_bits(pk);
    const char *type = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA ? "rsa" : "ec";
    X509_REQ_free(csr);
    crypto_hash_sha256(md, req->token.p, req->token.n);
    sodium_bin2hex(hash, sizeof hash, md, sizeof md);
    int status = tnl_lua_relay_enroll(c->relay, hash, cn, type, bits, c->src, role, sizeof role, &ttl, err,
                                      sizeof err);
    if (status != 200) {
        refuse(c, status, cn, err);
        return;
    }
    char *cert = NULL, *ca = NULL;
    if (tnl_relay_issue(c->relay->cfg, (const char *)req->body.p, req->body.n, cn, role, ttl, &cert, &ca, err,
                        sizeof err) < 0) {
        refuse(c, 500, cn, err);
        return;
    }
    size_t cl = strlen(cert), al = strlen(ca);
    char *both = malloc(cl + al + 1);
    if (both) {
        memcpy(both, cert, cl);
        memcpy(both + cl, ca, al + 1);
        log_enroll(c, "enroll", cn, role, NULL);
        tnl_metrics.enrollments++;
        respond(c, 200, "application/x-pem-file", both, cl + al);
    } else {
        conn_free(c);
    }
    free(both);
    free(cert);
    free(ca);
}

static void read_ready(struct tnl_io *io, int events)
{
    struct enroll_conn *c = io->owner;
    struct tnl_enroll_req req;
    const char *why = NULL;
    ssize_t r = tnl_io_read(io, c->buf + c->len, BUF_MAX - c->len);
    if (r == -EAGAIN)
        return;
    if (r <= 0) {
        conn_free(c);
        return;
    }
    c->len += (size_t)r;
    enum tnl_sniff_status st = tnl_enroll_parse(c->buf, c->len, &req, &why);
    if (st == TNL_SNIFF_NEED_MORE && c->len < BUF_MAX)
        return;
    tnl_io_want(io, 0);
    ev_timer_stop(tnl_ev, &c->timer);
    if (st != TNL_SNIFF_MATCH) {
        refuse(c, 400, NULL, why ? why : "request too large");
        return;
    }
    handle(c, &req);
}

static void tls_done(struct tnl_io *io, const char *err, void *arg)
{
    struct enroll_conn *c = arg;
    if (err) {
        log_enroll(c, "enroll_refused", NULL, NULL, err);
        conn_free(c);
        return;
    }
    io->owner = c;
    io->ready = read_ready;
    tnl_io_want(io, TNL_IO_READ);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct enroll_conn *c = w->data;
    log_enroll(c, "enroll_refused", NULL, NULL, "no complete request in time");
    conn_free(c);
}

static void on_accept(struct tnl_listener *l, int fd, const struct sockaddr *peer, socklen_t plen)
{
    (void)plen;
    struct tnl_relay *r = l->owner;
    if (!tnl_admit_handshake(peer, "enrollment rate limit for this address")) {
        close(fd);
        return;
    }
    struct enroll_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->relay = r;
    tnl_addr_format(peer, c->src, sizeof c->src);
    tnl_loop_work_add();
    ev_timer_init(&c->timer, timeout_cb, ENROLL_TIMEOUT, 0);
    c->timer.data = c;
    ev_timer_start(tnl_ev, &c->timer);
    c->io = tnl_tls_new(r->cfg->enroll_tls, fd, tls_done, c);
    if (!c->io)
        conn_free(c);
}

int tnl_enroll_open(struct tnl_relay *r, char *err, size_t cap)
{
    struct tnl_relay_cfg *cfg = r->cfg;
    r->enroll_l.fd = -1;
    if (!cfg->enroll_addr[0])
        return 0;
    int rc = tnl_listener_open(&r->enroll_l, (struct sockaddr *)&cfg->enroll_bind, cfg->enroll_bindlen,
                               on_accept, r);
    if (rc < 0) {
        r->enroll_l.fd = -1;
        snprintf(err, cap, "relay '%s': cannot listen for enrollment on %s: %s", cfg->name, cfg->enroll_addr,
                 strerror(-rc));
        return rc;
    }
    tnl_logf(TNL_LOG_INFO, "enroll_listen", "relay '%s' enrolling agents on %s", cfg->name, r->enroll_l.addr_str);
    return 0;
}

void tnl_enroll_close(struct tnl_relay *r)
{
    if (r->enroll_l.fd >= 0)
        tnl_listener_close(&r->enroll_l);
    r->enroll_l.fd = -1;
}

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
#include "http/exchange.h"
#include "limit/admission.h"
#include "lua/l_relay.h"
#include "pki/pki.h"
#include "relay/relay.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"

enum { ENROLL_TIMEOUT = 10, BUF_MAX = TNL_ENROLL_HEAD_MAX + TNL_ENROLL_BODY_MAX };

static void done(struct tnl_http_exchange *x)
{
    (void)x;
    tnl_loop_work_done();
}

static void log_enroll(struct tnl_http_exchange *x, const char *event, const char *name, const char *role,
                       const char *why)
{
    struct tnl_log l;
    if (!tnl_log_begin(&l, why ? TNL_LOG_WARN : TNL_LOG_INFO, event))
        return;
    tnl_log_str(&l, "src", x->src);
    if (name)
        tnl_log_str(&l, "name", name);
    if (role)
        tnl_log_str(&l, "role", role);
    if (why)
        tnl_log_str(&l, "reason", why);
    tnl_log_end(&l);
}

static void respond(struct tnl_http_exchange *x, int status, const char *type, const char *body, size_t len)
{
    char *out = malloc(len + 256);
    size_t n = out ? tnl_enroll_response(out, len + 256, status, type, body, len) : 0;
    tnl_http_exchange_send(x, out, n);
}

static void refuse(struct tnl_http_exchange *x, int status, const char *name, const char *why)
{
    char body[300];
    int n = snprintf(body, sizeof body, "%s\n", why);
    log_enroll(x, "enroll_refused", name, NULL, why);
    tnl_metrics.enrollments_refused++;
    respond(x, status, "text/plain", body, (size_t)n);
}

static void handle(struct tnl_http_exchange *x, const struct tnl_enroll_req *req)
{
    char err[512], cn[256], hash[2 * crypto_hash_sha256_BYTES + 1], role[64] = "";
    uint8_t md[crypto_hash_sha256_BYTES];
    struct tnl_relay *relay = x->owner;
    double ttl = relay->cfg->cert_ttl;
    if (req->path.n != 10 || memcmp(req->path.p, "/v1/enroll", 10) != 0) {
        refuse(x, 404, NULL, "the enrollment endpoint is POST /v1/enroll");
        return;
    }
    X509_REQ *csr = tnl_pki_csr_parse((const char *)req->body.p, req->body.n, err, sizeof err);
    if (!csr || tnl_pki_csr_check(csr, cn, sizeof cn, err, sizeof err) < 0) {
        X509_REQ_free(csr);
        refuse(x, 400, NULL, err);
        return;
    }
    EVP_PKEY *pk = X509_REQ_get0_pubkey(csr);
    int bits = EVP_PKEY_get_bits(pk);
    const char *type = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA ? "rsa" : "ec";
    X509_REQ_free(csr);
    crypto_hash_sha256(md, req->token.p, req->token.n);
    sodium_bin2hex(hash, sizeof hash, md, sizeof md);
    int status = tnl_lua_relay_enroll(relay, hash, cn, type, bits, x->src, role, sizeof role, &ttl, err,
                                      sizeof err);
    if (status != 200) {
        refuse(x, status, cn, err);
        return;
    }
    char *cert = NULL, *ca = NULL;
    if (tnl_relay_issue(relay->cfg, (const char *)req->body.p, req->body.n, cn, role, ttl, &cert, &ca, err,
                        sizeof err) < 0) {
        refuse(x, 500, cn, err);
        return;
    }
    size_t cl = strlen(cert), al = strlen(ca);
    char *both = malloc(cl + al + 1);
    if (both) {
        memcpy(both, cert, cl);
        memcpy(both + cl, ca, al + 1);
        log_enroll(x, "enroll", cn, role, NULL);
        tnl_metrics.enrollments++;
        respond(x, 200, "application/x-pem-file", both, cl + al);
    } else {
        tnl_http_exchange_free(x);
    }
    free(both);
    free(cert);
    free(ca);
}

static void on_data(struct tnl_http_exchange *x, const uint8_t *buf, size_t len, int full)
{
    struct tnl_enroll_req req;
    const char *why = NULL;
    enum tnl_sniff_status st = tnl_enroll_parse(buf, len, &req, &why);
    if (st == TNL_SNIFF_NEED_MORE && !full)
        return;
    if (st != TNL_SNIFF_MATCH)
        refuse(x, 400, NULL, why ? why : "request too large");
    else
        handle(x, &req);
}

static void on_timeout(struct tnl_http_exchange *x)
{
    log_enroll(x, "enroll_refused", NULL, NULL, "no complete request in time");
}

static const struct tnl_http_exchange_cbs exchange_cbs = { .data = on_data, .timeout = on_timeout, .done = done };

static void tls_done(struct tnl_io *io, const char *err, void *arg)
{
    (void)io;
    struct tnl_http_exchange *x = arg;
    if (err) {
        log_enroll(x, "enroll_refused", NULL, NULL, err);
        tnl_http_exchange_free(x);
        return;
    }
    tnl_http_exchange_read(x);
}

static void on_accept(struct tnl_listener *l, int fd, const struct sockaddr *peer, socklen_t plen)
{
    (void)plen;
    struct tnl_relay *r = l->owner;
    if (!tnl_admit_handshake(peer, "enrollment rate limit for this address")) {
        close(fd);
        return;
    }
    struct tnl_http_exchange *x = tnl_http_exchange_new(BUF_MAX, ENROLL_TIMEOUT, peer, &exchange_cbs, r);
    if (!x) {
        close(fd);
        return;
    }
    tnl_loop_work_add();
    struct tnl_io *io = tnl_tls_new(r->cfg->enroll_tls, fd, tls_done, x);
    if (!io) {
        tnl_http_exchange_free(x);
        return;
    }
    tnl_http_exchange_attach(x, io);
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

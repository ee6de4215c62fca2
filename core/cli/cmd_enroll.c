/*
 * cmd_enroll.c — tunnel enroll: an agent's first certificate.
 *
 *   tunnel enroll --relay HOST:PORT --name N --out DIR (--token T | --token-file F)
 *                 (--ca FILE | --pin SHA256) [--server-name NAME] [--rsa]
 *
 * The key is generated here and never leaves the machine: it is written
 * (mode 0600) into a new generation folder of DIR before anything is sent.
 * The relay answers a CSR for NAME plus the bootstrap token with a short-lived
 * client certificate and its CA certificate; DIR/current then switches to the
 * new generation atomically (pki/credstore.h). An agent uses it with
 * tls = { dir = DIR } and renews it by itself.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "cli/cli.h"
#include "enroll/request.h"
#include "pki/credstore.h"
#include "pki/pki.h"
#include "tls/tls.h"
#include "util/addr.h"
#include "util/atomic_file.h"

struct enroll_opts {
    const char *relay, *name, *out, *token, *token_file, *ca, *pin, *server_name;
    int rsa;
};

static int die(const char *msg)
{
    fprintf(stderr, "tunnel enroll: %s\n", msg);
    return 1;
}

static int parse(int argc, char **argv, struct enroll_opts *o)
{
    static const struct option lo[] = {
        { "relay", required_argument, NULL, 'r' }, { "name", required_argument, NULL, 'n' },
        { "out", required_argument, NULL, 'o' }, { "token", required_argument, NULL, 't' },
        { "token-file", required_argument, NULL, 'T' }, { "ca", required_argument, NULL, 'c' },
        { "pin", required_argument, NULL, 'p' }, { "server-name", required_argument, NULL, 's' },
        { "rsa", no_argument, NULL, 'R' }, { NULL, 0, NULL, 0 },
    };
    int c;
    memset(o, 0, sizeof *o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r': o->relay = optarg; break;
        case 'n': o->name = optarg; break;
        case 'o': o->out = optarg; break;
        case 't': o->token = optarg; break;
        case 'T': o->token_file = optarg; break;
        case 'c': o->ca = optarg; break;
        case 'p': o->pin = optarg; break;
        case 's': o->server_name = optarg; break;
        case 'R': o->rsa = 1; break;
        default: return -1;
        }
    }
    if (!o->relay || !o->name || !o->out || (!o->token && !o->token_file) || (!o->ca && !o->pin) || optind != argc) {
        die("usage: tunnel enroll --relay HOST:PORT --name N --out DIR (--token T | --token-file F) "
            "(--ca FILE | --pin SHA256) [--server-name NAME] [--rsa]");
        return -1;
    }
    return 0;
}

static int dial(const char *relay, char *err, size_t cap)
{
    struct tnl_hostport hp;
    const char *why;
    char port[8];
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
    if (tnl_hostport_parse(relay, strlen(relay), &hp, &why) < 0) {
        snprintf(err, cap, "--relay %s: %s", relay, why);
        return -1;
    }
    snprintf(port, sizeof port, "%u", hp.port);
    int rc = getaddrinfo(hp.host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, cap, "cannot resolve %s: %s", hp.host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    struct timeval tv = { .tv_sec = 10 };
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            snprintf(err, cap, "cannot connect to %s: %s", relay, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Send the request, read the whole answer. Returns the response length. */
static ssize_t exchange(SSL *ssl, const char *req, size_t req_len, char *resp, size_t cap)
{
    size_t got = 0, put;
    if (SSL_write_ex(ssl, req, req_len, &put) != 1 || put != req_len)
        return -1;
    for (;;) {
        size_t n = 0;
        if (got >= cap || SSL_read_ex(ssl, resp + got, cap - got, &n) != 1)
            break;
        got += n;
    }
    return (ssize_t)got;
}

static int request(const struct enroll_opts *o, const char *token, const char *csr, char *resp, size_t cap,
                   size_t *resp_len, char *err, size_t errcap)
{
    struct tnl_tls_cfg tc = { .server = 0, .ca = o->ca, .pin = o->pin };
    struct tnl_tls_ctx *ctx = tnl_tls_ctx_new(&tc, err, errcap);
    if (!ctx)
        return -1;
    int fd = dial(o->relay, err, errcap);
    SSL *ssl = fd >= 0 ? tnl_tls_connect_blocking(ctx, fd, o->server_name, err, errcap) : NULL;
    ssize_t n = -1;
    if (ssl) {
        size_t csr_len = strlen(csr);
        size_t cap_req = csr_len + strlen(token) + 512;
        char *req = malloc(cap_req);
        if (req) {
            int hl = snprintf(req, cap_req, "POST /v1/enroll HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                              "Content-Type: application/pkcs10\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                              o->relay, token, csr_len);
            memcpy(req + hl, csr, csr_len);
            n = exchange(ssl, req, (size_t)hl + csr_len, resp, cap);
            sodium_memzero(req, (size_t)hl);
            free(req);
        }
        if (n < 0)
            snprintf(err, errcap, "the relay closed the connection before answering");
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    tnl_tls_ctx_unref(ctx);
    *resp_len = n > 0 ? (size_t)n : 0;
    return n > 0 ? 0 : -1;
}

static char *read_token(const struct enroll_opts *o, char *err, size_t cap)
{
    if (o->token)
        return strdup(o->token);
    size_t len;
    char *t = tnl_file_read(o->token_file, 4096, &len, err, cap);
    while (t && len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
        t[--len] = 0;
    return t;
}

/* The answer is the certificate, then the CA certificate. */
static int split_pem(const char *body, size_t len, size_t *cert_len)
{
    static const char end[] = "-----END CERTIFICATE-----";
    const char *p = memmem(body, len, end, sizeof end - 1);
    if (!p)
        return -1;
    p += sizeof end - 1;
    if (p < body + len && *p == '\n')
        p++;
    *cert_len = (size_t)(p - body);
    return *cert_len < len ? 0 : -1;
}

int tnl_cli_enroll(int argc, char **argv)
{
    struct enroll_opts o;
    char err[512], gen[4096], resp[TNL_ENROLL_BODY_MAX + 4096];
    if (parse(argc, argv, &o) < 0)
        return 2;
    char *token = read_token(&o, err, sizeof err);
    if (!token)
        return die(err);
    EVP_PKEY *key = tnl_pki_keygen(o.rsa ? TNL_KEY_RSA2048 : TNL_KEY_P256, err, sizeof err);
    X509_REQ *csr = key ? tnl_pki_csr_create(key, o.name, err, sizeof err) : NULL;
    char *csr_pem = csr ? tnl_pki_csr_pem(csr, NULL) : NULL;
    int rc = csr_pem && tnl_cred_stage(o.out, key, gen, sizeof gen, err, sizeof err) == 0 ? 0 : -1;
    EVP_PKEY_free(key);
    X509_REQ_free(csr);
    size_t resp_len = 0;
    if (rc == 0)
        rc = request(&o, token, csr_pem, resp, sizeof resp, &resp_len, err, sizeof err);
    sodium_memzero(token, strlen(token));
    free(token);
    free(csr_pem);
    if (rc < 0)
        return die(err);
    int status = 0;
    struct tnl_slice body;
    const char *why = NULL;
    size_t cert_len;
    if (tnl_enroll_parse_response((uint8_t *)resp, resp_len, &status, &body, &why) != TNL_SNIFF_MATCH)
        return die("the relay's answer is not a complete HTTP response");
    if (status != 200) {
        fprintf(stderr, "tunnel enroll: refused by the relay (%d): %.*s", status, (int)body.n, (const char *)body.p);
        return 1;
    }
    if (split_pem((const char *)body.p, body.n, &cert_len) < 0)
        return die("the relay's answer does not hold a certificate and its CA");
    if (tnl_cred_commit(o.out, gen, (const char *)body.p, cert_len, (const char *)body.p + cert_len,
                        body.n - cert_len, err, sizeof err) < 0)
        return die(err);
    struct tnl_cred_paths p;
    struct tnl_identity id;
    tnl_cred_paths(o.out, &p);
    if (tnl_tls_file_identity(p.cert, &id, err, sizeof err) == 0)
        printf("enrolled '%s' (role %s) in %s; certificate valid until %lld (Unix time), fingerprint %s\n",
               id.name, id.role[0] ? id.role : "(none)", o.out, (long long)id.expires, id.fingerprint);
    return 0;
}

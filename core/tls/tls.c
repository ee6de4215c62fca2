/*
 * tls.c — TLS 1.3 sessions as tnl_io endpoints (see tls.h).
 *
 * Readiness is subtle with TLS: OpenSSL may hold decrypted bytes that epoll
 * cannot see (SSL_has_pending), and a read may need the socket writable (or a
 * write readable) to make progress. The io therefore keeps what the owner
 * wants (io.events) apart from what the socket must be watched for, and feeds
 * itself a READ event when plaintext is already buffered.
 *
 * Reads and writes behave like a socket's: a read returns as many records as
 * the socket had (a short read means "drained", so an owner may stop there),
 * a write takes as many records as the socket takes. OpenSSL hands one record
 * at a time to its BIO; ours sends the records of one write with MSG_MORE but
 * the last, so that a 128 KiB write leaves as a few large segments rather
 * than eight 16 KiB ones, each waking the peer.
 */
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "loop/loop.h"
#include "util/str.h"

struct tnl_tls_ctx {
    SSL_CTX *ssl;
    int refs;
    int has_ca;
    int has_pin;
    unsigned char pin[32];
};

enum tls_state { TLS_HANDSHAKE, TLS_OPEN, TLS_FAILED };

enum { TLS_RECORD_MAX = 16384 };      /* plaintext per TLS 1.3 record */

struct tls_io {
    struct tnl_io io;
    struct tnl_tls_ctx *ctx;        /* referenced */
    SSL *ssl;
    int fd;
    ev_io w;
    enum tls_state state;
    int read_wants;                 /* socket events the last SSL_read waits for */
    int write_wants;                /* socket events the last SSL_write waits for */
    unsigned more : 1;              /* more records follow this one (MSG_MORE) */
    unsigned rx_short : 1;          /* the last recv returned less than asked: drained */
    unsigned rx_eof : 1;            /* the last recv returned 0 */
    tnl_tls_done_fn done;
    void *arg;
    char err[256];
};

static int pin_index = -1;          /* SSL ex_data slot: the tnl_tls_ctx */

/* ---- configuration ------------------------------------------------------ */

int tnl_fpr_parse(const char *in, char out[TNL_FPR_HEX + 1])
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == ':')
            continue;
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) || n >= TNL_FPR_HEX)
            return -EINVAL;
        out[n++] = c;
    }
    out[n] = 0;
    return n == TNL_FPR_HEX ? 0 : -EINVAL;
}

static void openssl_err(char *err, size_t cap, const char *what, const char *file)
{
    char detail[200];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    snprintf(err, cap, "%s %s: %s", what, file ? file : "", e ? detail : "unknown error");
}

static int cert_sha256(X509 *cert, unsigned char md[32])
{
    unsigned int n = 0;
    return X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == 32 ? 0 : -1;
}

/* With a pin, the leaf must have that fingerprint. Without a CA the chain
 * need not verify (a self-signed relay pinned by its agents); with both, both
 * must hold. */
static int verify_cb(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tnl_tls_ctx *c = ssl ? SSL_get_ex_data(ssl, pin_index) : NULL;
    if (!c || !c->has_pin)
        return ok;
    if (X509_STORE_CTX_get_error_depth(store) > 0)
        return c->has_ca ? ok : 1;
    if (c->has_ca && !ok)
        return 0;
    unsigned char md[32];
    X509 *leaf = X509_STORE_CTX_get_current_cert(store);
    if (!leaf || cert_sha256(leaf, md) < 0 || CRYPTO_memcmp(md, c->pin, 32) != 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
}

static int load_pin(struct tnl_tls_ctx *c, const char *pin, char *err, size_t cap)
{
    char hex[TNL_FPR_HEX + 1];
    if (tnl_fpr_parse(pin, hex) < 0) {
        snprintf(err, cap, "tls pin must be a SHA-256 fingerprint (64 hex digits, colons allowed)");
        return -EINVAL;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        c->pin[i] = (unsigned char)v;
    }
    c->has_pin = 1;
    return 0;
}

static int setup_ctx(struct tnl_tls_ctx *c, const struct tnl_tls_cfg *cfg, char *err, size_t cap)
{
    SSL_CTX *s = c->ssl;
    SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(s, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read whole bursts of records per recv: fewer syscalls on bulk streams. */
    SSL_CTX_set_read_ahead(s, 1);
    SSL_CTX_set_default_read_buffer_len(s, 64 * 1024);
    if (cfg->cert && SSL_CTX_use_certificate_chain_file(s, cfg->cert) != 1) {
        openssl_err(err, cap, "cannot load tls certificate", cfg->cert);
        return -EINVAL;
    }
    if (cfg->key && SSL_CTX_use_PrivateKey_file(s, cfg->key, SSL_FILETYPE_PEM) != 1) {
        openssl_err(err, cap, "cannot load tls key", cfg->key);
        return -EINVAL;
    }
    if (cfg->cert && cfg->key && SSL_CTX_check_private_key(s) != 1) {
        snprintf(err, cap, "tls key %s does not match certificate %s", cfg->key, cfg->cert);
        return -EINVAL;
    }
    if (cfg->ca && SSL_CTX_load_verify_locations(s, cfg->ca, NULL) != 1) {
        openssl_err(err, cap, "cannot load tls ca", cfg->ca);
        return -EINVAL;
    }
    c->has_ca = cfg->ca != NULL;
    if (cfg->pin && load_pin(c, cfg->pin, err, cap) < 0)
        return -EINVAL;
    int mode = SSL_VERIFY_NONE;
    if (cfg->server) {
        if (cfg->require_client_cert)   /* 2: optional (token-authenticated agents) */
            mode = SSL_VERIFY_PEER | (cfg->require_client_cert == 1 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    } else if (cfg->ca || cfg->pin) {
        mode = SSL_VERIFY_PEER;
    }
    SSL_CTX_set_verify(s, mode, verify_cb);
    return 0;
}

struct tnl_tls_ctx *tnl_tls_ctx_new(const struct tnl_tls_cfg *cfg, char *err, size_t cap)
{
    if (pin_index < 0)
        pin_index = SSL_get_ex_new_index(0, "tnl_tls_ctx", NULL, NULL, NULL);
    if (cfg->server && (!cfg->cert || !cfg->key)) {
        snprintf(err, cap, "a tls server needs cert and key");
        return NULL;
    }
    if (cfg->server && cfg->require_client_cert && !cfg->ca) {
        snprintf(err, cap, "tls: requiring client certificates needs a ca");
        return NULL;
    }
    if (!cfg->server && !cfg->ca && !cfg->pin) {
        snprintf(err, cap, "tls: a client must verify its peer: give ca or pin");
        return NULL;
    }
    struct tnl_tls_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    c->refs = 1;
    c->ssl = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
    if (!c->ssl || setup_ctx(c, cfg, err, cap) < 0) {
        if (!c->ssl)
            snprintf(err, cap, "cannot create a tls context");
        SSL_CTX_free(c->ssl);
        free(c);
        return NULL;
    }
    return c;
}

void tnl_tls_ctx_ref(struct tnl_tls_ctx *c)
{
    c->refs++;
}

void tnl_tls_ctx_unref(struct tnl_tls_ctx *c)
{
    if (!c || --c->refs > 0)
        return;
    SSL_CTX_free(c->ssl);
    OPENSSL_cleanse(c->pin, sizeof c->pin);
    free(c);
}

/* ---- identity ----------------------------------------------------------- */

static void name_entry(X509_NAME *name, int nid, char *out, size_t cap)
{
    out[0] = 0;
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0)
        return;
    ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n > 0) {
        size_t m = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
        memcpy(out, utf8, m);
        out[m] = 0;
    }
    OPENSSL_free(utf8);
}

static int cert_identity(X509 *cert, struct tnl_identity *id)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    struct tm tm;
    memset(id, 0, sizeof *id);
    X509_NAME *subject = X509_get_subject_name(cert);
    name_entry(subject, NID_commonName, id->name, sizeof id->name);
    name_entry(subject, NID_organizationalUnitName, id->role, sizeof id->role);
    if (cert_sha256(cert, md) < 0)
        return -EINVAL;
    for (int i = 0; i < 32; i++) {
        id->fingerprint[2 * i] = hex[md[i] >> 4];
        id->fingerprint[2 * i + 1] = hex[md[i] & 15];
    }
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
        id->expires = (int64_t)timegm(&tm);
    if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) == 1)
        id->issued = (int64_t)timegm(&tm);
    tnl_strlcpy(id->via, "cert", sizeof id->via);
    return 0;
}

int tnl_tls_peer_identity(struct tnl_io *io, struct tnl_identity *id)
{
    struct tls_io *t = (struct tls_io *)io;
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (!cert)
        return -ENOENT;
    int rc = cert_identity(cert, id);
    X509_free(cert);
    return rc;
}

int tnl_tls_file_identity(const char *path, struct tnl_identity *id, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return -errno;
    }
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert) {
        openssl_err(err, cap, "not a PEM certificate:", path);
        return -EINVAL;
    }
    int rc = cert_identity(cert, id);
    X509_free(cert);
    return rc;
}

/* ---- the socket BIO ------------------------------------------------------ */

/* OpenSSL's socket BIO would do, but it writes with write(2) (SIGPIPE when the
 * peer is gone; nothing in this process ignores it) and cannot say whether a
 * record is the last of a batch, nor whether a recv drained the socket. */
static BIO_METHOD *sock_method;

static int sock_write(BIO *b, const char *data, size_t len, size_t *written)
{
    struct tls_io *t = BIO_get_data(b);
    ssize_t r;
    BIO_clear_retry_flags(b);
    do {
        r = send(t->fd, data, len, MSG_NOSIGNAL | (t->more ? MSG_MORE : 0));
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        return 0;
    }
    *written = (size_t)r;
    return 1;
}

static int sock_read(BIO *b, char *data, size_t len, size_t *readbytes)
{
    struct tls_io *t = BIO_get_data(b);
    ssize_t r;
    BIO_clear_retry_flags(b);
    do {
        r = recv(t->fd, data, len, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        t->rx_short = 1;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_read(b);
        return 0;
    }
    if (r == 0) {
        t->rx_eof = 1;          /* BIO_eof: OpenSSL reports an unexpected EOF */
        return 0;
    }
    t->rx_short = (size_t)r < len;
    *readbytes = (size_t)r;
    return 1;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num; (void)ptr;
    struct tls_io *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;               /* nothing is buffered here */
    case BIO_CTRL_EOF:
        return t && t->rx_eof;
    default:
        return 0;
    }
}

static int sock_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO *sock_bio(struct tls_io *t)
{
    if (!sock_method) {
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tnl socket");
        if (!m || !BIO_meth_set_write_ex(m, sock_write) || !BIO_meth_set_read_ex(m, sock_read) ||
            !BIO_meth_set_ctrl(m, sock_ctrl) || !BIO_meth_set_create(m, sock_create)) {
            BIO_meth_free(m);
            return NULL;
        }
        sock_method = m;        /* process lifetime */
    }
    BIO *b = BIO_new(sock_method);
    if (b)
        BIO_set_data(b, t);
    return b;
}

/* ---- the io ------------------------------------------------------------- */

static void watch(struct tls_io *t)
{
    int ev = 0;
    if (t->state == TLS_HANDSHAKE) {
        ev = t->read_wants;
    } else {
        if (t->io.events & TNL_IO_READ)
            ev |= t->read_wants ? t->read_wants : EV_READ;
        if (t->io.events & TNL_IO_WRITE)
            ev |= t->write_wants ? t->write_wants : EV_WRITE;
    }
    if (ev_is_active(&t->w)) {
        if (t->w.events == ev)
            return;
        ev_io_stop(tnl_ev, &t->w);
    }
    if (ev) {
        ev_io_modify(&t->w, ev);    /* same fd: no forced re-registration */
        ev_io_start(tnl_ev, &t->w);
    }
}

static int want_of(SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ: return EV_READ;
    case SSL_ERROR_WANT_WRITE: return EV_WRITE;
    default: return 0;
    }
}

static void handshake_failed(struct tls_io *t, int rc)
{
    long vr = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_last_error();
    char detail[200] = "";
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    if (vr != X509_V_OK)
        snprintf(t->err, sizeof t->err, "certificate rejected: %s", X509_verify_cert_error_string(vr));
    else if (e)
        snprintf(t->err, sizeof t->err, "tls handshake failed: %s", detail);
    else if (SSL_get_error(t->ssl, rc) == SSL_ERROR_SYSCALL)
        snprintf(t->err, sizeof t->err, "tls handshake failed: connection closed by peer");
    else
        snprintf(t->err, sizeof t->err, "tls handshake failed");
    t->state = TLS_FAILED;
    ev_io_stop(tnl_ev, &t->w);
    t->done(&t->io, t->err, t->arg);
}

static void handshake(struct tls_io *t)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->state = TLS_OPEN;
        t->read_wants = 0;
        ev_io_stop(tnl_ev, &t->w);
        t->done(&t->io, NULL, t->arg);
        return;
    }
    int w = want_of(t->ssl, rc);
    if (!w) {
        handshake_failed(t, rc);
        return;
    }
    t->read_wants = w;
    watch(t);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct tls_io *t = w->data;
    if (t->state == TLS_HANDSHAKE) {
        handshake(t);
        return;
    }
    /* Map socket readiness back to what the owner waits for: a read that
     * needed the socket writable is a READ event for the owner, and so on. */
    int ev = 0;
    if ((revents & (t->read_wants ? t->read_wants : EV_READ)) && (t->io.events & TNL_IO_READ))
        ev |= TNL_IO_READ;
    if ((revents & (t->write_wants ? t->write_wants : EV_WRITE)) && (t->io.events & TNL_IO_WRITE))
        ev |= TNL_IO_WRITE;
    if (ev && t->io.ready)
        t->io.ready(&t->io, ev);
}

static ssize_t ssl_fail(struct tls_io *t, int rc)
{
    int e = SSL_get_error(t->ssl, rc);
    /* Keep the reason of a protocol failure for tnl_io_error: after a TLS 1.3
     * handshake the server's verdict on our certificate arrives as an alert
     * on the first read ("tlsv1 alert unknown ca"), and the log should say
     * so rather than "read failed". */
    unsigned long le = e == SSL_ERROR_SSL ? ERR_peek_last_error() : 0;
    if (le) {
        const char *r = ERR_reason_error_string(le);
        if (r)
            snprintf(t->err, sizeof t->err, "tls: %s", r);
        else
            ERR_error_string_n(le, t->err, sizeof t->err);
    }
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_SYSCALL && errno != 0)
        return -errno;
    return -EPROTO;
}

static ssize_t tls_read(struct tnl_io *io, void *buf, size_t n)
{
    struct tls_io *t = (struct tls_io *)io;
    size_t total = 0;
    int rc = 1;
    if (t->state != TLS_OPEN)
        return -ENOTCONN;
    /* One record per SSL_read: go on until the buffer is full or the socket
     * is drained (the last recv was short and nothing is left decrypted or
     * read ahead), as one recv on a socket would. */
    while (total < n) {
        size_t got = 0;
        ERR_clear_error();
        errno = 0;
        rc = SSL_read_ex(t->ssl, (uint8_t *)buf + total, n - total, &got);
        if (rc != 1)
            break;
        total += got;
        if (t->rx_short && !SSL_has_pending(t->ssl))
            break;
    }
    int w = rc == 1 ? 0 : want_of(t->ssl, rc);
    if (rc == 1 || w) {
        int rw = w == EV_WRITE ? EV_WRITE : 0;
        if (t->read_wants != rw) {
            t->read_wants = rw;
            watch(t);
        }
    }
    if (total) {
        /* A full buffer with records still inside OpenSSL: epoll will not
         * announce those, and an owner may stop at a full read. Announce
         * them ourselves. */
        if (SSL_has_pending(t->ssl) && ev_is_active(&t->w) && (t->io.events & TNL_IO_READ))
            ev_feed_event(tnl_ev, &t->w, EV_READ);
        return (ssize_t)total;
    }
    if (w)
        return -EAGAIN;
    ssize_t r = ssl_fail(t, rc);
    /* A peer that closes TCP without close_notify ends the stream too. */
    return r == -EPROTO && SSL_get_error(t->ssl, rc) == SSL_ERROR_SYSCALL ? 0 : r;
}

/* The peer broke the connection while we wrote. A TLS 1.3 server that
 * rejects our certificate sends its alert, then closes: the alert still waits
 * in the socket. Read it, so that tnl_io_error names it; whatever data comes
 * before it is lost with the connection anyway. */
static void read_alert(struct tls_io *t)
{
    uint8_t scratch[1024];
    for (int i = 0; i < 8; i++) {
        size_t got = 0;
        ERR_clear_error();
        int rc = SSL_read_ex(t->ssl, scratch, sizeof scratch, &got);
        if (rc != 1) {
            if (!want_of(t->ssl, rc))
                ssl_fail(t, rc);
            break;
        }
    }
    ERR_clear_error();
    OPENSSL_cleanse(scratch, sizeof scratch);
}

static ssize_t tls_write(struct tnl_io *io, const void *buf, size_t n)
{
    struct tls_io *t = (struct tls_io *)io;
    size_t total = 0;
    int rc = 1;
    if (t->state != TLS_OPEN)
        return -ENOTCONN;
    /* With SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write returns after each
     * record: go on until everything is taken or the socket is full. A
     * record left half-sent inside OpenSSL is retried by the next call with
     * the same bytes (the owner's unsent data starts with them). */
    while (total < n) {
        size_t put = 0;
        t->more = n - total > TLS_RECORD_MAX;
        ERR_clear_error();
        errno = 0;
        rc = SSL_write_ex(t->ssl, (const uint8_t *)buf + total, n - total, &put);
        if (rc != 1)
            break;
        total += put;
    }
    t->more = 0;
    int w = rc == 1 ? 0 : want_of(t->ssl, rc);
    if (rc == 1 || w) {
        int ww = w == EV_READ ? EV_READ : 0;
        if (t->write_wants != ww) {
            t->write_wants = ww;
            watch(t);
        }
    }
    if (total)
        return (ssize_t)total;
    if (w)
        return -EAGAIN;
    ssize_t r = ssl_fail(t, rc);
    if (!t->err[0])
        read_alert(t);
    return r;
}

static int tls_shutdown(struct tnl_io *io)
{
    struct tls_io *t = (struct tls_io *)io;
    if (t->state == TLS_OPEN) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);       /* close_notify; we do not wait for the peer's */
        ERR_clear_error();
    }
    return shutdown(t->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void tls_want(struct tnl_io *io, int events)
{
    struct tls_io *t = (struct tls_io *)io;
    io->events = events;
    if (t->state != TLS_OPEN)
        return;
    watch(t);
    /* Plaintext already decrypted inside OpenSSL: epoll will not say so. */
    if ((events & TNL_IO_READ) && SSL_has_pending(t->ssl) && ev_is_active(&t->w))
        ev_feed_event(tnl_ev, &t->w, t->read_wants ? t->read_wants : EV_READ);
}

static void tls_close(struct tnl_io *io, int abort)
{
    struct tls_io *t = (struct tls_io *)io;
    ev_io_stop(tnl_ev, &t->w);
    ev_clear_pending(tnl_ev, &t->w);
    if (abort) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else if (t->state == TLS_OPEN) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    SSL_free(t->ssl);
    close(t->fd);
    tnl_tls_ctx_unref(t->ctx);
    free(t);
}

static const char *tls_error(struct tnl_io *io)
{
    struct tls_io *t = (struct tls_io *)io;
    return t->err[0] ? t->err : NULL;
}

static const struct tnl_io_ops tls_ops = {
    .kind = "tls",
    .error = tls_error,
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .want = tls_want,
    .close = tls_close,
};

/* Start the handshake on the next loop turn so done never runs inside new. */
static void start_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    struct tls_io *t = w->data;
    ev_set_cb(&t->w, io_cb);
    handshake(t);
}

struct tnl_io *tnl_tls_new(struct tnl_tls_ctx *ctx, int fd, tnl_tls_done_fn done, void *arg)
{
    struct tls_io *t = calloc(1, sizeof *t);
    SSL *ssl = t ? SSL_new(ctx->ssl) : NULL;
    if (!t || !ssl) {
        free(t);
        close(fd);
        return NULL;
    }
    t->io.ops = &tls_ops;
    t->ctx = ctx;
    tnl_tls_ctx_ref(ctx);
    t->ssl = ssl;
    t->fd = fd;
    t->done = done;
    t->arg = arg;
    BIO *bio = sock_bio(t);
    if (!bio) {
        SSL_free(ssl);
        tnl_tls_ctx_unref(ctx);
        free(t);
        close(fd);
        return NULL;
    }
    SSL_set_bio(ssl, bio, bio);
    SSL_set_ex_data(ssl, pin_index, ctx);
    if (SSL_is_server(ssl))
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    ev_io_init(&t->w, start_cb, fd, EV_WRITE);
    t->w.data = t;
    ev_io_start(tnl_ev, &t->w);
    return &t->io;
}

int tnl_tls_set_server_name(struct tnl_io *io, const char *name)
{
    struct tls_io *t = (struct tls_io *)io;
    if (SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return -EINVAL;
    return SSL_set1_host(t->ssl, name) == 1 ? 0 : -EINVAL;
}

SSL *tnl_tls_connect_blocking(struct tnl_tls_ctx *ctx, int fd, const char *server_name, char *err, size_t cap)
{
    SSL *ssl = SSL_new(ctx->ssl);
    if (!ssl) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    SSL_set_fd(ssl, fd);
    SSL_set_ex_data(ssl, pin_index, ctx);
    if (server_name && *server_name) {
        SSL_set_tlsext_host_name(ssl, server_name);
        SSL_set1_host(ssl, server_name);
    }
    ERR_clear_error();
    if (SSL_connect(ssl) != 1) {
        long vr = SSL_get_verify_result(ssl);
        unsigned long e = ERR_peek_last_error();
        char detail[200] = "connection closed";
        if (e)
            ERR_error_string_n(e, detail, sizeof detail);
        ERR_clear_error();
        if (vr != X509_V_OK)
            snprintf(err, cap, "the relay's certificate was rejected: %s", X509_verify_cert_error_string(vr));
        else
            snprintf(err, cap, "tls handshake failed: %s", detail);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

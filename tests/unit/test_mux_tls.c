/*
 * test_mux_tls.c — yamux sessions over real TLS 1.3 (core/tls) on a loopback
 * TCP connection, with splices (core/net/splice) between streams and
 * socketpairs: the data path of the relay and the agent, in one process.
 *
 * Covered: records that one socket read brought in together are all
 * delivered with nothing else arriving afterwards (OpenSSL holds them where
 * epoll cannot see them); bytes in order both ways at once through the
 * splice's zero-copy paths (peek/consume from a stream, reserve/commit into
 * one), with half-close passed on each way; a small ping-pong beside a bulk
 * stream of the same session is not held back behind it; no protocol error
 * and no window overrun (the receiver checks every frame).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "unit.h"
#include "unit_loop.h"

#include "loop/loop.h"
#include "mux/mux.h"
#include "mux/mux_int.h"
#include "net/splice.h"
#include "tls/tls.h"
#include "util/buf.h"
#include "util/log.h"

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 11);
    }
}

/* ---- credentials: a self-signed server certificate, pinned by the client --- */

static char cert_path[64], key_path[64];
static struct tnl_tls_ctx *server_ctx, *client_ctx;

static void make_credentials(void)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(pkey);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"relay", -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);

    snprintf(cert_path, sizeof cert_path, "/tmp/test_mux_tls.%d.crt", (int)getpid());
    snprintf(key_path, sizeof key_path, "/tmp/test_mux_tls.%d.key", (int)getpid());
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    f = fopen(key_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);

    char err[256];
    struct tnl_identity id;
    assert_int_equal(tnl_tls_file_identity(cert_path, &id, err, sizeof err), 0);
    struct tnl_tls_cfg scfg = { .server = 1, .cert = cert_path, .key = key_path };
    struct tnl_tls_cfg ccfg = { .server = 0, .pin = id.fingerprint };
    server_ctx = tnl_tls_ctx_new(&scfg, err, sizeof err);
    client_ctx = tnl_tls_ctx_new(&ccfg, err, sizeof err);
    assert_non_null(server_ctx);
    assert_non_null(client_ctx);
}

/* ---- a TLS session pair over loopback TCP ----------------------------------- */

struct side {
    struct tnl_io *tls;
    struct tnl_mux *m;
    int handshaken;
    int closed, err;
    struct tnl_io *inbound[8];
    unsigned ninbound;
};

static void tls_done(struct tnl_io *io, const char *err, void *arg)
{
    struct side *sd = arg;
    (void)io;
    if (err)
        fail_msg("handshake failed: %s", err);
    sd->handshaken = 1;
}

static void on_stream(struct tnl_mux *m, struct tnl_io *io, void *arg)
{
    struct side *sd = arg;
    (void)m;
    if (sd->ninbound < 8)
        sd->inbound[sd->ninbound++] = io;
    else
        tnl_io_close(io, 1);
}

static void on_close(struct tnl_mux *m, int err, const char *why, void *arg)
{
    struct side *sd = arg;
    (void)why;
    sd->closed++;
    sd->err = err;
    sd->m = NULL;
    tnl_mux_free(m);
}

static void tcp_pair(int fds[2])
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof a), 0);
    fds[1] = accept(l, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(l);
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

/* a = agent (TLS client, yamux client), b = relay (TLS server, yamux server) */
static void sessions(struct side *a, struct side *b)
{
    int fds[2];
    struct tnl_mux_cfg ca, cb;
    struct tnl_mux_cbs cbs = { .on_stream = on_stream, .on_close = on_close };
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    tcp_pair(fds);
    a->tls = tnl_tls_new(client_ctx, fds[0], tls_done, a);
    b->tls = tnl_tls_new(server_ctx, fds[1], tls_done, b);
    assert_non_null(a->tls);
    assert_non_null(b->tls);
    RUN_UNTIL(a->handshaken && b->handshaken, 5);
    tnl_mux_cfg_defaults(&ca);
    tnl_mux_cfg_defaults(&cb);
    ca.client = 1;
    ca.keepalive_interval = cb.keepalive_interval = 0;     /* nothing but what the test sends */
    a->m = tnl_mux_new(a->tls, &ca, &cbs, a);
    b->m = tnl_mux_new(b->tls, &cb, &cbs, b);
    assert_non_null(a->m);
    assert_non_null(b->m);
}

static void sessions_end(struct side *a, struct side *b)
{
    struct tnl_mux_stats st;
    for (struct side *sd = a; sd; sd = sd == a ? b : NULL) {
        if (!sd->m)
            continue;
        tnl_mux_stats(sd->m, &st);
        assert_int_equal(st.protocol_errors, 0);
        tnl_mux_free(sd->m);
        sd->m = NULL;
    }
    for (int i = 0; i < 20; i++)
        tnl_loop_step(0.001);
}

/* ---- stream owners ----------------------------------------------------------- */

/* Reads whatever arrives (counting, optionally keeping it). */
struct reader {
    uint8_t *buf;
    size_t len, cap;
    int eof, err;
};

static void reader_ready(struct tnl_io *io, int events)
{
    struct reader *r = io->owner;
    (void)events;
    for (;;) {
        uint8_t sink[65536];
        uint8_t *dst = r->buf ? r->buf + r->len : sink;
        size_t room = r->buf ? r->cap - r->len : sizeof sink;
        if (!room)
            return;
        ssize_t n = tnl_io_read(io, dst, room);
        if (n == -EAGAIN)
            return;
        if (n <= 0) {
            if (n == 0)
                r->eof = 1;
            else
                r->err = (int)n;
            tnl_io_want(io, 0);
            return;
        }
        r->len += (size_t)n;
    }
}

static void reader_attach(struct reader *r, struct tnl_io *io)
{
    io->owner = r;
    io->ready = reader_ready;
    tnl_io_want(io, TNL_IO_READ);
}

/* ---- tests ----------------------------------------------------------------------- */

/* One burst of many records (several MB: many socket reads, each bringing
 * several records), then silence: every byte must arrive without anything
 * else coming in to wake the receiver. Also bursts of many small frames on
 * many streams (many small records). */
static void test_burst_then_silence(void **state)
{
    (void)state;
    struct side a, b;
    sessions(&a, &b);
    enum { N = 3 << 20, S = 6 };
    uint8_t *data = malloc(N);
    fill(data, N, 21);

    struct tnl_io *s = tnl_mux_open(a.m);
    size_t off = 0;
    while (off < N) {           /* as fast as the window lets it go */
        ssize_t w = tnl_io_write(s, data + off, N - off);
        if (w > 0)
            off += (size_t)w;
        tnl_loop_step(0);
        if (b.ninbound == 1 && !b.inbound[0]->owner) {
            static struct reader r1;
            memset(&r1, 0, sizeof r1);
            r1.buf = malloc(N);
            r1.cap = N;
            reader_attach(&r1, b.inbound[0]);
        }
    }
    RUN_UNTIL(b.ninbound == 1 && b.inbound[0]->owner, 5);
    struct reader *r1 = b.inbound[0]->owner;
    RUN_UNTIL(r1->len == N, 10);
    assert_memory_equal(r1->buf, data, N);

    /* Small frames, several streams, all written in one loop iteration. */
    struct reader rs[S];
    memset(rs, 0, sizeof rs);
    struct tnl_io *ss[S];
    for (int i = 0; i < S; i++) {
        ss[i] = tnl_mux_open(a.m);
        for (int k = 0; k < 50; k++)
            assert_int_equal(tnl_io_write(ss[i], data + 100 * (i * 50 + k), 100), 100);
    }
    RUN_UNTIL(b.ninbound == 1 + S, 5);
    for (int i = 0; i < S; i++) {
        rs[i].buf = malloc(5000);
        rs[i].cap = 5000;
        reader_attach(&rs[i], b.inbound[1 + i]);
    }
    for (int i = 0; i < S; i++) {
        RUN_UNTIL(rs[i].len == 5000, 5);
        assert_memory_equal(rs[i].buf, data + 100 * i * 50, 5000);
        free(rs[i].buf);
        tnl_io_close(ss[i], 1);
        tnl_io_close(b.inbound[1 + i], 1);
    }
    free(r1->buf);
    tnl_io_close(s, 1);
    tnl_io_close(b.inbound[0], 1);
    sessions_end(&a, &b);
    free(data);
}

/* A socketpair end driven by the test: writes `out` (then shuts down its
 * write side), reads everything into `in`. */
struct endpoint {
    int fd;
    const uint8_t *out;
    size_t out_len, out_off;
    uint8_t *in;
    size_t in_len, in_cap;
    int shut, eof;
};

static void endpoint_pump(struct endpoint *e)
{
    while (e->out_off < e->out_len) {
        size_t n = e->out_len - e->out_off;
        if (n > 100000)
            n = 1 + (e->out_off * 7919) % 100000;   /* varied write sizes */
        ssize_t w = send(e->fd, e->out + e->out_off, n, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        e->out_off += (size_t)w;
    }
    if (e->out_off == e->out_len && !e->shut) {
        e->shut = 1;
        shutdown(e->fd, SHUT_WR);
    }
    while (!e->eof) {
        ssize_t r = recv(e->fd, e->in + e->in_len, e->in_cap - e->in_len, 0);
        if (r < 0)
            break;
        if (r == 0)
            e->eof = 1;
        e->in_len += (size_t)r;
    }
}

static int spliced_done;

static void splice_done(struct tnl_splice *sp, int err, char side)
{
    (void)side;
    assert_int_equal(err, 0);
    spliced_done++;
    tnl_splice_release(sp);
    tnl_io_close(sp->a, 0);
    tnl_io_close(sp->b, 0);
}

/* The relay/agent data path in miniature: socketpair <-splice-> stream
 * <-TLS-> stream <-splice-> socketpair, 16 MB one way and 8 MB the other at
 * the same time, varied write sizes, FIN passed on each way. */
static void test_splice_both_ways(void **state)
{
    (void)state;
    struct side a, b;
    sessions(&a, &b);
    enum { UP = 16 << 20, DOWN = 8 << 20 };
    uint8_t *up = malloc(UP), *down = malloc(DOWN);
    fill(up, UP, 31);
    fill(down, DOWN, 32);
    int pa[2], pb[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pa), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pb), 0);
    struct endpoint ea = { .fd = pa[1], .out = up, .out_len = UP, .in = malloc(DOWN + 1), .in_cap = DOWN + 1 };
    struct endpoint eb = { .fd = pb[1], .out = down, .out_len = DOWN, .in = malloc(UP + 1), .in_cap = UP + 1 };

    static struct tnl_splice sa, sb;
    spliced_done = 0;
    struct tnl_io *s = tnl_mux_open(a.m);
    tnl_splice_start(&sa, tnl_io_fd_new(pa[0]), s, NULL, 0, splice_done, NULL);
    RUN_UNTIL(b.ninbound == 1, 5);
    tnl_splice_start(&sb, b.inbound[0], tnl_io_fd_new(pb[0]), NULL, 0, splice_done, NULL);

    double end = mono() + 30;
    while (!(ea.eof && eb.eof && spliced_done == 2)) {
        assert_true(mono() < end);
        endpoint_pump(&ea);
        endpoint_pump(&eb);
        tnl_loop_step(0.001);
    }
    assert_int_equal(eb.in_len, UP);
    assert_memory_equal(eb.in, up, UP);
    assert_int_equal(ea.in_len, DOWN);
    assert_memory_equal(ea.in, down, DOWN);
    close(pa[1]);
    close(pb[1]);
    sessions_end(&a, &b);
    free(up);
    free(down);
    free(ea.in);
    free(eb.in);
}

/* An endless writer on one stream. */
static uint8_t hose_pat[65536];

static void hose_ready(struct tnl_io *io, int events)
{
    (void)events;
    for (int i = 0; i < 32; i++)
        if (tnl_io_write(io, hose_pat, sizeof hose_pat) <= 0)
            return;
}

/* One-byte ping-pong beside a bulk stream of the same TLS session: the
 * relay writes a byte on one stream, the agent echoes it. */
static void echo_ready(struct tnl_io *io, int events)
{
    uint8_t b[64];
    (void)events;
    ssize_t n = tnl_io_read(io, b, sizeof b);
    if (n > 0)
        assert_int_equal(tnl_io_write(io, b, (size_t)n), n);
}

static void test_pingpong_beside_bulk(void **state)
{
    (void)state;
    struct side a, b;
    sessions(&a, &b);
    fill(hose_pat, sizeof hose_pat, 41);
    struct reader sink = { 0 };
    /* b (relay) opens both streams; a (agent) sinks the bulk one, echoes the other. */
    struct tnl_io *bulk = tnl_mux_open(b.m), *pp = tnl_mux_open(b.m);
    bulk->ready = hose_ready;
    tnl_io_want(bulk, TNL_IO_WRITE);
    /* Both SYNs may arrive in one read: tell the streams apart by id. */
    RUN_UNTIL(a.ninbound == 2, 5);
    int ib = tnl_mux_stream_id(a.inbound[0]) == tnl_mux_stream_id(bulk) ? 0 : 1;
    assert_int_equal(tnl_mux_stream_id(a.inbound[ib]), tnl_mux_stream_id(bulk));
    assert_int_equal(tnl_mux_stream_id(a.inbound[1 - ib]), tnl_mux_stream_id(pp));
    reader_attach(&sink, a.inbound[ib]);
    double t_end = mono() + 0.3;
    while (mono() < t_end)
        tnl_loop_step(0.001);
    assert_true(sink.len > (8u << 20));

    struct reader back = { .buf = malloc(64), .cap = 64 };
    reader_attach(&back, pp);
    while (tnl_io_write(pp, "p", 1) == -EAGAIN)     /* in line behind the bulk stream */
        tnl_loop_step(0);
    a.inbound[1 - ib]->ready = echo_ready;
    tnl_io_want(a.inbound[1 - ib], TNL_IO_READ);
    RUN_UNTIL(back.len == 1, 5);
    double worst = 0, sum = 0;
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        back.len = 0;
        double t0 = mono();
        ssize_t w;
        while ((w = tnl_io_write(pp, "p", 1)) == -EAGAIN)
            tnl_loop_step(0);
        assert_int_equal(w, 1);
        RUN_UNTIL(back.len == 1, 5);
        double lat = mono() - t0;
        sum += lat;
        if (lat > worst)
            worst = lat;
    }
    size_t before = sink.len;
    t_end = mono() + 0.05;
    while (mono() < t_end)
        tnl_loop_step(0.001);
    print_message("    ping-pong beside a bulk stream over TLS: mean %.2f ms, worst %.2f ms\n",
                  sum / N * 1e3, worst * 1e3);
    assert_true(sink.len > before);     /* the bulk stream still flows */
    assert_true(worst < 0.25);
    free(back.buf);
    tnl_io_close(bulk, 1);
    tnl_io_close(pp, 1);
    tnl_io_close(a.inbound[0], 1);
    tnl_io_close(a.inbound[1], 1);
    sessions_end(&a, &b);
}

static int setup(void **state)
{
    (void)state;
    tnl_log_level = TNL_LOG_ERROR;
    if (tnl_loop_init() < 0)
        return -1;
    make_credentials();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tnl_tls_ctx_unref(server_ctx);
    tnl_tls_ctx_unref(client_ctx);
    unlink(cert_path);
    unlink(key_path);
    tnl_buf_pool_drain();
    tnl_mux_pool_drain();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_silence),
        cmocka_unit_test(test_splice_both_ways),
        cmocka_unit_test(test_pingpong_beside_bulk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

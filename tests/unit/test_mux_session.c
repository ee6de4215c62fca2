/*
 * test_mux_session.c — yamux sessions (core/mux) driven by the real loop over
 * socketpairs: two of our sessions talking to each other, or one session and
 * a "raw peer" (the test itself writing and reading frames byte by byte).
 *
 * Covered: open/accept, data both ways with checksums, half-close each way,
 * RST both ways, the window never exceeded (counted on the wire) and resumed by
 * WindowUpdates (big and tiny), a WindowUpdate sent while a frame is half
 * received (it gives back only what was consumed), auto-tuning growth and its ceiling, ping RTT,
 * keepalive timeout (and a live peer keeping the session up), GoAway draining,
 * max_streams and backlog refusals (RST, not a session error), every protocol
 * violation (GoAway(1) on the wire + on_close(-EPROTO) + a counter), frames for
 * a stream we reset (ignored), Data+SYN carrying data, our frames matching the
 * libp2p capture, transport EOF, freeing the session from inside callbacks and
 * with streams still held, and the memory an idle stream costs.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "unit_loop.h"

#include "loop/loop.h"
#include "mux/mux.h"
#include "mux/mux_int.h"
#include "util/buf.h"
#include "util/log.h"

/* ---- helpers: time, loop, content ------------------------------------------ */

static void run_for(double secs)
{
    double end = mono() + secs;
    while (mono() < end)
        tnl_loop_step(0.005);
}

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

static void pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
}

/* ---- session callbacks ------------------------------------------------------ */

struct side {
    struct tnl_mux *m;
    int closed;
    int err;
    const char *why;
    struct tnl_mux_stats at_close;
    struct tnl_io *inbound[64];
    unsigned ninbound;
    void (*take)(struct side *sd, struct tnl_io *io);   /* what to do with an inbound stream */
    int free_in_on_stream;
};

static void on_stream(struct tnl_mux *m, struct tnl_io *io, void *arg)
{
    struct side *sd = arg;
    if (sd->ninbound < 64)
        sd->inbound[sd->ninbound] = io;
    sd->ninbound++;
    if (sd->take)
        sd->take(sd, io);
    if (sd->free_in_on_stream) {
        tnl_io_close(io, 1);
        sd->m = NULL;
        tnl_mux_free(m);
    }
}

static void on_close(struct tnl_mux *m, int err, const char *why, void *arg)
{
    struct side *sd = arg;
    sd->closed++;
    sd->err = err;
    sd->why = why;
    tnl_mux_stats(m, &sd->at_close);
    sd->m = NULL;
    tnl_mux_free(m);
}

static struct tnl_mux_cfg cfg_of(int client)
{
    struct tnl_mux_cfg cfg;
    tnl_mux_cfg_defaults(&cfg);
    cfg.client = client;
    return cfg;
}

static void side_start(struct side *sd, int fd, const struct tnl_mux_cfg *cfg)
{
    struct tnl_mux_cbs cbs = { .on_stream = on_stream, .on_close = on_close };
    struct tnl_io *t = tnl_io_fd_new(fd);
    assert_non_null(t);
    sd->m = tnl_mux_new(t, cfg, &cbs, sd);
    assert_non_null(sd->m);
}

static void side_stop(struct side *sd)
{
    if (sd->m)
        tnl_mux_free(sd->m);
    sd->m = NULL;
    run_for(0.01);      /* deliver the last notifications */
}

/* ---- stream owners ---------------------------------------------------------- */

/* Reads everything, writes `out`, shuts down after it (if shut), closes when done. */
struct peer {
    struct tnl_io *io;
    uint8_t *in;
    size_t in_len, in_cap;
    const uint8_t *out;
    size_t out_len, out_off;
    int shut;           /* shut down after out */
    int read_on;        /* read (else leave the data queued) */
    int eof, err, werr, done;
    int close_when_done;
    unsigned wakes;
};

static void peer_ready(struct tnl_io *io, int events);

static void peer_want(struct peer *p)
{
    int ev = 0;
    if (p->read_on && !p->eof && !p->err)
        ev |= TNL_IO_READ;
    if (p->out_off < p->out_len && !p->werr)
        ev |= TNL_IO_WRITE;
    tnl_io_want(p->io, ev);
}

static void peer_attach(struct peer *p, struct tnl_io *io)
{
    p->io = io;
    io->owner = p;
    io->ready = peer_ready;
    peer_want(p);
}

static void peer_pump(struct peer *p)
{
    while (p->out_off < p->out_len && !p->werr) {
        ssize_t w = tnl_io_write(p->io, p->out + p->out_off, p->out_len - p->out_off);
        if (w == -EAGAIN)
            break;
        if (w < 0) {
            p->werr = (int)w;
            break;
        }
        p->out_off += (size_t)w;
    }
    if (p->shut == 1 && p->out_off == p->out_len && !p->werr) {
        p->shut = 2;
        assert_int_equal(p->io->ops->shutdown(p->io), 0);
    }
    while (p->read_on && !p->eof && !p->err) {
        if (p->in_len == p->in_cap) {
            p->in_cap = p->in_cap ? p->in_cap * 2 : 65536;
            p->in = realloc(p->in, p->in_cap);
        }
        ssize_t r = tnl_io_read(p->io, p->in + p->in_len, p->in_cap - p->in_len);
        if (r == -EAGAIN)
            break;
        if (r < 0)
            p->err = (int)r;
        else if (r == 0)
            p->eof = 1;
        else
            p->in_len += (size_t)r;
    }
    int finished = (p->eof || p->err) && (p->out_off == p->out_len || p->werr) && p->shut != 1;
    if (finished && p->close_when_done && !p->done) {
        p->done = 1;
        tnl_io_close(p->io, p->err || p->werr);
        p->io = NULL;
        return;
    }
    peer_want(p);
}

static void peer_ready(struct tnl_io *io, int events)
{
    struct peer *p = io->owner;
    p->wakes++;
    peer_pump(p);
}

static void peer_close(struct peer *p, int abort)
{
    if (p->io && !p->done)
        tnl_io_close(p->io, abort);
    p->io = NULL;
    p->done = 1;
}

static void peer_clear(struct peer *p)
{
    free(p->in);
    memset(p, 0, sizeof *p);
}

/* ---- the raw peer: the test speaks yamux itself ------------------------------ */

struct raw {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    int eof;
};

static void raw_init(struct raw *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->cap = 8 << 20;
    r->buf = malloc(r->cap);
}

static void raw_done(struct raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
}

static void raw_send(struct raw *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    double end = mono() + 5;
    while (n) {
        ssize_t w = send(r->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return;     /* the session closed on us (protocol error tests) */
        if (w < 0) {
            assert_int_equal(errno, EAGAIN);
            assert_true(mono() < end);
            tnl_loop_step(0.001);
            continue;
        }
        b += w;
        n -= (size_t)w;
    }
}

static void raw_frame(struct raw *r, enum tnl_mux_type type, uint16_t flags, uint32_t id,
                      uint32_t len, const void *payload)
{
    uint8_t h[TNL_MUX_HDR_LEN];
    tnl_mux_frame_encode(h, type, flags, id, len);
    raw_send(r, h, sizeof h);
    if (payload && len)
        raw_send(r, payload, len);
}

static void raw_hex(struct raw *r, const char *hex)
{
    size_t n;
    uint8_t *b = unit_unhex(hex, &n);
    raw_send(r, b, n);
    free(b);
}

static void raw_fill(struct raw *r)
{
    while (r->len < r->cap) {
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n <= 0) {
            if (n == 0)
                r->eof = 1;
            return;
        }
        r->len += (size_t)n;
    }
}

/* Drop the Ping SYNs (our RTT probes) at the head of what was read. */
static void raw_skip_pings(struct raw *r)
{
    while (r->len >= TNL_MUX_HDR_LEN && r->buf[1] == TNL_MUX_PING && r->buf[3] == TNL_MUX_SYN) {
        memmove(r->buf, r->buf + TNL_MUX_HDR_LEN, r->len - TNL_MUX_HDR_LEN);
        r->len -= TNL_MUX_HDR_LEN;
    }
}

/* The next frame the session sent (payload copied to *payload, malloc'ed,
 * when non-NULL). 0 on timeout or EOF. */
static int raw_next(struct raw *r, struct tnl_mux_frame *f, uint8_t **payload, double secs)
{
    double end = mono() + secs;
    for (;;) {
        raw_fill(r);
        if (r->len >= TNL_MUX_HDR_LEN) {
            assert_int_equal(tnl_mux_frame_decode(r->buf, r->len, UINT32_MAX, f, NULL),
                             TNL_MUX_FRAME_OK);
            size_t need = TNL_MUX_HDR_LEN + (f->type == TNL_MUX_DATA ? f->length : 0);
            if (r->len >= need) {
                if (payload) {
                    *payload = malloc(need - TNL_MUX_HDR_LEN + 1);
                    memcpy(*payload, r->buf + TNL_MUX_HDR_LEN, need - TNL_MUX_HDR_LEN);
                }
                memmove(r->buf, r->buf + need, r->len - need);
                r->len -= need;
                return 1;
            }
        }
        if (r->eof || mono() > end)
            return 0;
        tnl_loop_step(0.002);
    }
}

/* Skip frames until one of this type (and stream) arrives. */
static int raw_expect(struct raw *r, enum tnl_mux_type type, uint32_t id, struct tnl_mux_frame *f,
                      double secs)
{
    double end = mono() + secs;
    while (mono() < end) {
        if (!raw_next(r, f, NULL, end - mono()))
            return 0;
        if (f->type == type && (type == TNL_MUX_PING || type == TNL_MUX_GO_AWAY || f->stream_id == id))
            return 1;
    }
    return 0;
}

/* A session (server unless client) whose peer is the test. */
static void raw_session(struct side *sd, struct raw *r, const struct tnl_mux_cfg *cfg)
{
    int fds[2];
    pair(fds);
    side_start(sd, fds[0], cfg);
    raw_init(r, fds[1]);
}

/* ---- fixtures ---------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    tnl_log_level = TNL_LOG_ERROR;      /* protocol errors are expected here */
    return tnl_loop_init();
}

static int teardown(void **state)
{
    (void)state;
    tnl_buf_pool_drain();
    tnl_mux_pool_drain();
    return 0;
}

/* Two of our sessions over one socketpair; a is the client. */
static void two_sessions(struct side *a, struct side *b, const struct tnl_mux_cfg *ca,
                         const struct tnl_mux_cfg *cb)
{
    int fds[2];
    struct tnl_mux_cfg dca = cfg_of(1), dcb = cfg_of(0);
    pair(fds);
    side_start(a, fds[0], ca ? ca : &dca);
    side_start(b, fds[1], cb ? cb : &dcb);
}

/* ---- tests: data ------------------------------------------------------------- */

static struct peer bpeers[64];

static int all_done(const struct peer *x, const struct peer *y, int n)
{
    for (int i = 0; i < n; i++)
        if (!x[i].done || !y[i].done)
            return 0;
    return 1;
}

static void take_echo_peer(struct side *sd, struct tnl_io *io)
{
    struct peer *p = &bpeers[sd->ninbound - 1];
    p->read_on = 1;
    p->close_when_done = 1;
    peer_attach(p, io);
}

/* 1 MiB each way on one stream, both FINs, checksums (byte equality). */
static void test_data_both_ways(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_echo_peer };
    enum { N = 1 << 20 };
    uint8_t *up = malloc(N), *down = malloc(N);
    fill(up, N, 1);
    fill(down, N, 2);
    memset(bpeers, 0, sizeof bpeers);
    bpeers[0].out = down;
    bpeers[0].out_len = N;
    bpeers[0].shut = 1;
    two_sessions(&a, &b, NULL, NULL);

    struct peer pa = { .read_on = 1, .out = up, .out_len = N, .shut = 1, .close_when_done = 1 };
    struct tnl_io *s = tnl_mux_open(a.m);
    assert_non_null(s);
    assert_int_equal(tnl_mux_stream_id(s), 1);
    peer_attach(&pa, s);
    RUN_UNTIL(pa.done && bpeers[0].done, 10);

    assert_int_equal(b.ninbound, 1);
    assert_int_equal(pa.err, 0);
    assert_int_equal(bpeers[0].err, 0);
    assert_int_equal(pa.in_len, N);
    assert_memory_equal(pa.in, down, N);
    assert_int_equal(bpeers[0].in_len, N);
    assert_memory_equal(bpeers[0].in, up, N);

    struct tnl_mux_stats st;
    tnl_mux_stats(a.m, &st);
    assert_int_equal(st.streams, 0);            /* both FINs: gone from the table */
    assert_int_equal(st.data_out, N);
    assert_int_equal(st.data_in, N);
    assert_int_equal(st.protocol_errors, 0);
    assert_int_equal(st.streams_opened, 1);
    assert_int_equal(tnl_mux_stream_id(NULL), 0);

    side_stop(&a);
    side_stop(&b);
    RUN_UNTIL(b.closed == 1, 2);                /* b saw a's transport go */
    peer_clear(&pa);
    peer_clear(&bpeers[0]);
    free(up);
    free(down);
}

/* Many streams at once, each with its own content. */
static void test_many_streams(void **state)
{
    (void)state;
    enum { S = 40, N = 100000 };
    struct side a = { 0 }, b = { .take = take_echo_peer };
    static struct peer pa[S];
    static uint8_t data[S][N];
    memset(bpeers, 0, sizeof bpeers);
    memset(pa, 0, sizeof pa);
    for (int i = 0; i < S; i++)
        bpeers[i].shut = 1;         /* nothing to send back: FIN once read */
    two_sessions(&a, &b, NULL, NULL);
    for (int i = 0; i < S; i++) {
        fill(data[i], N, 100 + (uint32_t)i);
        pa[i] = (struct peer){ .read_on = 1, .out = data[i], .out_len = N, .shut = 1, .close_when_done = 1 };
        peer_attach(&pa[i], tnl_mux_open(a.m));
    }
    RUN_UNTIL(all_done(pa, bpeers, S), 10);
    for (int i = 0; i < S; i++) {
        /* stream ids are odd and in order; b's i-th stream is a's i-th */
        assert_int_equal(bpeers[i].in_len, N);
        assert_memory_equal(bpeers[i].in, data[i], N);
        assert_int_equal(pa[i].in_len, 0);
        assert_int_equal(pa[i].eof, 1);
    }
    side_stop(&a);
    side_stop(&b);
    for (int i = 0; i < S; i++) {
        peer_clear(&pa[i]);
        peer_clear(&bpeers[i]);
    }
}

static void take_keep(struct side *sd, struct tnl_io *io)
{
    struct peer *p = &bpeers[sd->ninbound - 1];
    peer_attach(p, io);
}

/* Half-close, a's direction first: b reads EOF while still able to write;
 * then b's direction. */
static void test_half_close_each_way(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_keep };
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, NULL);

    struct peer pa = { .read_on = 1, .out = (const uint8_t *)"ping", .out_len = 4, .shut = 1 };
    peer_attach(&pa, tnl_mux_open(a.m));
    RUN_UNTIL(b.ninbound == 1, 2);
    struct peer *pb = &bpeers[0];
    pb->read_on = 1;
    peer_pump(pb);
    RUN_UNTIL(pb->eof, 2);
    assert_int_equal(pb->in_len, 4);
    assert_memory_equal(pb->in, "ping", 4);
    /* a's side is shut: writing there fails, b still writes */
    assert_int_equal(tnl_io_write(pa.io, "x", 1), -EPIPE);
    pb->out = (const uint8_t *)"pong!";
    pb->out_len = 5;
    peer_pump(pb);
    RUN_UNTIL(pa.in_len == 5, 2);
    assert_memory_equal(pa.in, "pong!", 5);
    assert_int_equal(pa.eof, 0);            /* b has not shut yet */
    assert_int_equal(tnl_io_read(pb->io, (uint8_t[8]){ 0 }, 8), 0);    /* EOF stays EOF */
    pb->shut = 1;
    peer_pump(pb);
    RUN_UNTIL(pa.eof, 2);
    struct tnl_mux_stats st;
    tnl_mux_stats(a.m, &st);
    assert_int_equal(st.streams, 0);
    peer_close(&pa, 0);
    peer_close(pb, 0);

    /* Now b's direction first: b shuts, a keeps writing. */
    struct peer pa2 = { .read_on = 1 };
    peer_attach(&pa2, tnl_mux_open(a.m));
    assert_int_equal(tnl_io_write(pa2.io, "hi", 2), 2);
    RUN_UNTIL(b.ninbound == 2, 2);
    struct peer *pb2 = &bpeers[1];
    pb2->read_on = 1;
    pb2->shut = 1;
    peer_pump(pb2);
    RUN_UNTIL(pa2.eof, 2);
    assert_int_equal(tnl_io_write(pa2.io, " there", 6), 6);
    pa2.shut = 1;
    peer_pump(&pa2);
    RUN_UNTIL(pb2->eof, 2);
    assert_int_equal(pb2->in_len, 8);
    assert_memory_equal(pb2->in, "hi there", 8);
    peer_close(&pa2, 0);
    peer_close(pb2, 0);
    run_for(0.02);
    tnl_mux_stats(b.m, &st);
    assert_int_equal(st.streams, 0);
    assert_int_equal(st.protocol_errors, 0);

    side_stop(&a);
    side_stop(&b);
    peer_clear(&pa);
    peer_clear(&pa2);
    peer_clear(&bpeers[0]);
    peer_clear(&bpeers[1]);
}

/* RST both ways: the other side's read and write fail with -ECONNRESET. */
static void test_reset_both_ways(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_keep };
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, NULL);

    struct peer pa = { .read_on = 1 };
    peer_attach(&pa, tnl_mux_open(a.m));
    assert_int_equal(tnl_io_write(pa.io, "abc", 3), 3);
    RUN_UNTIL(b.ninbound == 1, 2);
    bpeers[0].read_on = 1;
    peer_pump(&bpeers[0]);
    RUN_UNTIL(bpeers[0].in_len == 3, 2);
    tnl_io_close(pa.io, 1);                 /* a resets */
    pa.io = NULL;
    RUN_UNTIL(bpeers[0].err, 2);
    assert_int_equal(bpeers[0].err, -ECONNRESET);
    assert_int_equal(tnl_io_write(bpeers[0].io, "x", 1), -ECONNRESET);
    peer_close(&bpeers[0], 0);

    struct peer pa2 = { .read_on = 1 };
    peer_attach(&pa2, tnl_mux_open(a.m));
    assert_int_equal(tnl_io_write(pa2.io, "abc", 3), 3);
    RUN_UNTIL(b.ninbound == 2, 2);
    tnl_io_close(bpeers[1].io, 1);          /* b resets */
    bpeers[1].io = NULL;
    RUN_UNTIL(pa2.err, 2);
    assert_int_equal(pa2.err, -ECONNRESET);
    assert_int_equal(tnl_io_write(pa2.io, "x", 1), -ECONNRESET);
    assert_int_equal(pa2.io->ops->shutdown(pa2.io), -ECONNRESET);
    peer_close(&pa2, 0);

    /* Data in flight to a stream we reset is ignored, not a protocol error. */
    run_for(0.05);
    struct tnl_mux_stats st;
    tnl_mux_stats(a.m, &st);
    assert_int_equal(st.protocol_errors, 0);
    assert_int_equal(st.streams, 0);
    tnl_mux_stats(b.m, &st);
    assert_int_equal(st.protocol_errors, 0);
    assert_int_equal(st.streams, 0);
    side_stop(&a);
    side_stop(&b);
    peer_clear(&pa);
    peer_clear(&pa2);
    peer_clear(&bpeers[0]);
}

/* Closing with unread data resets the stream (as TCP does). */
static void test_close_with_unread_data_resets(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_keep };
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, NULL);
    struct peer pa = { .read_on = 1 };
    peer_attach(&pa, tnl_mux_open(a.m));
    assert_int_equal(tnl_io_write(pa.io, "unread", 6), 6);
    RUN_UNTIL(b.ninbound == 1, 2);
    run_for(0.02);
    tnl_io_close(bpeers[0].io, 0);          /* orderly close, but 6 bytes unread */
    bpeers[0].io = NULL;
    RUN_UNTIL(pa.err, 2);
    assert_int_equal(pa.err, -ECONNRESET);
    peer_close(&pa, 0);
    side_stop(&a);
    side_stop(&b);
    peer_clear(&pa);
}

/* ---- tests: flow control ----------------------------------------------------- */

/* Count Data bytes on the wire for one stream: never more than the window,
 * resumed exactly by each WindowUpdate, big or tiny. */
static void test_window_never_exceeded(void **state)
{
    (void)state;
    struct side sd = { 0 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    cfg.keepalive_interval = 0;
    raw_session(&sd, &r, &cfg);
    enum { N = 2 << 20 };
    uint8_t *data = malloc(N);
    fill(data, N, 7);

    sd.take = take_keep;
    memset(bpeers, 0, sizeof bpeers);
    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, 1, 0, NULL);     /* open, window 256 KiB */
    RUN_UNTIL(sd.ninbound == 1, 2);
    bpeers[0].out = data;
    bpeers[0].out_len = N;
    bpeers[0].shut = 1;
    peer_pump(&bpeers[0]);

    uint8_t *got = malloc(N);
    size_t total = 0;
    struct tnl_mux_frame f;
    uint8_t *pl;
    int first = 1;
    while (raw_next(&r, &f, &pl, 0.2)) {
        if (f.type == TNL_MUX_DATA) {
            if (first) {
                assert_true(f.flags & TNL_MUX_ACK);     /* our first frame acknowledges */
                first = 0;
            }
            memcpy(got + total, pl, f.length);
            total += f.length;
        }
        free(pl);
    }
    assert_int_equal(total, TNL_MUX_INITIAL_WINDOW);    /* exactly the window, no more */
    assert_int_equal(bpeers[0].out_off, TNL_MUX_INITIAL_WINDOW);

    /* A big update, then a thousand tiny ones (the JS peer sends one per frame). */
    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, 0, 1, 100000, NULL);
    for (int i = 0; i < 1000; i++)
        raw_frame(&r, TNL_MUX_WINDOW_UPDATE, 0, 1, 3, NULL);
    size_t allowed = TNL_MUX_INITIAL_WINDOW + 100000 + 3000;
    while (raw_next(&r, &f, &pl, 0.2)) {
        if (f.type == TNL_MUX_DATA) {
            memcpy(got + total, pl, f.length);
            total += f.length;
            assert_true(total <= allowed);
        }
        free(pl);
    }
    assert_int_equal(total, allowed);
    assert_memory_equal(got, data, total);
    /* The rest, one window at a time, until FIN. */
    int fin = 0;
    while (!fin) {
        raw_frame(&r, TNL_MUX_WINDOW_UPDATE, 0, 1, 300000, NULL);
        allowed += 300000;
        while (raw_next(&r, &f, &pl, 0.1)) {
            if (f.type == TNL_MUX_DATA) {
                memcpy(got + total, pl, f.length);
                total += f.length;
                assert_true(total <= allowed);
            }
            if (f.flags & TNL_MUX_FIN)
                fin = 1;
            free(pl);
        }
        assert_true(allowed < 2 * N);
    }
    assert_int_equal(total, N);
    assert_memory_equal(got, data, N);
    free(got);
    free(data);
    peer_close(&bpeers[0], 1);
    side_stop(&sd);
    raw_done(&r);
    peer_clear(&bpeers[0]);
}

/* A writer blocked on the window gets ready(WRITE) when the window reopens;
 * a reader that stops reading stops the sender (nothing queued beyond it). */
static void test_window_exhaustion_and_resume(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_keep };
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, NULL);
    enum { N = 3 << 20 };
    uint8_t *data = malloc(N);
    fill(data, N, 9);
    struct peer pa = { .out = data, .out_len = N, .shut = 1, .read_on = 1 };
    peer_attach(&pa, tnl_mux_open(a.m));
    RUN_UNTIL(b.ninbound == 1, 2);
    run_for(0.1);
    /* b does not read: a has written exactly one window and is blocked */
    assert_int_equal(pa.out_off, TNL_MUX_INITIAL_WINDOW);
    struct mux_stream *sb = (struct mux_stream *)bpeers[0].io;
    assert_int_equal(sb->rqueued, TNL_MUX_INITIAL_WINDOW);
    assert_int_equal(tnl_io_write(pa.io, data, 1), -EAGAIN);
    unsigned wakes = pa.wakes;
    bpeers[0].read_on = 1;
    bpeers[0].shut = 1;
    peer_pump(&bpeers[0]);
    RUN_UNTIL(bpeers[0].eof && pa.eof, 10);
    assert_true(pa.wakes > wakes);
    assert_int_equal(bpeers[0].in_len, N);
    assert_memory_equal(bpeers[0].in, data, N);
    peer_close(&pa, 0);
    peer_close(&bpeers[0], 0);
    side_stop(&a);
    side_stop(&b);
    peer_clear(&pa);
    peer_clear(&bpeers[0]);
    free(data);
}

/* A WindowUpdate sent while a Data frame is only partly received must not
 * count the part still to come as consumed: when it arrives, the window
 * would be overcommitted, and the next small read used to wrap the unsigned
 * arithmetic into a WindowUpdate of ~4 GiB (the peer then sends far beyond
 * the window; seen as "data beyond the receive window" through the tunnel).
 * Every update must give back exactly what the owner consumed. */
static void test_window_update_mid_frame(void **state)
{
    (void)state;
    struct side sd = { .take = take_keep };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    cfg.keepalive_interval = 0;
    cfg.max_window = TNL_MUX_INITIAL_WINDOW;        /* no auto-tuning: exact arithmetic */
    memset(bpeers, 0, sizeof bpeers);
    raw_session(&sd, &r, &cfg);
    enum { D = 200 * 1024, P = 150 * 1024 };
    uint8_t *data = malloc(D);
    fill(data, D, 13);

    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, 1, 0, NULL);
    RUN_UNTIL(sd.ninbound == 1, 2);
    struct tnl_io *io = bpeers[0].io;
    tnl_io_want(io, 0);                 /* the test reads by hand */
    uint8_t h[TNL_MUX_HDR_LEN];
    tnl_mux_frame_encode(h, TNL_MUX_DATA, 0, 1, D);
    raw_send(&r, h, sizeof h);
    raw_send(&r, data, P);              /* the frame's first part only */
    struct mux_stream *ms = (struct mux_stream *)io;
    RUN_UNTIL(ms->rqueued == P, 2);

    uint8_t *got = malloc(D);
    size_t consumed = 0;
    while (consumed < P)                /* past half the window: an update is due */
        consumed += (size_t)tnl_io_read(io, got + consumed, P - consumed);
    raw_send(&r, data + P, D - P);      /* the rest of the frame */
    RUN_UNTIL(ms->rqueued == D - P, 2);
    for (int i = 0; i < 100; i++)       /* small reads, one byte each */
        consumed += (size_t)tnl_io_read(io, got + consumed, 1);
    while (consumed < D) {
        ssize_t n = tnl_io_read(io, got + consumed, D - consumed);
        assert_true(n > 0);
        consumed += (size_t)n;
    }
    assert_memory_equal(got, data, D);
    run_for(0.02);

    unsigned long long credit = 0;
    struct tnl_mux_frame f;
    while (raw_next(&r, &f, NULL, 0.1)) {
        if (f.type == TNL_MUX_WINDOW_UPDATE && f.stream_id == 1) {
            assert_true(f.length <= TNL_MUX_INITIAL_WINDOW);
            credit += f.length;
        }
    }
    /* Given back: no more than what was consumed (the peer's credit is then
     * initial - D + credit <= initial), and at least half of it. */
    assert_true(credit <= consumed);
    assert_true(credit >= consumed / 2);
    assert_true(ms->rcredit + ms->rqueued <= ms->rwin);
    struct tnl_mux_stats st;
    tnl_mux_stats(sd.m, &st);
    assert_int_equal(st.protocol_errors, 0);
    free(got);
    free(data);
    peer_close(&bpeers[0], 1);
    side_stop(&sd);
    raw_done(&r);
}


/* A reader that keeps up grows its window (doubling), never past max_window. */
static void test_autotune(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_echo_peer };
    struct tnl_mux_cfg cb = cfg_of(0);
    cb.max_window = 1 << 20;
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, &cb);
    enum { N = 24 << 20 };
    uint8_t *data = malloc(N);
    fill(data, N, 11);
    struct peer pa = { .out = data, .out_len = N, .shut = 1, .read_on = 1 };
    peer_attach(&pa, tnl_mux_open(a.m));
    RUN_UNTIL(b.ninbound == 1, 2);
    bpeers[0].close_when_done = 0;
    bpeers[0].shut = 1;
    struct mux_stream *sb = (struct mux_stream *)bpeers[0].io;
    struct mux_stream *sa = (struct mux_stream *)pa.io;
    uint32_t max_seen = 0;
    double end = mono() + 20;
    while (!bpeers[0].eof && mono() < end) {
        tnl_loop_step(0.005);
        if (sb->rwin > max_seen)
            max_seen = sb->rwin;
        /* the sender never holds more credit than the receiver advertised */
        assert_true(sa->scredit + sb->rqueued <= sb->rwin);
    }
    assert_int_equal(bpeers[0].in_len, N);
    assert_memory_equal(bpeers[0].in, data, N);
    assert_int_equal(max_seen, 1 << 20);        /* grew, and stopped at the ceiling */
    peer_close(&pa, 0);
    peer_close(&bpeers[0], 0);
    side_stop(&a);
    side_stop(&b);
    peer_clear(&pa);
    peer_clear(&bpeers[0]);
    free(data);
}

/* A reader slower than 4 RTTs per half window keeps the initial window, and
 * each update gives back exactly what was consumed. */
static void test_autotune_slow_reader_stays(void **state)
{
    (void)state;
    struct side sd = { .take = take_keep };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    cfg.keepalive_interval = 0;
    memset(bpeers, 0, sizeof bpeers);
    raw_session(&sd, &r, &cfg);
    enum { HALF = TNL_MUX_INITIAL_WINDOW / 2 };
    uint8_t *chunk = malloc(HALF);
    fill(chunk, HALF, 3);
    for (int round = 0; round < 4; round++) {
        raw_frame(&r, TNL_MUX_DATA, round ? 0 : TNL_MUX_SYN, 1, HALF, chunk);
        RUN_UNTIL(sd.ninbound == 1, 2);
        struct mux_stream *s = (struct mux_stream *)bpeers[0].io;
        RUN_UNTIL(s->rqueued == HALF, 2);
        run_for(0.03);          /* 30 ms per half window: >> 4 x the 1 ms RTT floor */
        uint8_t sink[4096];
        size_t got = 0;
        while (got < HALF)
            got += (size_t)tnl_io_read(bpeers[0].io, sink, sizeof sink);
        struct tnl_mux_frame f;
        assert_true(raw_expect(&r, TNL_MUX_WINDOW_UPDATE, 1, &f, 1));
        assert_int_equal(f.length, HALF);
        assert_int_equal(s->rwin, TNL_MUX_INITIAL_WINDOW);
        assert_int_equal(s->rcredit, TNL_MUX_INITIAL_WINDOW);
    }
    free(chunk);
    peer_close(&bpeers[0], 1);
    side_stop(&sd);
    raw_done(&r);
}

/* ---- tests: keepalive, ping, GoAway --------------------------------------------- */

static double rtt_got = -2;
static int rtt_calls;
static void rtt_cb(void *arg, double rtt)
{
    (void)arg;
    rtt_got = rtt;
    rtt_calls++;
}

static void test_ping_rtt(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { 0 };
    two_sessions(&a, &b, NULL, NULL);
    rtt_got = -2;
    rtt_calls = 0;
    assert_int_equal(tnl_mux_ping(a.m, rtt_cb, NULL), 0);
    assert_int_equal(tnl_mux_ping(a.m, rtt_cb, NULL), 0);   /* shares the outstanding ping */
    RUN_UNTIL(rtt_calls == 2, 2);
    assert_true(rtt_got >= 0 && rtt_got < 1.0);
    struct tnl_mux_stats st;
    tnl_mux_stats(a.m, &st);
    assert_true(st.rtt >= 0 && st.rtt < 1.0);
    assert_true(st.pings_sent >= 1);
    side_stop(&a);
    side_stop(&b);
}

/* A peer that never answers pings: the session ends within interval + timeout. */
static void test_keepalive_timeout(void **state)
{
    (void)state;
    struct side sd = { 0 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(1);
    cfg.keepalive_interval = 0.2;
    cfg.keepalive_timeout = 0.3;
    raw_session(&sd, &r, &cfg);
    rtt_got = -2;
    rtt_calls = 0;
    assert_int_equal(tnl_mux_ping(sd.m, rtt_cb, NULL), 0);
    double t0 = mono();
    struct tnl_mux_frame f;
    assert_true(raw_expect(&r, TNL_MUX_PING, 0, &f, 1));
    assert_int_equal(f.flags, TNL_MUX_SYN);
    RUN_UNTIL(sd.closed, 2);
    double took = mono() - t0;
    assert_int_equal(sd.err, -ETIMEDOUT);
    assert_true(took >= 0.25 && took <= 0.2 + 0.3 + 0.15);
    assert_int_equal(rtt_calls, 1);
    assert_true(rtt_got < 0);               /* the ping failed with the session */
    raw_done(&r);
}

/* A peer that answers every ping keeps an idle session alive. */
static void test_keepalive_answered(void **state)
{
    (void)state;
    struct side sd = { 0 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(1);
    cfg.keepalive_interval = 0.1;
    cfg.keepalive_timeout = 0.15;
    raw_session(&sd, &r, &cfg);
    double end = mono() + 0.8;
    int pings = 0;
    struct tnl_mux_frame f;
    while (mono() < end) {
        if (raw_next(&r, &f, NULL, 0.05) && f.type == TNL_MUX_PING && f.flags == TNL_MUX_SYN) {
            raw_frame(&r, TNL_MUX_PING, TNL_MUX_ACK, 0, f.length, NULL);
            pings++;
        }
    }
    assert_true(pings >= 5);
    assert_int_equal(sd.closed, 0);
    struct tnl_mux_stats st;
    tnl_mux_stats(sd.m, &st);
    assert_true(st.rtt >= 0);
    /* We answer the peer's pings too, echoing the opaque value. */
    raw_frame(&r, TNL_MUX_PING, TNL_MUX_SYN, 0, 0xdeadbeef, NULL);
    assert_true(raw_expect(&r, TNL_MUX_PING, 0, &f, 1));
    while (f.flags != TNL_MUX_ACK)
        assert_true(raw_expect(&r, TNL_MUX_PING, 0, &f, 1));
    assert_int_equal(f.length, 0xdeadbeef);
    side_stop(&sd);
    raw_done(&r);
}

/* GoAway: no new streams either way, existing ones finish, then both end cleanly. */
static void test_goaway_drains(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_keep };
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, NULL);
    struct peer pa = { .read_on = 1 };
    peer_attach(&pa, tnl_mux_open(a.m));
    assert_int_equal(tnl_io_write(pa.io, "before", 6), 6);
    RUN_UNTIL(b.ninbound == 1, 2);
    tnl_mux_goaway(a.m, TNL_MUX_GOAWAY_NORMAL);
    assert_null(tnl_mux_open(a.m));
    run_for(0.05);
    assert_null(tnl_mux_open(b.m));          /* b got the GoAway */
    assert_int_equal(a.closed + b.closed, 0);   /* a stream is still open */
    /* the open stream still works both ways */
    assert_int_equal(tnl_io_write(pa.io, " after", 6), 6);
    bpeers[0].read_on = 1;
    bpeers[0].out = (const uint8_t *)"reply";
    bpeers[0].out_len = 5;
    bpeers[0].shut = 1;
    bpeers[0].close_when_done = 1;
    peer_pump(&bpeers[0]);
    pa.shut = 1;
    pa.close_when_done = 1;
    peer_pump(&pa);
    RUN_UNTIL(a.closed && b.closed, 3);
    assert_int_equal(bpeers[0].in_len, 12);
    assert_memory_equal(bpeers[0].in, "before after", 12);
    assert_int_equal(pa.in_len, 5);
    assert_int_equal(a.err, 0);
    assert_int_equal(b.err, 0);
    assert_int_equal(a.at_close.protocol_errors + b.at_close.protocol_errors, 0);
    peer_clear(&pa);
    peer_clear(&bpeers[0]);
}

/* A GoAway with nothing open ends the session at once; the peer's GoAway
 * refuses our opens. */
static void test_goaway_idle_and_received(void **state)
{
    (void)state;
    struct side sd = { 0 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(1);
    raw_session(&sd, &r, &cfg);
    raw_hex(&r, "000300000000000000000000");        /* GoAway(normal), as libp2p sends it */
    RUN_UNTIL(sd.closed, 2);
    assert_int_equal(sd.err, 0);
    raw_done(&r);

    struct side s2 = { 0 };
    raw_session(&s2, &r, &cfg);
    tnl_mux_goaway(s2.m, TNL_MUX_GOAWAY_NORMAL);
    struct tnl_mux_frame f;
    assert_true(raw_expect(&r, TNL_MUX_GO_AWAY, 0, &f, 1));
    assert_int_equal(f.length, TNL_MUX_GOAWAY_NORMAL);
    RUN_UNTIL(s2.closed, 2);
    assert_int_equal(s2.err, 0);
    raw_done(&r);

    /* GoAway(internal error) from the peer ends the session with an error. */
    struct side s3 = { 0 };
    raw_session(&s3, &r, &cfg);
    raw_hex(&r, "000300000000000000000002");
    RUN_UNTIL(s3.closed, 2);
    assert_int_equal(s3.err, -ECONNABORTED);
    raw_done(&r);
}

/* ---- tests: limits ------------------------------------------------------------ */

static void test_max_streams_rst(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_keep };
    struct tnl_mux_cfg cb = cfg_of(0);
    cb.max_streams = 2;
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, &cb);
    struct peer pa[3];
    memset(pa, 0, sizeof pa);
    for (int i = 0; i < 3; i++) {
        pa[i].read_on = 1;
        peer_attach(&pa[i], tnl_mux_open(a.m));
        assert_int_equal(tnl_io_write(pa[i].io, "x", 1), 1);
    }
    RUN_UNTIL(pa[2].err, 2);
    assert_int_equal(pa[2].err, -ECONNRESET);
    assert_int_equal(b.ninbound, 2);
    assert_int_equal(pa[0].err + pa[1].err, 0);
    struct tnl_mux_stats st;
    tnl_mux_stats(b.m, &st);
    assert_int_equal(st.streams_rejected, 1);
    assert_int_equal(st.protocol_errors, 0);
    assert_int_equal(b.closed, 0);
    /* The local side of the limit: b cannot open more either. */
    assert_null(tnl_mux_open(b.m));
    for (int i = 0; i < 3; i++) {
        peer_close(&pa[i], 1);
        peer_clear(&pa[i]);
    }
    peer_close(&bpeers[0], 1);
    peer_close(&bpeers[1], 1);
    side_stop(&a);
    side_stop(&b);
}

/* Streams the owner has not touched are not acknowledged; past max_backlog
 * new ones are refused with RST. Touching one acknowledges it. */
static void test_backlog_rst(void **state)
{
    (void)state;
    struct side sd = { 0 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    cfg.max_backlog = 3;
    cfg.keepalive_interval = 0;
    raw_session(&sd, &r, &cfg);
    for (uint32_t id = 1; id <= 9; id += 2)
        raw_frame(&r, TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, id, 0, NULL);
    struct tnl_mux_frame f;
    assert_true(raw_expect(&r, TNL_MUX_WINDOW_UPDATE, 7, &f, 1));
    assert_int_equal(f.flags, TNL_MUX_RST);
    assert_true(raw_expect(&r, TNL_MUX_WINDOW_UPDATE, 9, &f, 1));
    assert_int_equal(f.flags, TNL_MUX_RST);
    assert_int_equal(sd.ninbound, 3);
    struct tnl_mux_stats st;
    tnl_mux_stats(sd.m, &st);
    assert_int_equal(st.backlog, 3);
    assert_int_equal(st.streams_rejected, 2);
    /* The owner takes stream 1: an ACK goes out on its own. */
    tnl_io_want(sd.inbound[0], TNL_IO_READ);
    assert_true(raw_expect(&r, TNL_MUX_WINDOW_UPDATE, 1, &f, 1));
    assert_int_equal(f.flags, TNL_MUX_ACK);
    assert_int_equal(f.length, 0);
    tnl_mux_stats(sd.m, &st);
    assert_int_equal(st.backlog, 2);
    /* Room again: stream 11 is accepted. */
    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, 11, 0, NULL);
    RUN_UNTIL(sd.ninbound == 4, 1);
    /* Frames in flight for the refused ones are ignored. */
    raw_frame(&r, TNL_MUX_DATA, 0, 7, 3, "abc");
    run_for(0.02);
    tnl_mux_stats(sd.m, &st);
    assert_int_equal(st.protocol_errors, 0);
    for (unsigned i = 0; i < 4; i++)
        tnl_io_close(sd.inbound[i], 1);
    side_stop(&sd);
    raw_done(&r);
}

/* ---- tests: the wire, against the libp2p capture ------------------------------ */

static void take_echo_once(struct side *sd, struct tnl_io *io)
{
    (void)sd;
    (void)io;       /* read and answer from the test body */
}

/* tests/vectors/yamux-frames-libp2p-capture.json,
 * "server_accepts_stream_opened_with_SYN_DATA": a Data SYN split over three
 * writes; our echo is a Data ACK with the same bytes as the JS server's. */
static void test_capture_syn_data_echo(void **state)
{
    (void)state;
    struct side sd = { .take = take_echo_once };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    cfg.keepalive_interval = 0;
    raw_session(&sd, &r, &cfg);
    raw_hex(&r, "0000000100000001000000137370");        /* header + "sp" */
    run_for(0.01);
    raw_hex(&r, "6c69742d6672616d65");                 /* "lit-frame" */
    run_for(0.01);
    raw_hex(&r, "2d7061796c6f6164");                   /* "-payload" */
    RUN_UNTIL(sd.ninbound == 1, 1);
    uint8_t buf[64];
    RUN_UNTIL(((struct mux_stream *)sd.inbound[0])->rqueued == 19, 1);
    assert_int_equal(tnl_io_read(sd.inbound[0], buf, sizeof buf), 19);
    assert_memory_equal(buf, "split-frame-payload", 19);
    assert_int_equal(tnl_io_write(sd.inbound[0], buf, 19), 19);
    run_for(0.02);
    raw_fill(&r);
    raw_skip_pings(&r);
    size_t n;
    uint8_t *want = unit_unhex("00000002000000010000001373706c69742d6672616d652d7061796c6f6164", &n);
    assert_true(r.len >= n);
    assert_memory_equal(r.buf, want, n);
    free(want);
    r.len = 0;
    /* "reply to Ping SYN opaque=1234" */
    raw_hex(&r, "0002000100000000000004d2");
    run_for(0.02);
    raw_fill(&r);
    want = unit_unhex("0002000200000000000004d2", &n);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.buf, want, n);
    free(want);
    tnl_io_close(sd.inbound[0], 1);
    side_stop(&sd);
    raw_done(&r);
}

/* "client_opens_stream_and_sends_hi": our client's first frames for a stream
 * opened without data, and its FIN, as the JS client wrote them. */
static void test_capture_client_frames(void **state)
{
    (void)state;
    struct side sd = { 0 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(1);
    cfg.keepalive_interval = 0;
    raw_session(&sd, &r, &cfg);
    struct tnl_mux_frame f;
    assert_true(raw_expect(&r, TNL_MUX_PING, 0, &f, 1));     /* the first RTT ping */
    struct tnl_io *s = tnl_mux_open(sd.m);
    run_for(0.02);
    raw_fill(&r);
    size_t n;
    uint8_t *want = unit_unhex("000100010000000100000000", &n);   /* WindowUpdate SYN, delta 0 */
    assert_int_equal(r.len, n);
    assert_memory_equal(r.buf, want, n);
    free(want);
    r.len = 0;
    assert_int_equal(tnl_io_write(s, "hi", 2), 2);
    assert_int_equal(s->ops->shutdown(s), 0);
    run_for(0.02);
    raw_fill(&r);
    want = unit_unhex("0000000000000001000000026869" "000100040000000100000000", &n);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.buf, want, n);
    free(want);
    r.len = 0;
    tnl_io_close(s, 1);
    side_stop(&sd);
    raw_done(&r);
}

/* ---- tests: protocol violations -------------------------------------------------- */

struct violation {
    const char *name;
    const char *setup_hex;  /* frames first (valid), may be NULL */
    const char *hex;        /* the violation */
    int client;             /* our role */
    size_t big_data;        /* instead of hex: a Data frame on stream 1 this long */
};

static void check_violation(const struct violation *v)
{
    struct side sd = { .take = take_keep };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(v->client);
    cfg.keepalive_interval = 0;
    memset(bpeers, 0, sizeof bpeers);
    raw_session(&sd, &r, &cfg);
    if (v->setup_hex) {
        raw_hex(&r, v->setup_hex);
        run_for(0.01);
    }
    if (v->big_data) {
        uint8_t *d = calloc(1, v->big_data);
        raw_frame(&r, TNL_MUX_DATA, 0, 1, (uint32_t)v->big_data, d);
        free(d);
    } else {
        raw_hex(&r, v->hex);
    }
    struct tnl_mux_frame f;
    if (!raw_expect(&r, TNL_MUX_GO_AWAY, 0, &f, 1))
        fail_msg("%s: no GoAway", v->name);
    if (f.length != TNL_MUX_GOAWAY_PROTOCOL)
        fail_msg("%s: GoAway(%u)", v->name, f.length);
    RUN_UNTIL(sd.closed, 1);
    if (sd.err != -EPROTO)
        fail_msg("%s: on_close err %d (%s)", v->name, sd.err, sd.why);
    assert_int_equal(sd.at_close.protocol_errors, 1);
    /* the transport is closed after the GoAway */
    struct tnl_mux_frame g;
    while (raw_next(&r, &g, NULL, 0.2))
        ;
    assert_true(r.eof);
    for (unsigned i = 0; i < sd.ninbound && i < 64; i++)
        if (bpeers[i].io) {
            /* the owner learns through read: reset (or EOF if the peer had
             * finished its side before the violation) */
            ssize_t rr = tnl_io_read(bpeers[i].io, (uint8_t[4]){ 0 }, 4);
            struct mux_stream *ms = (struct mux_stream *)bpeers[i].io;
            assert_int_equal(rr, ms->fin_recv ? 0 : -ECONNRESET);
            tnl_io_close(bpeers[i].io, 0);
        }
    run_for(0.01);
    raw_done(&r);
}

static void test_protocol_violations(void **state)
{
    (void)state;
    static const struct violation v[] = {
        { "bad version", NULL, "010100010000000100000000", 0, 0 },
        { "unknown type", NULL, "000700000000000100000000", 0, 0 },
        { "unknown flag bits", NULL, "000100110000000100000000", 0, 0 },
        { "ping on a stream", NULL, "000200010000000300000001", 0, 0 },
        { "goaway on a stream", NULL, "000300000000000100000000", 0, 0 },
        { "data on stream 0", NULL, "000000000000000000000001ff", 0, 0 },
        { "window update on stream 0", NULL, "000100000000000000000010", 0, 0 },
        { "ping without SYN or ACK", NULL, "000200000000000000000001", 0, 0 },
        { "data longer than any window", NULL, "000000010000000101000001", 0, 0 },
        { "data beyond the window", "000100010000000100000000", NULL, 0, TNL_MUX_INITIAL_WINDOW + 1 },
        { "data on a stream never opened", NULL, "00000000000000050000000161", 0, 0 },
        { "window update on a stream never opened", NULL, "000100000000000700000010", 0, 0 },
        { "SYN with our parity (we are the server)", NULL, "000100010000000200000000", 0, 0 },
        { "SYN with our parity (we are the client)", NULL, "000100010000000300000000", 1, 0 },
        { "SYN on an open stream", "000100010000000100000000", "000100010000000100000000", 0, 0 },
        { "data after FIN", "000100050000000100000000", "00000000000000010000000161", 0, 0 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        check_violation(&v[i]);
}

/* A stream we reset (or refused) may still receive frames in flight: ignored.
 * One we never heard of is an error (above). */
static void test_frames_after_our_reset_ignored(void **state)
{
    (void)state;
    struct side sd = { .take = take_keep };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    cfg.keepalive_interval = 0;
    memset(bpeers, 0, sizeof bpeers);
    raw_session(&sd, &r, &cfg);
    raw_frame(&r, TNL_MUX_DATA, TNL_MUX_SYN, 1, 5, "hello");
    RUN_UNTIL(sd.ninbound == 1, 1);
    tnl_io_close(bpeers[0].io, 1);
    bpeers[0].io = NULL;
    struct tnl_mux_frame f;
    assert_true(raw_expect(&r, TNL_MUX_WINDOW_UPDATE, 1, &f, 1));
    assert_int_equal(f.flags, TNL_MUX_RST);
    raw_frame(&r, TNL_MUX_DATA, 0, 1, 5, "world");
    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, 0, 1, 1000, NULL);
    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, TNL_MUX_FIN, 1, 0, NULL);
    raw_frame(&r, TNL_MUX_DATA, TNL_MUX_SYN, 3, 2, "ok");       /* the session goes on */
    RUN_UNTIL(sd.ninbound == 2, 1);
    uint8_t buf[8];
    RUN_UNTIL(tnl_io_read(bpeers[1].io, buf, sizeof buf) == 2, 1);
    assert_memory_equal(buf, "ok", 2);
    struct tnl_mux_stats st;
    tnl_mux_stats(sd.m, &st);
    assert_int_equal(st.protocol_errors, 0);
    tnl_io_close(bpeers[1].io, 1);
    side_stop(&sd);
    raw_done(&r);
}

/* ---- tests: session end, ownership ---------------------------------------------- */

/* The peer closes the transport: open streams are reset, on_close reports it. */
static void test_transport_eof(void **state)
{
    (void)state;
    struct side sd = { .take = take_keep };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    memset(bpeers, 0, sizeof bpeers);
    raw_session(&sd, &r, &cfg);
    raw_frame(&r, TNL_MUX_DATA, TNL_MUX_SYN | TNL_MUX_FIN, 1, 3, "end");
    raw_frame(&r, TNL_MUX_DATA, TNL_MUX_SYN, 3, 3, "cut");
    RUN_UNTIL(sd.ninbound == 2, 1);
    bpeers[0].read_on = bpeers[1].read_on = 1;
    close(r.fd);
    r.fd = -1;
    RUN_UNTIL(sd.closed, 1);
    assert_int_equal(sd.err, -ECONNRESET);
    /* stream 1 was complete (FIN): its data and EOF stay readable */
    peer_pump(&bpeers[0]);
    assert_int_equal(bpeers[0].in_len, 3);
    assert_int_equal(bpeers[0].eof, 1);
    /* stream 3 was cut: reset */
    peer_pump(&bpeers[1]);
    assert_int_equal(bpeers[1].err, -ECONNRESET);
    peer_close(&bpeers[0], 0);
    peer_close(&bpeers[1], 0);
    raw_done(&r);
    peer_clear(&bpeers[0]);
    peer_clear(&bpeers[1]);

    /* An idle session whose peer leaves ends cleanly. */
    struct side s2 = { 0 };
    raw_session(&s2, &r, &cfg);
    close(r.fd);
    r.fd = -1;
    RUN_UNTIL(s2.closed, 1);
    assert_int_equal(s2.err, 0);
    raw_done(&r);
}

/* tnl_mux_free while an owner holds streams: they are told (-ECONNRESET via
 * ready), and stay valid until closed. */
static void test_free_with_streams_held(void **state)
{
    (void)state;
    struct side a = { 0 }, b = { .take = take_keep };
    memset(bpeers, 0, sizeof bpeers);
    two_sessions(&a, &b, NULL, NULL);
    struct peer pa = { .read_on = 1 };
    peer_attach(&pa, tnl_mux_open(a.m));
    assert_int_equal(tnl_io_write(pa.io, "x", 1), 1);
    RUN_UNTIL(b.ninbound == 1, 1);
    tnl_mux_free(a.m);
    a.m = NULL;
    RUN_UNTIL(pa.err, 1);
    assert_int_equal(pa.err, -ECONNRESET);
    assert_int_equal(tnl_io_write(pa.io, "x", 1), -ECONNRESET);
    assert_int_equal(a.closed, 0);          /* no on_close after free */
    bpeers[0].read_on = 1;
    peer_pump(&bpeers[0]);
    RUN_UNTIL(b.closed, 1);
    RUN_UNTIL(bpeers[0].err, 1);
    peer_close(&pa, 0);                     /* the last reference: frees the session */
    peer_close(&bpeers[0], 0);
    run_for(0.01);
    peer_clear(&pa);
    peer_clear(&bpeers[0]);
}

/* Freeing the session from inside on_stream is safe. */
static void test_free_inside_callback(void **state)
{
    (void)state;
    struct side sd = { .free_in_on_stream = 1 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    raw_session(&sd, &r, &cfg);
    /* two SYNs and data in one read: the second arrives after the free */
    raw_hex(&r, "00000001000000010000000161" "00000001000000030000000162");
    RUN_UNTIL(sd.ninbound >= 1 && !sd.m, 1);
    run_for(0.02);
    assert_int_equal(sd.closed, 0);
    raw_done(&r);
}

/* An owner that closes a stream (and another) from inside ready(). */
static struct tnl_io *other_stream;
static void close_both_ready(struct tnl_io *io, int events)
{
    (void)events;
    tnl_io_close(io, 1);
    if (other_stream) {
        tnl_io_close(other_stream, 0);
        other_stream = NULL;
    }
}

static void test_close_inside_ready(void **state)
{
    (void)state;
    struct side sd = { 0 };
    struct raw r;
    struct tnl_mux_cfg cfg = cfg_of(0);
    raw_session(&sd, &r, &cfg);
    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, 1, 0, NULL);
    raw_frame(&r, TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, 3, 0, NULL);
    RUN_UNTIL(sd.ninbound == 2, 1);
    sd.inbound[0]->ready = close_both_ready;
    other_stream = sd.inbound[1];
    tnl_io_want(sd.inbound[0], TNL_IO_READ);
    raw_frame(&r, TNL_MUX_DATA, 0, 1, 2, "go");
    raw_frame(&r, TNL_MUX_DATA, 0, 3, 2, "go");      /* same read: 3 is pending too */
    RUN_UNTIL(!other_stream, 1);
    run_for(0.02);
    struct tnl_mux_stats st;
    tnl_mux_stats(sd.m, &st);
    assert_int_equal(st.streams, 0);
    assert_int_equal(st.protocol_errors, 0);
    side_stop(&sd);
    raw_done(&r);
}

/* ---- memory --------------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld %ld", &pages, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static struct tnl_io **touched;
static unsigned ntouched;

static void take_touch(struct side *sd, struct tnl_io *io)
{
    (void)sd;
    touched[ntouched++] = io;
    tnl_io_want(io, TNL_IO_READ);   /* taken: acknowledged, then idle */
}

/* 10,000 idle streams (both ends in this process): well under 10 KiB each. */
static void test_idle_stream_memory(void **state)
{
    (void)state;
    enum { S = 10000 };
    struct side a = { 0 }, b = { .take = take_touch };
    struct tnl_mux_cfg ca = cfg_of(1), cb = cfg_of(0);
    ca.max_streams = cb.max_streams = S + 10;
    touched = malloc(S * sizeof *touched);
    ntouched = 0;
    two_sessions(&a, &b, &ca, &cb);
    run_for(0.05);
    struct tnl_io **s = malloc(S * sizeof *s);
    long before = rss_kib();
    size_t heap_before = mallinfo2().uordblks;
    for (int i = 0; i < S; i++) {
        s[i] = tnl_mux_open(a.m);
        assert_non_null(s[i]);
        tnl_io_want(s[i], TNL_IO_READ);
    }
    RUN_UNTIL(b.ninbound == S, 10);
    run_for(0.1);
    long after = rss_kib();
    size_t heap_after = mallinfo2().uordblks;
    struct tnl_mux_stats st;
    tnl_mux_stats(b.m, &st);
    assert_int_equal(st.streams, S);
    assert_int_equal(st.backlog, 0);
    /* Two ends per stream. The heap figure is exact with glibc's malloc (it
     * reads 0 under ASan, whose RSS figure includes redzones instead). */
    double per_rss = (double)(after - before) * 1024 / (2 * S);
    double per_heap = heap_after > heap_before ? (double)(heap_after - heap_before) / (2 * S) : 0;
    print_message("    idle stream end: %.0f bytes of heap, %.0f bytes of RSS (struct %zu bytes)\n",
                  per_heap, per_rss, sizeof(struct mux_stream));
    assert_true(per_rss < 10 * 1024);
    assert_true(per_heap < 10 * 1024);
    assert_true(per_heap > 0 || per_rss > 0);      /* the measurement measured something */
    for (int i = 0; i < S; i++)
        tnl_io_close(s[i], 1);
    for (unsigned i = 0; i < ntouched; i++)
        tnl_io_close(touched[i], 1);
    free(s);
    free(touched);
    side_stop(&a);
    side_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_both_ways),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_half_close_each_way),
        cmocka_unit_test(test_reset_both_ways),
        cmocka_unit_test(test_close_with_unread_data_resets),
        cmocka_unit_test(test_window_never_exceeded),
        cmocka_unit_test(test_window_exhaustion_and_resume),
        cmocka_unit_test(test_window_update_mid_frame),
        cmocka_unit_test(test_autotune),
        cmocka_unit_test(test_autotune_slow_reader_stays),
        cmocka_unit_test(test_ping_rtt),
        cmocka_unit_test(test_keepalive_timeout),
        cmocka_unit_test(test_keepalive_answered),
        cmocka_unit_test(test_goaway_drains),
        cmocka_unit_test(test_goaway_idle_and_received),
        cmocka_unit_test(test_max_streams_rst),
        cmocka_unit_test(test_backlog_rst),
        cmocka_unit_test(test_capture_syn_data_echo),
        cmocka_unit_test(test_capture_client_frames),
        cmocka_unit_test(test_protocol_violations),
        cmocka_unit_test(test_frames_after_our_reset_ignored),
        cmocka_unit_test(test_transport_eof),
        cmocka_unit_test(test_free_with_streams_held),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_close_inside_ready),
        cmocka_unit_test(test_idle_stream_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

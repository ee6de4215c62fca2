/*
 * fuzz_mux_session.c — libFuzzer harness for a whole yamux session (core/mux):
 * the input is what the peer sends, fed through an in-memory transport in
 * chunks of varying size, into a session with stream owners that react to
 * what they read (reply, half-close, reset, close early, ping, GoAway, free the
 * session from inside a callback). The real loop runs the ticks.
 *
 * Byte 0 picks our role (bit 0: client), how the transport splits reads
 * (bits 1-3) and whether writes sometimes stall (bit 4); the rest is the
 * peer's byte stream, followed by EOF. Looks for crashes, leaks and UB; the
 * session must end (on_close) or be freed, and every stream be freed, within
 * a bounded number of loop turns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/loop.h"
#include "mux/mux.h"
#include "util/buf.h"
#include "util/log.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } } while (0)

struct memio {
    struct tnl_io io;
    const uint8_t *data;
    size_t len, off;
    unsigned split;             /* read chunk pattern */
    int stall;                  /* writes sometimes return -EAGAIN */
    unsigned writes;
    int closed;
};

static struct memio *tr;
static struct tnl_mux *mux;
static int session_over;
static unsigned streams_live;

static ssize_t mem_read(struct tnl_io *io, void *buf, size_t n)
{
    struct memio *t = (struct memio *)io;
    if (t->off == t->len)
        return 0;
    static const size_t sizes[8] = { 1, 3, 12, 13, 100, 4096, 65536, 1 << 20 };
    size_t k = sizes[(t->split + t->off) & 7];
    if (t->split == 0)
        k = (size_t)1 << 20;
    if (k > n)
        k = n;
    if (k > t->len - t->off)
        k = t->len - t->off;
    memcpy(buf, t->data + t->off, k);
    t->off += k;
    return (ssize_t)k;
}

static ssize_t mem_write(struct tnl_io *io, const void *buf, size_t n)
{
    struct memio *t = (struct memio *)io;
    (void)buf;
    if (t->stall && (++t->writes % 3) == 0)
        return -EAGAIN;
    return (ssize_t)(n > 100000 ? n / 2 : n);
}

static int mem_shutdown(struct tnl_io *io)
{
    (void)io;
    return 0;
}

static void mem_want(struct tnl_io *io, int events)
{
    io->events = events;
}

static void mem_close(struct tnl_io *io, int how)
{
    (void)how;
    struct memio *t = (struct memio *)io;
    CHECK(t == tr);
    tr = NULL;
    free(t);
}

static const struct tnl_io_ops mem_ops = {
    .kind = "mem", .read = mem_read, .write = mem_write, .shutdown = mem_shutdown,
    .want = mem_want, .close = mem_close,
};

/* ---- stream owners: behaviour chosen by the first byte they read ---------- */

struct owner {
    struct tnl_io *io;
    int mode;
    size_t got;
    int replied;
};

static void owner_close(struct owner *o, int reset)
{
    tnl_io_close(o->io, reset);
    free(o);
    streams_live--;
}

static void ping_cb(void *arg, double rtt)
{
    (void)arg;
    CHECK(rtt == -1.0 || rtt >= 0);
}

static void owner_ready(struct tnl_io *io, int events)
{
    struct owner *o = io->owner;
    uint8_t buf[8192];
    for (;;) {
        ssize_t r = tnl_io_read(io, buf, sizeof buf);
        if (r == -EAGAIN)
            break;
        if (r < 0) {
            owner_close(o, 1);
            return;
        }
        if (r == 0) {
            if (!o->replied) {
                o->replied = 1;
                ssize_t w = tnl_io_write(io, "reply", 5);
                /* a short count is fine: the peer may grant a few bytes of window */
                CHECK((w > 0 && w <= 5) || w == -EAGAIN || w == -EPIPE || w == -ECONNRESET || w == -ENOMEM);
                io->ops->shutdown(io);
            }
            owner_close(o, 0);
            return;
        }
        if (!o->got) {
            o->mode = buf[0];
            switch (o->mode) {
            case 'R':
                owner_close(o, 1);
                return;
            case 'C':
                owner_close(o, 0);
                return;
            case 'S':
                io->ops->shutdown(io);
                break;
            case 'P':
                if (mux)
                    tnl_mux_ping(mux, ping_cb, NULL);
                break;
            case 'G':
                if (mux)
                    tnl_mux_goaway(mux, 0);
                break;
            case 'F':
                if (mux) {
                    struct tnl_mux *m = mux;
                    mux = NULL;
                    tnl_mux_free(m);
                }
                break;
            case 'W': {
                static uint8_t big[300000];
                ssize_t w = tnl_io_write(io, big, sizeof big);
                CHECK(w <= (ssize_t)sizeof big);
                break;
            }
            default:
                break;
            }
        }
        o->got += (size_t)r;
    }
    tnl_io_want(io, TNL_IO_READ | (o->mode == 'W' ? TNL_IO_WRITE : 0));
}

static void own(struct tnl_io *io)
{
    struct owner *o = calloc(1, sizeof *o);
    CHECK(o);
    o->io = io;
    io->owner = o;
    io->ready = owner_ready;
    streams_live++;
    tnl_io_want(io, TNL_IO_READ);
}

static void on_stream(struct tnl_mux *m, struct tnl_io *io, void *arg)
{
    (void)m;
    (void)arg;
    CHECK(tnl_mux_stream_id(io) != 0);
    own(io);
}

static void on_close(struct tnl_mux *m, int err, const char *why, void *arg)
{
    (void)arg;
    CHECK(why != NULL);
    CHECK(err <= 0);
    struct tnl_mux_stats st;
    tnl_mux_stats(m, &st);
    if (err == -EPROTO)
        CHECK(st.protocol_errors == 1);
    session_over = 1;
    CHECK(m == mux);
    mux = NULL;
    tnl_mux_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        inited = 1;
        tnl_log_level = TNL_LOG_OFF;
        CHECK(tnl_loop_init() == 0);
    }
    if (size < 1)
        return 0;
    session_over = 0;
    streams_live = 0;
    tr = calloc(1, sizeof *tr);
    tr->io.ops = &mem_ops;
    tr->data = data + 1;
    tr->len = size - 1;
    tr->split = (data[0] >> 1) & 7;
    tr->stall = (data[0] >> 4) & 1;

    struct tnl_mux_cfg cfg;
    tnl_mux_cfg_defaults(&cfg);
    cfg.client = data[0] & 1;
    cfg.max_streams = 8;
    cfg.max_backlog = 4;
    cfg.max_window = 1 << 20;
    struct tnl_mux_cbs cbs = { .on_stream = on_stream, .on_close = on_close };
    mux = tnl_mux_new(&tr->io, &cfg, &cbs, NULL);
    CHECK(mux);
    for (int i = 0; i < 2; i++) {
        struct tnl_io *s = tnl_mux_open(mux);
        CHECK(s);
        CHECK(tnl_mux_stream_id(s) == (cfg.client ? 1u : 2u) + 2u * (unsigned)i);
        CHECK(tnl_io_write(s, "hello", 5) == 5);
        own(s);
    }

    for (int turn = 0; turn < 2000; turn++) {
        if (tr && tr->io.ready && tr->io.events)
            tr->io.ready(&tr->io, tr->io.events);
        tnl_loop_step(0);
        if (session_over || !mux)
            break;
        if (!tr)
            break;
    }
    if (mux) {
        struct tnl_mux *m = mux;
        mux = NULL;
        tnl_mux_free(m);
    }
    for (int turn = 0; turn < 100 && streams_live; turn++)
        tnl_loop_step(0);
    CHECK(streams_live == 0);   /* every owner was told and closed its stream */
    CHECK(tr == NULL);          /* the transport was closed */
    tnl_buf_pool_drain();
    tnl_mux_pool_drain();
    return 0;
}

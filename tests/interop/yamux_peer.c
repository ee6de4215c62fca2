/*
 * yamux_peer.c — our yamux session over a real TCP socket, with a scripted
 * behaviour that tests/interop/yamux.mjs (the @chainsafe/libp2p-yamux side)
 * drives and checks. Also the single-stream throughput tool.
 *
 *   yamux_peer server PORT [--once]
 *   yamux_peer client HOST:PORT [-n STREAMS] [-m BYTES] [-r REPLY_BYTES] [--sink] [--no-reset]
 *
 * Per stream, the opener sends a 20-byte request header, a body, then FIN:
 *   "YMX1" | flags u32 | reply_len u64 | reply_seed u32      (big endian)
 *   flags: 1 RESET  the responder resets the stream as soon as it has the header
 *          2 STATS  the responder answers with resets_seen u64, then FIN
 *          4 SINK   benchmarks: the responder counts but does not hash the body,
 *                   and neither side generates nor checks content
 * The responder reads to FIN, then sends SHA-256(body) (32 bytes; zeros with
 * SINK), the body length (u64), reply_len bytes of content, then FIN.
 * Content (bodies and replies) is xorshift32 from a seed, each state written
 * as 4 little-endian bytes: x ^= x << 13; x ^= x >> 17; x ^= x << 5.
 * A stream reset by the opener counts in resets_seen.
 *
 * The client opens all its streams at once (each body seeded with 1000 + i,
 * each reply with 2000 + i), checks every digest, count and reply, then runs
 * the reset cases (unless --no-reset): a stream the server resets must read
 * -ECONNRESET; a stream the client resets must show in the server's STATS.
 * It ends with GoAway and waits for the session to end cleanly. It prints TAP
 * lines and, for one stream, the throughput; exit status 0 when all passed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"
#include "mux/mux.h"
#include "net/sock.h"

enum { HDR = 20, F_RESET = 1, F_STATS = 2, F_SINK = 4, IOBUF = 128 * 1024, REPLY_PREFIX = 40 };

static unsigned long long resets_seen;
static int failures, tests;
static int once;

static void tap(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tap(int ok, const char *fmt, ...)
{
    va_list ap;
    tests++;
    if (!ok)
        failures++;
    printf("%s - ", ok ? "ok" : "not ok");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- content ---------------------------------------------------------- */

struct gen {
    uint32_t x;
    uint8_t b[4];
    unsigned pos;       /* next unused byte of b, 4: empty */
};

static void gen_init(struct gen *g, uint32_t seed)
{
    g->x = seed ? seed : 1;
    g->pos = 4;
}

static void gen_fill(struct gen *g, uint8_t *out, size_t n)
{
    size_t i = 0;
    while (i < n && g->pos < 4)
        out[i++] = g->b[g->pos++];
    while (n - i >= 4) {
        uint32_t x = g->x;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        g->x = x;
        out[i] = (uint8_t)x;
        out[i + 1] = (uint8_t)(x >> 8);
        out[i + 2] = (uint8_t)(x >> 16);
        out[i + 3] = (uint8_t)(x >> 24);
        i += 4;
    }
    if (i < n) {
        uint8_t tmp[4];
        gen_fill(g, tmp, 4);
        g->pos = 0;
        memcpy(g->b, tmp, 4);
        while (i < n)
            out[i++] = g->b[g->pos++];
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- responder (either role answers inbound streams) --------------------- */

struct resp {
    struct tnl_io *io;
    EVP_MD_CTX *sha;
    uint8_t hdr[HDR];
    size_t hdr_got;
    uint32_t flags;
    uint64_t count, reply_left;
    struct gen gen;
    uint8_t *out;
    size_t out_len, out_off;
    int replying;
};

static void resp_free(struct resp *r, int abort)
{
    if (r->io)
        tnl_io_close(r->io, abort);
    EVP_MD_CTX_free(r->sha);
    free(r->out);
    free(r);
}

/* The body ended: queue the reply prefix. */
static void resp_start_reply(struct resp *r)
{
    uint8_t digest[32] = { 0 };
    unsigned dlen = 0;
    r->replying = 1;
    r->out_off = 0;
    if (r->flags & F_STATS) {
        put64(r->out, resets_seen);
        r->out_len = 8;
        r->reply_left = 0;
        return;
    }
    if (!(r->flags & F_SINK))
        EVP_DigestFinal_ex(r->sha, digest, &dlen);
    memcpy(r->out, digest, 32);
    put64(r->out + 32, r->count);
    r->out_len = REPLY_PREFIX;
    r->reply_left = get64(r->hdr + 8);
    gen_init(&r->gen, get32(r->hdr + 16));
}

/* Returns 1 when the stream was freed. */
static int resp_read(struct resp *r)
{
    for (int round = 0; round < 8; round++) {
        ssize_t n = tnl_io_read(r->io, r->out, IOBUF);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            resets_seen++;
            resp_free(r, 1);
            return 1;
        }
        if (n == 0) {
            if (r->hdr_got < HDR) {
                fprintf(stderr, "yamux_peer: stream %u ended inside its header\n",
                        tnl_mux_stream_id(r->io));
                resp_free(r, 1);
                return 1;
            }
            resp_start_reply(r);
            return 0;
        }
        uint8_t *p = r->out;
        size_t len = (size_t)n;
        if (r->hdr_got < HDR) {
            size_t k = HDR - r->hdr_got < len ? HDR - r->hdr_got : len;
            memcpy(r->hdr + r->hdr_got, p, k);
            r->hdr_got += k;
            p += k;
            len -= k;
            if (r->hdr_got == HDR) {
                if (memcmp(r->hdr, "YMX1", 4) != 0) {
                    fprintf(stderr, "yamux_peer: bad request magic\n");
                    resp_free(r, 1);
                    return 1;
                }
                r->flags = get32(r->hdr + 4);
                if (r->flags & F_RESET) {
                    resp_free(r, 1);
                    return 1;
                }
            }
        }
        r->count += len;
        if (len && !(r->flags & F_SINK))
            EVP_DigestUpdate(r->sha, p, len);
    }
    return 0;
}

static int resp_write(struct resp *r)
{
    for (;;) {
        if (r->out_off == r->out_len) {
            if (!r->reply_left) {
                tnl_io_want(r->io, 0);
                r->io->ops->shutdown(r->io);
                resp_free(r, 0);
                return 1;
            }
            size_t k = r->reply_left < IOBUF ? (size_t)r->reply_left : IOBUF;
            if (!(r->flags & F_SINK))   /* benchmarks: content is not checked */
                gen_fill(&r->gen, r->out, k);
            r->out_len = k;
            r->out_off = 0;
            r->reply_left -= k;
        }
        ssize_t n = tnl_io_write(r->io, r->out + r->out_off, r->out_len - r->out_off);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            resp_free(r, 1);
            return 1;
        }
        r->out_off += (size_t)n;
    }
}

static void resp_ready(struct tnl_io *io, int events)
{
    struct resp *r = io->owner;
    if (!r->replying && resp_read(r))
        return;
    if (r->replying && resp_write(r))
        return;
    tnl_io_want(io, r->replying ? TNL_IO_WRITE : TNL_IO_READ);
}

static void on_stream(struct tnl_mux *m, struct tnl_io *io, void *arg)
{
    struct resp *r = calloc(1, sizeof *r);
    if (!r || !(r->out = calloc(1, IOBUF)) || !(r->sha = EVP_MD_CTX_new())) {
        if (r)
            free(r->out);
        free(r);
        tnl_io_close(io, 1);
        return;
    }
    EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL);
    r->io = io;
    io->owner = r;
    io->ready = resp_ready;
    tnl_io_want(io, TNL_IO_READ);
}

/* ---- client ------------------------------------------------------------- */

struct req {
    struct tnl_io *io;
    unsigned idx;
    uint32_t flags;
    uint64_t body_left, reply_len;
    struct gen body, reply;
    EVP_MD_CTX *sha;
    uint8_t digest[32];
    uint8_t prefix[REPLY_PREFIX];
    size_t prefix_got;
    uint64_t reply_got;
    uint8_t *buf;
    size_t buf_len, buf_off;
    int shut, done, mismatch;
    int read_result;        /* the final read: 0 (FIN) or -errno */
    double t0, t1;
};

static struct tnl_mux *client_mux;
static unsigned reqs_open;
static uint64_t opt_bytes = 1 << 20, opt_reply = 1 << 20;
static unsigned opt_streams = 8;
static int opt_sink, opt_reset = 1;
static struct req **reqs;
static unsigned nreqs;
static int session_over, session_err;
static const char *session_why = "";
static void client_next_phase(void);
static void live_set(struct tnl_mux *m, struct tnl_mux *to);

static void req_finish(struct req *q, int result)
{
    q->done = 1;
    q->read_result = result;
    q->t1 = now_s();
    if (q->io) {
        tnl_io_close(q->io, result < 0);
        q->io = NULL;
    }
    if (--reqs_open == 0)
        client_next_phase();
}

static void req_ready(struct tnl_io *io, int events);

static struct req *req_open(unsigned idx, uint32_t flags, uint64_t body, uint64_t reply)
{
    struct req *q = calloc(1, sizeof *q);
    q->io = tnl_mux_open(client_mux);
    if (!q->io) {
        free(q);
        return NULL;
    }
    q->idx = idx;
    q->flags = flags;
    q->body_left = body;
    q->reply_len = reply;
    gen_init(&q->body, 1000 + idx);
    gen_init(&q->reply, 2000 + idx);
    q->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(q->sha, EVP_sha256(), NULL);
    q->buf = calloc(1, IOBUF);
    memcpy(q->buf, "YMX1", 4);
    put32(q->buf + 4, flags);
    put64(q->buf + 8, reply);
    put32(q->buf + 16, 2000 + idx);
    q->buf_len = HDR;
    q->t0 = now_s();
    q->io->owner = q;
    q->io->ready = req_ready;
    tnl_io_want(q->io, TNL_IO_READ | TNL_IO_WRITE);
    reqs_open++;
    reqs = realloc(reqs, (nreqs + 1) * sizeof *reqs);
    reqs[nreqs++] = q;
    return q;
}

static void req_write(struct req *q)
{
    while (!q->shut) {
        if (q->buf_off == q->buf_len) {
            if (!q->body_left) {
                q->shut = 1;
                q->io->ops->shutdown(q->io);
                EVP_DigestFinal_ex(q->sha, q->digest, NULL);
                return;
            }
            size_t k = q->body_left < IOBUF ? (size_t)q->body_left : IOBUF;
            if (!(q->flags & F_SINK)) {     /* benchmarks: content is not checked */
                gen_fill(&q->body, q->buf, k);
                EVP_DigestUpdate(q->sha, q->buf, k);
            }
            q->buf_len = k;
            q->buf_off = 0;
            q->body_left -= k;
        }
        ssize_t n = tnl_io_write(q->io, q->buf + q->buf_off, q->buf_len - q->buf_off);
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            q->shut = 1;        /* reset: the read side reports it */
            return;
        }
        q->buf_off += (size_t)n;
    }
}

/* Returns 1 when the request finished. */
static int req_read(struct req *q)
{
    static uint8_t in[IOBUF], want[IOBUF];
    for (int round = 0; round < 8; round++) {
        ssize_t n = tnl_io_read(q->io, in, sizeof in);
        if (n == -EAGAIN)
            return 0;
        if (n <= 0) {
            req_finish(q, (int)n);
            return 1;
        }
        uint8_t *p = in;
        size_t len = (size_t)n;
        if (q->prefix_got < REPLY_PREFIX) {
            size_t k = REPLY_PREFIX - q->prefix_got < len ? REPLY_PREFIX - q->prefix_got : len;
            memcpy(q->prefix + q->prefix_got, p, k);
            q->prefix_got += k;
            p += k;
            len -= k;
        }
        if (len) {
            if (!(q->flags & F_SINK)) {
                gen_fill(&q->reply, want, len);
                if (memcmp(p, want, len) != 0)
                    q->mismatch = 1;
            }
            q->reply_got += len;
        }
    }
    return 0;
}

static void req_ready(struct tnl_io *io, int events)
{
    struct req *q = io->owner;
    if (events & TNL_IO_WRITE)
        req_write(q);
    if (req_read(q))
        return;
    tnl_io_want(io, TNL_IO_READ | (q->shut ? 0 : TNL_IO_WRITE));
}

static void check_bulk(void)
{
    uint64_t total = 0;
    double t0 = 1e30, t1 = 0;
    int all = 1;
    for (unsigned i = 0; i < nreqs; i++) {
        struct req *q = reqs[i];
        int ok = q->read_result == 0 && q->prefix_got == REPLY_PREFIX && !q->mismatch &&
                 get64(q->prefix + 32) == opt_bytes && q->reply_got == q->reply_len &&
                 ((q->flags & F_SINK) || memcmp(q->prefix, q->digest, 32) == 0);
        if (!ok) {
            all = 0;
            fprintf(stderr, "# stream %u: result %d prefix %zu count %llu/%llu reply %llu/%llu "
                    "mismatch %d digest %s\n", tnl_mux_stream_id(q->io), q->read_result,
                    q->prefix_got, (unsigned long long)get64(q->prefix + 32),
                    (unsigned long long)opt_bytes, (unsigned long long)q->reply_got,
                    (unsigned long long)q->reply_len, q->mismatch,
                    memcmp(q->prefix, q->digest, 32) ? "differs" : "same");
        }
        total += opt_bytes + q->reply_got;
        if (q->t0 < t0)
            t0 = q->t0;
        if (q->t1 > t1)
            t1 = q->t1;
    }
    tap(all, "%u streams: %llu bytes each way, SHA-256, counts and replies match", nreqs,
        (unsigned long long)opt_bytes);
    double secs = t1 - t0;
    printf("# %llu payload bytes in %.3f s: %.2f Gbit/s (%u stream%s)\n",
           (unsigned long long)total, secs, secs > 0 ? (double)total * 8 / secs / 1e9 : 0.0,
           nreqs, nreqs == 1 ? "" : "s");
}

enum { PH_BULK, PH_RESET, PH_STATS, PH_GOAWAY };
static int phase = PH_BULK;
static struct req *reset_by_server, *reset_by_client, *stats_req;

static void client_next_phase(void)
{
    if (phase == PH_BULK) {
        check_bulk();
        if (!opt_reset) {
            phase = PH_GOAWAY;
            tnl_mux_goaway(client_mux, TNL_MUX_GOAWAY_NORMAL);
            return;
        }
        phase = PH_RESET;
        /* Ours first, with some data; the peer-reset round trip that follows
         * proves the peer has taken it (frames are handled in order), and
         * only then is it reset (a stream reset before its owner saw it may
         * never reach on_stream). */
        reset_by_client = req_open(100001, 0, 1 << 20, 0);
        reqs_open--;
        req_write(reset_by_client);
        reset_by_client->io->ready = NULL;
        tnl_io_want(reset_by_client->io, 0);
        reset_by_server = req_open(100000, F_RESET, 4096, 0);
        return;
    }
    if (phase == PH_RESET) {
        tnl_io_close(reset_by_client->io, 1);
        reset_by_client->io = NULL;
        reset_by_client->done = 1;
        tap(reset_by_server->read_result == -ECONNRESET,
            "a stream the peer resets reads -ECONNRESET (got %d)", reset_by_server->read_result);
        phase = PH_STATS;
        stats_req = req_open(100002, F_STATS, 0, 0);
        return;
    }
    if (phase == PH_STATS) {
        uint64_t seen = stats_req->prefix_got >= 8 ? get64(stats_req->prefix) : 0;
        tap(stats_req->read_result == 0 && seen >= 1,
            "the peer saw the stream we reset (resets_seen %llu)", (unsigned long long)seen);
        phase = PH_GOAWAY;
        tnl_mux_goaway(client_mux, TNL_MUX_GOAWAY_NORMAL);
    }
}

static void on_close(struct tnl_mux *m, int err, const char *why, void *arg)
{
    session_over = 1;
    session_err = err;
    session_why = why;
    int client = arg != NULL;
    if (!client) {
        if (err && err != -ECONNRESET)
            fprintf(stderr, "yamux_peer: session ended: %s (%s)\n", why, strerror(-err));
        struct tnl_mux_stats st;
        tnl_mux_stats(m, &st);
        if (st.protocol_errors)
            failures++;
    }
    live_set(m, NULL);
    tnl_mux_free(m);
    if (client || once)
        tnl_loop_stop();
}

/* ---- set-up ------------------------------------------------------------- */

/* YAMUX_DEBUG=1: every second, the counters of every live session on stderr. */
static struct tnl_mux *live[64];

static void debug_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    for (unsigned i = 0; i < 64; i++) {
        struct tnl_mux_stats st;
        if (!live[i])
            continue;
        tnl_mux_stats(live[i], &st);
        fprintf(stderr, "# session %u: streams %u in %llu/%llu frames %llu out %llu/%llu frames %llu "
                "queued %llu wu %llu rtt %.6f perr %llu\n", i, st.streams, st.bytes_in, st.data_in,
                st.frames_in, st.bytes_out, st.data_out, st.frames_out, st.out_queued,
                st.window_updates_out, st.rtt, st.protocol_errors);
    }
}

static void live_set(struct tnl_mux *m, struct tnl_mux *to)
{
    for (unsigned i = 0; i < 64; i++)
        if (live[i] == m) {
            live[i] = to;
            return;
        }
}

static struct tnl_mux *start(int fd, int client)
{
    struct tnl_mux_cfg cfg;
    tnl_mux_cfg_defaults(&cfg);
    cfg.client = client;
    const char *ka = getenv("YAMUX_KEEPALIVE");
    if (ka)
        cfg.keepalive_interval = atof(ka);
    struct tnl_mux_cbs cbs = { .on_stream = on_stream, .on_close = on_close };
    tnl_sock_nodelay(fd);
    struct tnl_io *t = tnl_io_fd_new(fd);
    struct tnl_mux *m = t ? tnl_mux_new(t, &cfg, &cbs, client ? (void *)1 : NULL) : NULL;
    if (m)
        live_set(NULL, m);
    return m;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (!start(fd, 0))
        fprintf(stderr, "yamux_peer: out of memory\n");
    if (once)
        ev_io_stop(loop, w);
}

static int run_server(const char *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = tnl_sock_listen((struct sockaddr *)&sa, sizeof sa);
    if (fd < 0) {
        fprintf(stderr, "yamux_peer: listen on %s: %s\n", port, strerror(-fd));
        return 2;
    }
    ev_io w;
    ev_io_init(&w, accept_cb, fd, EV_READ);
    ev_io_start(tnl_ev, &w);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    printf("listening %u\n", ntohs(sa.sin_port));
    fflush(stdout);
    tnl_loop_run();
    return failures ? 1 : 0;
}

static int run_client(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) {
        fprintf(stderr, "yamux_peer: want HOST:PORT\n");
        return 2;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        fprintf(stderr, "yamux_peer: cannot resolve %s\n", hostport);
        return 2;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        fprintf(stderr, "yamux_peer: connect %s: %s\n", hostport, strerror(errno));
        freeaddrinfo(ai);
        return 2;
    }
    freeaddrinfo(ai);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    client_mux = start(fd, 1);
    if (!client_mux)
        return 2;
    for (unsigned i = 0; i < opt_streams; i++)
        if (!req_open(i, opt_sink ? F_SINK : 0, opt_bytes, opt_reply)) {
            tap(0, "open stream %u", i);
            return 1;
        }
    tnl_loop_run();
    tap(session_over && session_err == 0, "session ended cleanly after GoAway (%s)", session_why);
    for (unsigned i = 0; i < nreqs; i++) {
        EVP_MD_CTX_free(reqs[i]->sha);
        free(reqs[i]->buf);
        free(reqs[i]);
    }
    free(reqs);
    printf("1..%d\n", tests);
    return failures ? 1 : 0;
}

static uint64_t size_arg(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K')
        v *= 1024;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024;
    else if (*end == 'g' || *end == 'G')
        v *= 1024.0 * 1024 * 1024;
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: yamux_peer server PORT [--once]\n"
                "       yamux_peer client HOST:PORT [-n STREAMS] [-m BYTES] [-r REPLY] [--sink] [--no-reset]\n");
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--once"))
            once = 1;
        else if (!strcmp(argv[i], "--sink"))
            opt_sink = 1;
        else if (!strcmp(argv[i], "--no-reset"))
            opt_reset = 0;
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            opt_streams = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            opt_bytes = size_arg(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            opt_reply = size_arg(argv[++i]);
        else {
            fprintf(stderr, "yamux_peer: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (tnl_loop_init() < 0)
        return 2;
    static ev_timer debug;
    if (getenv("YAMUX_DEBUG")) {
        ev_timer_init(&debug, debug_cb, 1, 1);
        ev_timer_start(tnl_ev, &debug);
        ev_unref(tnl_ev);
    }
    if (!strcmp(argv[1], "server"))
        return run_server(argv[2]);
    if (!strcmp(argv[1], "client"))
        return run_client(argv[2]);
    fprintf(stderr, "yamux_peer: unknown mode %s\n", argv[1]);
    return 2;
}

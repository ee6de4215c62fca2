/*
 * mux_int.h — the session and stream structures, shared by the files of core/mux only.
 *
 * Files
 *   session.c    lifecycle, entry points (transport ready, tick), the end
 *   dispatch.c   delivering inbound streams, readiness and ping results
 *   input.c      reading the transport, frame handling, protocol errors
 *   output.c     the outbound frame queue, flushing, fair write grants
 *   stream.c     the stream tnl_io (read/write/shutdown/want/close)
 *   rqueue.c     a stream's receive queue and receive window
 *   table.c      stream id -> stream hash table
 *   keepalive.c  pings, RTT, keepalive timeout
 *
 * Re-entrancy discipline
 *   Owner callbacks (on_stream, on_close, ping callbacks, a stream's ready)
 *   run only from the session's own loop entry points (transport ready, the
 *   tick, timers), between enter() and leave(). Calls the owner makes into the
 *   mux (stream read/write/close, tnl_mux_open/goaway/free) never call back:
 *   they mark state and schedule the tick. A stream closed while an entry
 *   point is on the stack (m->depth > 0) is parked on the graveyard and freed
 *   at leave(); the session itself is freed when its last reference goes
 *   (the owner's, one per unfreed stream, one per running entry point).
 */
#ifndef TNL_MUX_INT_H
#define TNL_MUX_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "loop/loop.h"
#include "mux/list.h"
#include "mux/mux.h"
#include "util/buf.h"

enum {
    MUX_MAX_FRAME = 64 * 1024,      /* payload per Data frame we send: interleaving grain */
    MUX_OUT_HIGH = 512 * 1024,      /* queued output above which stream writes wait */
    MUX_OUT_LOW = 256 * 1024,       /* ... and below which waiting writers are resumed */
    MUX_OUT_HARD = 2 * 1024 * 1024, /* queued output above which we stop reading the peer */
    MUX_QUANTUM = 64 * 1024,        /* bytes a resumed writer may queue while others wait */
    MUX_READ_ROUNDS = 4,            /* transport reads per readiness event */
    MUX_BORROW_MAX = 32,            /* zero-copy payload slices per read pass */
    MUX_CHUNK_MIN = 1024,
    MUX_CHUNK_MAX = 64 * 1024,
    MUX_CHUNK_POOL = 32,            /* full-size chunks kept for reuse (2 MiB) */
    MUX_PEEK_MAX = 256 * 1024,      /* bytes a peek hands out at once (one write's worth) */
};

#define MUX_RTT_FLOOR 0.001         /* seconds: auto-tuning assumes at least this RTT */
#define MUX_LINGER 5.0              /* seconds to flush a final GoAway / FIN before closing */

/* Received payload copied out of the read buffer, freed as it is read. */
struct mux_chunk {
    struct mux_chunk *next;
    uint32_t off, len, cap;
    uint8_t data[];
};

/* Payload still in the session's read buffer, read from there directly. */
struct mux_borrow {
    struct mux_stream *s;       /* NULL once the stream is gone */
    const uint8_t *p;
    uint32_t len;
    int next;                   /* next slice of the same stream, -1 */
};

struct mux_stream {
    struct tnl_io io;           /* first: what the owner holds */
    struct tnl_mux *m;          /* holds one reference on m */
    struct mux_stream *hnext;   /* table chain (while in_table) */
    struct mux_link pending;    /* readiness to report (m->pending), or the graveyard */
    struct mux_link wait;       /* m->waiters: blocked on the session's output queue */
    struct mux_link ctl;        /* m->ctl: a bare SYN or ACK to send at the next flush,
                                   or m->accept before on_stream */
    uint32_t id;
    /* receive side: rqueued = chunks + borrowed slices, in that order */
    struct mux_chunk *rq_head, *rq_tail;
    int b_head, b_tail;         /* borrowed slices in m->borrow, -1 */
    uint32_t rqueued;
    uint32_t rwin;              /* window we advertise (grows by auto-tuning) */
    uint32_t rcredit;           /* bytes the peer may still send: rcredit + rqueued <= rwin */
    double epoch;               /* when the last WindowUpdate went out (auto-tuning) */
    /* send side */
    uint32_t scredit;           /* bytes we may still send (the peer's window) */
    uint32_t quota;             /* while writers wait: what this one may still queue */
    int rerr, werr;             /* sticky: read/write fail with these once set */
    unsigned inbound : 1;
    unsigned syn_pending : 1;   /* outbound: SYN not sent yet */
    unsigned ack_pending : 1;   /* inbound: ACK not sent yet (counts in the backlog) */
    unsigned used : 1;          /* the owner touched it: an ACK is due */
    unsigned accepted : 1;      /* handed to on_stream (or opened by us) */
    unsigned fin_sent : 1, fin_recv : 1;
    unsigned in_table : 1;      /* live on the wire */
    unsigned closed : 1;        /* the owner closed it (or never got it) */
    unsigned granted : 1;       /* resumed from m->waiters, quota applies */
    unsigned dead : 1;          /* on the graveyard */
};

struct mux_ping_waiter {
    struct mux_ping_waiter *next;
    void (*cb)(void *arg, double rtt);
    void *arg;
};

struct tnl_mux {
    struct tnl_io *transport;   /* owned; NULL once closed */
    struct tnl_mux_cfg cfg;
    struct tnl_mux_cbs cbs;
    void *arg;
    unsigned refs, depth;

    /* streams */
    struct mux_stream **buckets;
    unsigned nbuckets, nstreams, nbacklog;
    uint32_t next_id;           /* our next stream id */
    uint32_t max_peer_id;       /* highest id the peer opened (ids at or below: seen) */
    struct mux_link pending, waiters, ctl, accept, graveyard;

    /* input */
    struct tnl_buf *rbuf;       /* pooled; held only while it holds unparsed bytes */
    struct mux_stream *in_s;    /* receiving the current Data payload (NULL: discard) */
    uint32_t in_left;           /* payload bytes of the current Data frame still to come */
    unsigned in_fin : 1;        /* the current Data frame carries FIN (applied at its end) */
    struct mux_borrow borrow[MUX_BORROW_MAX];
    int nborrow;

    /* output: frames never span buffers, so each buffer is one write */
    struct tnl_buf *out_head, *out_tail;
    size_t out_bytes;
    uint8_t *resv;              /* a Data frame reserved at the queue's tail (stream reserve) */
    size_t resv_len;            /* ... the payload room it holds, until commit */
    unsigned write_blocked : 1; /* the transport said -EAGAIN: wait for WRITE */

    /* keepalive */
    ev_timer ka_timer, ping_timer, linger_timer;
    ev_prepare tick;            /* before the loop sleeps: dispatch, flush */
    ev_idle spin;               /* keeps the loop from sleeping while readiness is pending */
    uint32_t ping_id;
    double ping_sent;           /* monotonic seconds */
    unsigned long long ping_rx_mark;    /* bytes_in when the ping went out */
    double ping_result;         /* RTT handed to the waiters */
    struct mux_ping_waiter *ping_waiters;
    unsigned ping_out : 1, ping_done : 1;

    /* state */
    unsigned local_goaway : 1, remote_goaway : 1;
    unsigned ending : 1;        /* no more input; streams were reset */
    unsigned lingering : 1;     /* ending, flushing the last frames */
    unsigned ended : 1;         /* transport closed */
    unsigned reported : 1;      /* on_close called */
    unsigned freed : 1;         /* tnl_mux_free called */
    unsigned kick : 1;          /* the tick was asked for while it ran */
    unsigned rx_eof : 1;        /* the transport's read side ended */
    unsigned ids_exhausted : 1;
    int fail;                   /* a failure seen where the session cannot end (owner context) */
    const char *fail_why;
    int err;
    const char *why;
    char why_buf[200];          /* a why composed at the end (the transport's error) */
    struct tnl_mux_stats st;
};

/* session.c */
void mux_enter(struct tnl_mux *m);
void mux_leave(struct tnl_mux *m);
void mux_unref(struct tnl_mux *m);
void mux_schedule(struct tnl_mux *m);
void mux_settle(struct tnl_mux *m);
void mux_fail(struct tnl_mux *m, int err, const char *why);
void mux_end(struct tnl_mux *m, int err, const char *why, int linger);
void mux_end_transport(struct tnl_mux *m, int err, const char *why, int linger);
double mux_mono(void);

/* dispatch.c */
void mux_pending_add(struct mux_stream *s);
void mux_dispatch(struct tnl_mux *m);
void mux_accept_streams(struct tnl_mux *m);
void mux_wait_if_blocked(struct mux_stream *s);

/* input.c */
void mux_read_rounds(struct tnl_mux *m);
void mux_protocol_error(struct tnl_mux *m, const char *why, const struct tnl_mux_frame *f);

/* output.c */
int mux_out_frame(struct tnl_mux *m, enum tnl_mux_type type, uint16_t flags, uint32_t id,
                  uint32_t length);
uint8_t *mux_out_reserve(struct tnl_mux *m, size_t want, size_t min, size_t *got);
int mux_out_flush(struct tnl_mux *m);
void mux_out_release(struct tnl_mux *m);
void mux_wait_add(struct mux_stream *s);
void mux_grant_waiters(struct tnl_mux *m);
void mux_emit_ctl(struct tnl_mux *m);
uint16_t mux_take_open_flags(struct mux_stream *s);

/* stream.c */
struct mux_stream *mux_stream_new(struct tnl_mux *m, uint32_t id, int inbound);
void mux_stream_forget(struct mux_stream *s);
void mux_stream_kill(struct mux_stream *s, int err);
void mux_stream_peer_reset(struct mux_stream *s);
void mux_stream_peer_fin(struct mux_stream *s);
void mux_stream_window(struct mux_stream *s, uint32_t delta);
int mux_stream_readiness(const struct mux_stream *s);
void mux_reap(struct tnl_mux *m);

/* rqueue.c */
int mux_rq_push(struct mux_stream *s, const uint8_t *p, uint32_t n);
int mux_rq_append(struct mux_stream *s, const uint8_t *p, uint32_t n);
int mux_rq_materialize(struct tnl_mux *m);
size_t mux_rq_peek(const struct mux_stream *s, struct iovec *iov, int *n, size_t cap);
size_t mux_rq_read(struct mux_stream *s, uint8_t *out, size_t n);
void mux_rq_clear(struct mux_stream *s);
void mux_rq_consumed(struct mux_stream *s);

/* table.c */
struct mux_stream *mux_table_get(const struct tnl_mux *m, uint32_t id);
int mux_table_put(struct tnl_mux *m, struct mux_stream *s);
void mux_table_del(struct tnl_mux *m, struct mux_stream *s);
struct mux_stream *mux_table_next(const struct tnl_mux *m, unsigned *cursor);
void mux_table_free(struct tnl_mux *m);

/* keepalive.c */
void mux_ka_start(struct tnl_mux *m);
void mux_ka_stop(struct tnl_mux *m);
void mux_ping_send(struct tnl_mux *m);
void mux_ping_ack(struct tnl_mux *m, uint32_t opaque);
void mux_ping_finish(struct tnl_mux *m, int drop);

#endif

/*
 * splice.h — move bytes both ways between two endpoints until both ends are
 * done, with backpressure and half-close.
 *
 * Per direction (a->b and b->a): read from the source into a copy buffer only
 * when the buffer is empty; while the destination cannot take more, stop
 * reading from the source (so nothing is ever buffered beyond one buffer per
 * direction, and a slow reader slows the writer down through TCP). When the
 * source ends (EOF) and everything read was written, shut the destination's
 * write side: the other direction keeps flowing until it ends too. When both
 * directions have ended the splice is done; an error on either side ends it at
 * once (the owner then resets both).
 *
 * A read that returns less than it asked for has emptied its source (a
 * socket's receive queue, or what a TLS session holds): the direction then
 * waits for readiness instead of asking again only to hear EAGAIN. Readiness
 * is level-triggered, so whatever arrived in between is reported at once; a
 * request-response exchange costs one read per message instead of two.
 *
 * No copy buffer where an end keeps a buffer of its own (net/io.h: peek and
 * reserve, a mux stream): a stream's received bytes are written to the
 * destination from where they are and dropped as they are taken; a socket
 * is read straight into the room a stream reserved in its session's output.
 * Either saves a memcpy of every byte (the relay's upload direction, the
 * agent's download direction), and the rule above holds: nothing is read
 * that cannot be written.
 *
 * Zero copy between two sockets (net/pipe.h): a direction whose read fills
 * a whole copy buffer is carrying bulk, and from then on its bytes go
 * socket -> pipe -> socket with splice(2), never through user space. The
 * pipe plays the copy buffer's part: it is filled only when empty, and
 * emptied before the half-close is passed on. Request-response traffic,
 * whose messages are smaller than a buffer, stays on the copy path (one
 * recv and one send per message beat two splices and a pipe).
 */
#ifndef TNL_SPLICE_H
#define TNL_SPLICE_H

#include <stdint.h>

#include "net/io.h"
#include "util/buf.h"

struct tnl_splice;

struct tnl_splice_dir {
    struct tnl_io *from, *to;
    struct tnl_buf *buf;        /* owned; NULL while nothing is in flight */
    uint64_t bytes;             /* written to `to` */
    unsigned eof : 1;           /* `from` ended */
    unsigned shut : 1;          /* `to` was shut down for writing */
    unsigned want_read : 1;
    unsigned want_write : 1;
    unsigned drained : 1;       /* `from` is empty for now: wait for ready, do not read again */
    unsigned bulk : 1;          /* a read has filled a whole copy buffer (router/move.h) */
    unsigned zc : 1;            /* zero copy: bytes go through pipe[] */
    unsigned zc_off : 1;        /* no pipe could be had: stay on the copy path */
    int pipe[2];                /* while zc: read end, write end */
    size_t pipe_cap, piped;     /* while zc: what the pipe holds, what is in it */
};

/* err = 0: both directions ended cleanly; < 0: -errno of the first failure,
 * *side says which endpoint failed ('a' or 'b'). The owner closes both ios. */
typedef void (*tnl_splice_done_fn)(struct tnl_splice *s, int err, char side);

struct tnl_splice {
    struct tnl_io *a, *b;
    struct tnl_splice_dir ab, ba;
    tnl_splice_done_fn done;
    void *owner;
    double last_active;         /* loop time of the last byte moved */
    int err;                    /* first failure, reported through done */
    char err_side;
    unsigned finished : 1;
    unsigned reported : 1;
};

/*
 * Start moving bytes. prefill (may be NULL) is written to b before anything
 * read from a; the splice takes ownership of it. a_eof says a already ended
 * (it sent EOF while it was being sniffed). Sets a->ready and b->ready.
 * May call done before returning.
 *
 * Neither socket is read before it reports readiness: a's bytes so far are
 * the prefill, and b has only just been connected.
 */
void tnl_splice_start(struct tnl_splice *s, struct tnl_io *a, struct tnl_io *b,
                      struct tnl_buf *prefill, int a_eof, tnl_splice_done_fn done, void *owner);

/* A splice that moves to another process (router/move.h) takes its pipes
 * along: per direction (0: a->b, 1: b->a) the pipe it splices through (fd[0]
 * < 0: none, it copies) and how many bytes that pipe holds. */
struct tnl_splice_pipe {
    int fd[2];
    size_t cap, piped;
};

/* The pipes of s, to send with its sockets. */
void tnl_splice_carry(const struct tnl_splice *s, struct tnl_splice_pipe carry[2]);
/* They were sent: close this process's descriptors of them (never pooled,
 * another process holds them). */
void tnl_splice_drop_pipes(struct tnl_splice *s);
/* Go on with a splice another process started: as tnl_splice_start without
 * a prefill, each direction with the pipe it had (taken over), whose bytes
 * are written first. */
void tnl_splice_resume(struct tnl_splice *s, struct tnl_io *a, struct tnl_io *b,
                       const struct tnl_splice_pipe carry[2], tnl_splice_done_fn done, void *owner);

/* Release the buffers (the ios are the owner's to close). */
void tnl_splice_release(struct tnl_splice *s);

#endif

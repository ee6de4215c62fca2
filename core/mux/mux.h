/*
 * mux.h — yamux stream multiplexing over one byte stream.
 *
 * A session (struct tnl_mux) runs over one transport tnl_io (a TCP socket, a
 * TLS session) and exposes each stream as a tnl_io of its own, so a stream can
 * be spliced with a socket (net/splice.h) exactly like a socket. The wire
 * format is yamux (shared/vectors/yamux-spec.md, docs/mux.md): any yamux
 * implementation can be the peer.
 *
 * Glossary
 *   session    the multiplexer on one transport; client = odd stream ids.
 *   stream     a bidirectional byte stream inside the session.
 *   window     per stream and direction, how many payload bytes the sender may
 *              still send; starts at 256 KiB, replenished by WindowUpdate as the
 *              reader consumes, grown (auto-tuned) up to cfg.max_window for a
 *              reader that keeps up.
 *   FIN / RST  half-close (tnl_io shutdown) / abort (tnl_io close(io, 1)).
 *   GoAway     "no new streams"; the session ends when the last stream is done.
 *   backlog    inbound streams we have not acknowledged yet (the owner has not
 *              used them); past cfg.max_backlog new ones are refused with RST.
 *
 * Stream contract (tnl_io, see net/io.h)
 *   read   bytes, 0 after the peer's FIN, -EAGAIN, or -ECONNRESET (peer RST,
 *          session gone).
 *   write  never beyond the peer's window nor into a full session queue: a
 *          short count or -EAGAIN, then ready(TNL_IO_WRITE) when it can go on;
 *          -EPIPE after our own shutdown, -ECONNRESET after a reset.
 *   ready  level-triggered, called from the loop (never from inside a call the
 *          owner makes into the mux), so an owner may close the stream, or
 *          free the session, from inside its ready callback.
 *   close  close(io, 0): FIN if not sent yet; unread data or a later peer
 *          write resets the stream (as TCP does). close(io, 1): RST.
 *   A stream stays valid until its owner closes it, even after the session
 *   ended or was freed (every operation then fails with -ECONNRESET).
 */
#ifndef TNL_MUX_H
#define TNL_MUX_H

#include <stdint.h>

#include "mux/frame.h"
#include "net/io.h"

struct tnl_mux;

struct tnl_mux_cfg {
    int client;                  /* 1: we open odd stream ids, 0: even */
    uint32_t max_window;         /* auto-tuning ceiling per stream (default 16 MiB, min 256 KiB) */
    double keepalive_interval;   /* seconds between pings (default 30; 0: no keepalive) */
    double keepalive_timeout;    /* seconds without a Ping ACK and without any byte
                                    received before the session is dead (default 10; 0: never) */
    unsigned max_streams;        /* concurrent streams, both directions (default 4096) */
    unsigned max_backlog;        /* inbound streams not yet acknowledged (default 256) */
};

void tnl_mux_cfg_defaults(struct tnl_mux_cfg *cfg);

struct tnl_mux_cbs {
    /* An inbound stream. The owner takes it: sets stream->ready and ->owner,
     * then reads, writes and finally closes it (or closes it at once to refuse
     * it). Without this callback every inbound stream is refused with RST. */
    void (*on_stream)(struct tnl_mux *m, struct tnl_io *stream, void *arg);
    /* The session is over: err 0 for an orderly end (GoAway drained, or the
     * peer closed an idle transport), else -errno: -EPROTO (the peer broke the
     * protocol), -ETIMEDOUT (keepalive), -ECONNABORTED (the peer's GoAway with
     * an error code), -ECONNRESET (transport lost with streams open), or the
     * transport's error. why is a static string. Called once, never after
     * tnl_mux_free; the owner calls tnl_mux_free (it may do so in here). */
    void (*on_close)(struct tnl_mux *m, int err, const char *why, void *arg);
};

/* Start a session over transport, which the session owns from now on (closed
 * on failure too). NULL when out of memory. Keepalive and a first RTT ping
 * start at once. */
struct tnl_mux *tnl_mux_new(struct tnl_io *transport, const struct tnl_mux_cfg *cfg,
                            const struct tnl_mux_cbs *cbs, void *arg);

/* A new outbound stream; NULL after a GoAway either way, at max_streams, when
 * the ids are exhausted, or when the session is over. Its SYN goes out with
 * its first frame, or on its own at the end of this loop iteration. */
struct tnl_io *tnl_mux_open(struct tnl_mux *m);

/* The stream's id; 0 if io is not a mux stream. */
uint32_t tnl_mux_stream_id(const struct tnl_io *stream);

/* Measure the round trip: cb(arg, seconds) when the peer answers (an
 * outstanding ping is shared), cb(arg, -1) if the session ends first. Never
 * called after tnl_mux_free. Returns 0 or -ENOMEM. */
int tnl_mux_ping(struct tnl_mux *m, void (*cb)(void *arg, double rtt_seconds), void *arg);

/* Send GoAway(code) and refuse new streams both ways; the session ends
 * (on_close with err 0) once the last stream is done. */
void tnl_mux_goaway(struct tnl_mux *m, uint32_t code);

/* Close everything now: the transport is closed, every stream is reset (their
 * owners see -ECONNRESET through their ready callbacks and close them; the
 * memory they need lives until they do). Safe inside any mux callback. */
void tnl_mux_free(struct tnl_mux *m);

struct tnl_mux_stats {
    unsigned streams;                     /* open now, both directions */
    unsigned backlog;                     /* inbound streams not acknowledged yet */
    unsigned long long streams_opened;    /* ever: outbound opened + inbound accepted */
    unsigned long long streams_inbound;   /* inbound accepted */
    unsigned long long streams_rejected;  /* inbound refused with RST (limits, GoAway) */
    unsigned long long bytes_in, bytes_out;   /* transport bytes */
    unsigned long long data_in, data_out;     /* stream payload bytes */
    unsigned long long frames_in, frames_out;
    unsigned long long window_updates_out;
    unsigned long long protocol_errors;   /* violations by the peer (the first ends the session) */
    unsigned long long pings_sent;
    double rtt;                           /* last measured round trip, seconds; -1 unknown */
    unsigned long long out_queued;        /* bytes waiting for the transport */
};

void tnl_mux_stats(const struct tnl_mux *m, struct tnl_mux_stats *out);

/* Free the receive chunks kept for reuse across sessions (shutdown, tests). */
void tnl_mux_pool_drain(void);

/* Why the session ended (the text on_close gets, which may name the
 * transport's own error, a TLS alert say), or NULL while it runs. Streams
 * killed by the end learn of it before on_close: their owners ask here. */
const char *tnl_mux_end_reason(const struct tnl_mux *m);

#endif

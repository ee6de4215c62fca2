/*
 * session.c — a yamux session's life: creation, the entry points through
 * which the loop drives it, and its end.
 *
 * Entry points (transport ready, the tick, the timers) all follow one shape:
 *   mux_enter; <work>; mux_settle; mux_leave
 * settle tells owners what happened (dispatch), sends the SYN/ACKs no data
 * frame carried, flushes the output, and decides what to wait for next.
 * leave frees the streams closed meanwhile and, once nothing is on the stack,
 * reports the end (on_close) as the very last thing: the owner may free the
 * session in there.
 *
 * The tick is an ev_prepare watcher: it runs just before the loop sleeps, so
 * everything owners wrote during one loop iteration leaves in as few writes
 * as possible. While some stream is still ready after its callback (level
 * triggering), an ev_idle watcher keeps the loop from sleeping.
 *
 * The end (mux_end): streams are reset (their owners are told), input stops,
 * and the transport is closed, at once or after the last frames were flushed
 * (linger: a GoAway, final FINs), at most MUX_LINGER seconds later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "mux/mux_int.h"

void tnl_mux_cfg_defaults(struct tnl_mux_cfg *cfg)
{
    *cfg = (struct tnl_mux_cfg){
        .client = 0,
        .max_window = 16u * 1024 * 1024,
        .keepalive_interval = 30.0,
        .keepalive_timeout = 10.0,
        .max_streams = 4096,
        .max_backlog = 256,
    };
}

static void destroy(struct tnl_mux *m)
{
    ev_prepare_stop(tnl_ev, &m->tick);
    ev_idle_stop(tnl_ev, &m->spin);
    ev_timer_stop(tnl_ev, &m->linger_timer);
    mux_ka_stop(m);
    if (m->transport)
        tnl_io_close(m->transport, 1);
    mux_out_release(m);
    tnl_buf_put(m->rbuf);
    mux_table_free(m);
    mux_ping_finish(m, 1);
    free(m);
}

void mux_enter(struct tnl_mux *m)
{
    m->refs++;
    m->depth++;
}

void mux_unref(struct tnl_mux *m)
{
    if (--m->refs == 0)
        destroy(m);
}

void mux_leave(struct tnl_mux *m)
{
    if (--m->depth == 0) {
        mux_reap(m);
        if (m->ended && !m->reported && !m->freed) {
            m->reported = 1;
            if (m->cbs.on_close)
                m->cbs.on_close(m, m->err, m->why, m->arg);     /* may free m */
        }
    }
    mux_unref(m);
}

void mux_schedule(struct tnl_mux *m)
{
    m->kick = 1;
    if (!ev_is_active(&m->tick))
        ev_prepare_start(tnl_ev, &m->tick);
}

/* A failure seen in owner context (a stream write's early flush): the next
 * entry point ends the session. */
void mux_fail(struct tnl_mux *m, int err, const char *why)
{
    if (!m->fail) {
        m->fail = err;
        m->fail_why = why;
    }
    mux_schedule(m);
}

static void close_transport(struct tnl_mux *m)
{
    struct tnl_io *t = m->transport;
    if (!t)
        return;
    ev_timer_stop(tnl_ev, &m->linger_timer);
    m->transport = NULL;
    m->lingering = 0;
    m->ended = 1;
    tnl_io_want(t, 0);
    tnl_io_close(t, 0);
    mux_out_release(m);
    mux_schedule(m);            /* on_close from the next leave */
}

static void update_want(struct tnl_mux *m)
{
    if (!m->transport)
        return;
    int ev = 0;
    if (!m->rx_eof && (m->ending || m->out_bytes <= MUX_OUT_HARD))
        ev |= TNL_IO_READ;
    if (m->write_blocked && m->out_head)
        ev |= TNL_IO_WRITE;
    tnl_io_want(m->transport, ev);
}

void mux_end(struct tnl_mux *m, int err, const char *why, int linger)
{
    struct mux_stream *s;
    unsigned cursor = 0;
    if (m->ending)
        return;
    m->ending = 1;
    m->err = err;
    m->why = why;
    mux_ka_stop(m);
    m->in_s = NULL;
    m->in_left = 0;
    while ((s = mux_table_next(m, &cursor)))
        mux_stream_kill(s, -ECONNRESET);
    if (linger && m->transport && m->out_head && !m->freed) {
        m->lingering = 1;
        ev_timer_start(tnl_ev, &m->linger_timer);
        update_want(m);
    } else {
        close_transport(m);
    }
    mux_schedule(m);
}

/* mux_end after a failed transport read or write, adding the transport's own
 * account of it when it has one (a TLS alert from the peer, say). */
void mux_end_transport(struct tnl_mux *m, int err, const char *why, int linger)
{
    const char *detail = m->transport && !m->ending ? tnl_io_error(m->transport) : NULL;
    if (detail) {
        snprintf(m->why_buf, sizeof m->why_buf, "%s: %s", why, detail);
        why = m->why_buf;
    }
    mux_end(m, err, why, linger);
}

/* A failed transport write. The peer closing its end shows up here as EPIPE
 * when we write before reading its EOF: that is an end, not a fault. */
static void write_failed(struct tnl_mux *m, int err)
{
    if (err == -EPIPE)
        mux_end_transport(m, m->nstreams ? -ECONNRESET : 0, "transport closed by the peer", 0);
    else
        mux_end_transport(m, err, "transport write failed", 0);
}

void mux_settle(struct tnl_mux *m)
{
    for (int pass = 0; pass < 2; pass++) {
        if (m->fail && !m->ending) {
            if (m->fail == -EPIPE)
                write_failed(m, m->fail);
            else
                mux_end(m, m->fail, m->fail_why, 0);
        }
        mux_dispatch(m);
        if (!m->ending && (m->local_goaway || m->remote_goaway) && m->nstreams == 0)
            mux_end(m, 0, "GoAway: every stream is done", 1);
        if (!m->transport)
            return;
        if (!m->ending)
            mux_emit_ctl(m);
        if (!m->write_blocked && m->out_head) {
            int r = mux_out_flush(m);
            if (r < 0) {
                write_failed(m, r);
                continue;       /* tell the owners */
            }
        }
        if (m->ending) {
            if (!m->out_head)
                close_transport(m);
        } else if (m->out_bytes < MUX_OUT_LOW) {
            mux_grant_waiters(m);
        }
        update_want(m);
        return;
    }
}

static void transport_ready(struct tnl_io *io, int events)
{
    struct tnl_mux *m = io->owner;
    mux_enter(m);
    if (events & TNL_IO_WRITE) {
        m->write_blocked = 0;
        int r = mux_out_flush(m);
        if (r < 0)
            write_failed(m, r);
    }
    if ((events & TNL_IO_READ) && m->transport)
        mux_read_rounds(m);
    mux_settle(m);
    mux_leave(m);
}

static void tick_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct tnl_mux *m = w->data;
    (void)loop; (void)revents;
    mux_enter(m);
    m->kick = 0;
    mux_settle(m);
    if (m->kick || !mux_list_empty(&m->pending)) {
        ev_idle_start(tnl_ev, &m->spin);     /* more to do: do not sleep */
    } else {
        ev_idle_stop(tnl_ev, &m->spin);
        ev_prepare_stop(tnl_ev, &m->tick);
    }
    mux_leave(m);
}

static void spin_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop; (void)w; (void)revents;     /* the tick does the work */
}

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tnl_mux *m = w->data;
    (void)loop; (void)revents;
    mux_enter(m);
    close_transport(m);
    mux_settle(m);
    mux_leave(m);
}

struct tnl_mux *tnl_mux_new(struct tnl_io *transport, const struct tnl_mux_cfg *cfg,
                            const struct tnl_mux_cbs *cbs, void *arg)
{
    struct tnl_mux *m = calloc(1, sizeof *m);
    if (!m) {
        tnl_io_close(transport, 1);
        return NULL;
    }
    if (cfg)
        m->cfg = *cfg;
    else
        tnl_mux_cfg_defaults(&m->cfg);
    if (m->cfg.max_window < TNL_MUX_INITIAL_WINDOW)
        m->cfg.max_window = TNL_MUX_INITIAL_WINDOW;
    if (cbs)
        m->cbs = *cbs;
    m->arg = arg;
    m->refs = 1;
    m->transport = transport;
    m->next_id = m->cfg.client ? 1 : 2;
    m->st.rtt = -1;
    mux_list_init(&m->pending);
    mux_list_init(&m->waiters);
    mux_list_init(&m->ctl);
    mux_list_init(&m->accept);
    mux_list_init(&m->graveyard);
    ev_prepare_init(&m->tick, tick_cb);
    m->tick.data = m;
    ev_idle_init(&m->spin, spin_cb);
    ev_timer_init(&m->linger_timer, linger_cb, MUX_LINGER, 0);
    m->linger_timer.data = m;
    transport->owner = m;
    transport->ready = transport_ready;
    tnl_io_want(transport, TNL_IO_READ);
    mux_ka_start(m);
    mux_schedule(m);
    return m;
}

struct tnl_io *tnl_mux_open(struct tnl_mux *m)
{
    if (m->ending || m->local_goaway || m->remote_goaway || m->ids_exhausted ||
        m->nstreams >= m->cfg.max_streams)
        return NULL;
    struct mux_stream *s = mux_stream_new(m, m->next_id, 0);
    if (!s)
        return NULL;
    if (m->next_id > UINT32_MAX - 2)
        m->ids_exhausted = 1;
    else
        m->next_id += 2;
    mux_list_add_tail(&m->ctl, &s->ctl);
    mux_schedule(m);
    return &s->io;
}

void tnl_mux_goaway(struct tnl_mux *m, uint32_t code)
{
    if (m->ending || m->local_goaway)
        return;
    m->local_goaway = 1;
    mux_out_frame(m, TNL_MUX_GO_AWAY, 0, 0, code);
    mux_schedule(m);
}

void tnl_mux_free(struct tnl_mux *m)
{
    if (!m || m->freed)
        return;
    m->freed = 1;
    m->refs++;                  /* as an entry point, but one that calls nobody */
    m->depth++;
    mux_ping_finish(m, 1);
    mux_end(m, 0, "closed by the owner", 0);
    close_transport(m);
    if (--m->depth == 0)
        mux_reap(m);
    mux_unref(m);
    mux_unref(m);               /* the owner's reference */
}

const char *tnl_mux_end_reason(const struct tnl_mux *m)
{
    return m->ending ? m->why : NULL;
}

void tnl_mux_stats(const struct tnl_mux *m, struct tnl_mux_stats *out)
{
    *out = m->st;
    out->streams = m->nstreams;
    out->backlog = m->nbacklog;
    out->out_queued = m->out_bytes;
}

/*
 * keepalive.c — pings: RTT for auto-tuning and tnl_mux_ping, and detecting a
 * dead link.
 *
 * A Ping SYN goes out when the session starts (a first RTT) and then every
 * keepalive_interval; one ping is outstanding at a time and tnl_mux_ping
 * shares it. If no Ping ACK comes back within keepalive_timeout the link is
 * declared dead, unless bytes kept arriving meanwhile: then the peer is alive
 * but its answer is queued behind data, and the wait starts over. A dead link
 * is thus noticed at most interval + timeout after it died.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "mux/mux_int.h"

double mux_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int timeout_armed(const struct tnl_mux *m)
{
    return m->cfg.keepalive_interval > 0 && m->cfg.keepalive_timeout > 0;
}

static void ka_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tnl_mux *m = w->data;
    (void)loop; (void)revents;
    mux_enter(m);
    mux_ping_send(m);
    mux_settle(m);
    mux_leave(m);
}

static void ping_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tnl_mux *m = w->data;
    (void)loop; (void)revents;
    mux_enter(m);
    if (m->ping_out && !m->ending) {
        if (m->st.bytes_in != m->ping_rx_mark) {
            m->ping_rx_mark = m->st.bytes_in;
            ev_timer_set(w, m->cfg.keepalive_timeout, 0);
            ev_timer_start(tnl_ev, w);
        } else {
            mux_end(m, -ETIMEDOUT, "keepalive timeout", 0);
        }
    }
    mux_settle(m);
    mux_leave(m);
}

void mux_ka_start(struct tnl_mux *m)
{
    ev_timer_init(&m->ka_timer, ka_cb, m->cfg.keepalive_interval, m->cfg.keepalive_interval);
    m->ka_timer.data = m;
    ev_timer_init(&m->ping_timer, ping_timeout_cb, 1, 0);
    m->ping_timer.data = m;
    if (m->cfg.keepalive_interval > 0)
        ev_timer_start(tnl_ev, &m->ka_timer);
    mux_ping_send(m);
}

void mux_ka_stop(struct tnl_mux *m)
{
    ev_timer_stop(tnl_ev, &m->ka_timer);
    ev_timer_stop(tnl_ev, &m->ping_timer);
    m->ping_out = 0;
}

void mux_ping_send(struct tnl_mux *m)
{
    if (m->ping_out || m->ending)
        return;
    if (mux_out_frame(m, TNL_MUX_PING, TNL_MUX_SYN, 0, ++m->ping_id) < 0)
        return;
    m->ping_out = 1;
    m->ping_sent = mux_mono();
    m->ping_rx_mark = m->st.bytes_in;
    m->st.pings_sent++;
    if (timeout_armed(m)) {
        ev_timer_set(&m->ping_timer, m->cfg.keepalive_timeout, 0);
        ev_timer_start(tnl_ev, &m->ping_timer);
    }
}

/* A Ping ACK. One that answers nothing we sent is ignored. */
void mux_ping_ack(struct tnl_mux *m, uint32_t opaque)
{
    if (!m->ping_out || opaque != m->ping_id)
        return;
    m->ping_out = 0;
    ev_timer_stop(tnl_ev, &m->ping_timer);
    m->st.rtt = mux_mono() - m->ping_sent;
    m->ping_result = m->st.rtt;
    if (m->ping_waiters) {
        m->ping_done = 1;
        mux_schedule(m);
    }
}

/* Hand the result (or -1: the session ended) to every waiter; drop = 1
 * frees them without calling (tnl_mux_free). */
void mux_ping_finish(struct tnl_mux *m, int drop)
{
    struct mux_ping_waiter *w = m->ping_waiters;
    double rtt = m->ping_done ? m->ping_result : -1.0;
    m->ping_waiters = NULL;
    m->ping_done = 0;
    while (w) {
        struct mux_ping_waiter *next = w->next;
        if (!drop)
            w->cb(w->arg, rtt);
        free(w);
        w = next;
    }
}

int tnl_mux_ping(struct tnl_mux *m, void (*cb)(void *arg, double rtt_seconds), void *arg)
{
    struct mux_ping_waiter *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    w->cb = cb;
    w->arg = arg;
    w->next = m->ping_waiters;
    m->ping_waiters = w;
    mux_ping_send(m);
    mux_schedule(m);
    return 0;
}

/*
 * dispatch.c — tell owners what happened: new inbound streams (on_stream),
 * ping results, and stream readiness (level-triggered, like epoll: a stream
 * that is still ready after its callback is called again on the next loop
 * iteration, so one busy stream cannot monopolise a pass).
 *
 * Only entry points call mux_dispatch; every callback may close streams or
 * free the session (memory stays valid until mux_leave).
 */
#include "mux/mux_int.h"

void mux_pending_add(struct mux_stream *s)
{
    if (s->dead || s->closed || mux_linked(&s->pending))
        return;
    mux_list_add_tail(&s->m->pending, &s->pending);
    mux_schedule(s->m);
}

void mux_accept_streams(struct tnl_mux *m)
{
    while (!mux_list_empty(&m->accept)) {
        struct mux_stream *s = mux_container(m->accept.next, struct mux_stream, ctl);
        mux_list_del(&s->ctl);
        s->accepted = 1;
        m->cbs.on_stream(m, &s->io, m->arg);
        mux_pending_add(s);     /* data that came with the SYN */
    }
}

/* A stream whose owner wants to write and that only the session's full
 * queue holds back must be in line to be resumed, or nothing would wake it. */
void mux_wait_if_blocked(struct mux_stream *s)
{
    if ((s->io.events & TNL_IO_WRITE) && !s->werr && !s->fin_sent && s->scredit > 0 &&
        !(mux_stream_readiness(s) & TNL_IO_WRITE))
        mux_wait_add(s);
}

void mux_dispatch(struct tnl_mux *m)
{
    if (!mux_list_empty(&m->accept) && m->cbs.on_stream)
        mux_accept_streams(m);
    if (m->ping_waiters && !m->freed && (m->ping_done || m->ending))
        mux_ping_finish(m, 0);

    struct mux_link todo;
    mux_list_init(&todo);
    mux_list_splice_tail(&todo, &m->pending);
    while (!mux_list_empty(&todo)) {
        struct mux_stream *s = mux_container(todo.next, struct mux_stream, pending);
        mux_list_del(&s->pending);
        if (s->closed || !s->io.ready)
            continue;
        int ev = mux_stream_readiness(s) & s->io.events;
        if (ev)
            s->io.ready(&s->io, ev);
        if (s->closed)
            continue;
        if (mux_stream_readiness(s) & s->io.events)
            mux_pending_add(s);     /* next iteration */
        else
            mux_wait_if_blocked(s);
    }
}

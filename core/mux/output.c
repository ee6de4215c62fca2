/*
 * output.c — the session's outbound queue.
 *
 * Frames are encoded straight into pooled buffers (net buffer size, 128 KiB by
 * default); a frame never spans two buffers, so each buffer goes out with one
 * write and many small frames (window updates, pings, FINs) coalesce into one
 * system call. The queue is flushed before the loop sleeps (the tick), when
 * the transport turns writable, and early by a writer that filled a buffer.
 *
 * Backpressure: stream writes stop at MUX_OUT_HIGH queued bytes; those writers
 * wait in m->waiters, in order, and are resumed below MUX_OUT_LOW, each with a
 * quantum (MUX_QUANTUM) to spend before it queues up again behind the others —
 * so one stream with a 16 MiB window cannot starve the rest. Control frames
 * are never refused; reading from the peer stops at MUX_OUT_HARD, which bounds
 * what a peer that does not read can make us queue.
 */
#include <errno.h>
#include <string.h>

#include "mux/mux_int.h"

static struct tnl_buf *out_new(struct tnl_mux *m)
{
    struct tnl_buf *b = tnl_buf_get();
    if (!b)
        return NULL;
    b->next = NULL;
    if (m->out_tail)
        m->out_tail->next = b;
    else
        m->out_head = b;
    m->out_tail = b;
    return b;
}

/* Room for at least `min` and at most `want` bytes at the end of the queue;
 * *got says how much was reserved. NULL when out of memory. */
uint8_t *mux_out_reserve(struct tnl_mux *m, size_t want, size_t min, size_t *got)
{
    struct tnl_buf *b = m->out_tail;
    if (!b || b->cap - b->len < min) {
        b = out_new(m);
        if (!b)
            return NULL;
        if (b->cap < min) {     /* cannot happen with buffers >= 4 KiB */
            *got = 0;
            return NULL;
        }
    }
    size_t n = b->cap - b->len < want ? b->cap - b->len : want;
    uint8_t *p = b->data + b->len;
    b->len += n;
    m->out_bytes += n;
    *got = n;
    return p;
}

int mux_out_frame(struct tnl_mux *m, enum tnl_mux_type type, uint16_t flags, uint32_t id,
                  uint32_t length)
{
    size_t got;
    if (!m->transport)
        return -EPIPE;
    uint8_t *p = mux_out_reserve(m, TNL_MUX_HDR_LEN, TNL_MUX_HDR_LEN, &got);
    if (!p) {
        mux_fail(m, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    tnl_mux_frame_encode(p, type, flags, id, length);
    m->st.frames_out++;
    mux_schedule(m);
    return 0;
}

/* Write what the transport takes. 0 (all written, or it is full and
 * write_blocked is set) or the transport's -errno. Calls no callback. */
int mux_out_flush(struct tnl_mux *m)
{
    while (m->out_head && m->transport) {
        struct tnl_buf *b = m->out_head;
        size_t n = b->len - b->off;
        if (n) {
            ssize_t r = tnl_io_write(m->transport, b->data + b->off, n);
            if (r == -EAGAIN || r == 0) {
                m->write_blocked = 1;
                return 0;
            }
            if (r < 0)
                return (int)r;
            b->off += (size_t)r;
            m->out_bytes -= (size_t)r;
            m->st.bytes_out += (unsigned long long)r;
            if ((size_t)r < n) {        /* a short write: the socket buffer is full */
                m->write_blocked = 1;
                return 0;
            }
        }
        m->out_head = b->next;
        if (!m->out_head)
            m->out_tail = NULL;
        tnl_buf_put(b);
    }
    m->write_blocked = 0;
    return 0;
}

void mux_out_release(struct tnl_mux *m)
{
    while (m->out_head) {
        struct tnl_buf *b = m->out_head;
        m->out_head = b->next;
        tnl_buf_put(b);
    }
    m->out_tail = NULL;
    m->out_bytes = 0;
}

void mux_wait_add(struct mux_stream *s)
{
    if (mux_linked(&s->wait))
        return;
    s->granted = 0;
    mux_list_add_tail(&s->m->waiters, &s->wait);
    mux_schedule(s->m);
}

/* The queue went below the low-water mark: resume the waiting writers in the
 * order they blocked, each with a fresh quantum. */
void mux_grant_waiters(struct tnl_mux *m)
{
    while (!mux_list_empty(&m->waiters)) {
        struct mux_stream *s = mux_container(m->waiters.next, struct mux_stream, wait);
        mux_list_del(&s->wait);
        s->granted = 1;
        s->quota = MUX_QUANTUM;
        mux_pending_add(s);
    }
}

/* The flags a stream's next frame must carry to open (SYN) or accept (ACK) it. */
uint16_t mux_take_open_flags(struct mux_stream *s)
{
    uint16_t flags = 0;
    if (s->syn_pending) {
        s->syn_pending = 0;
        flags |= TNL_MUX_SYN;
    }
    if (s->ack_pending) {
        s->ack_pending = 0;
        s->m->nbacklog--;
        flags |= TNL_MUX_ACK;
    }
    if (flags && mux_linked(&s->ctl) && s->accepted)
        mux_list_del(&s->ctl);
    return flags;
}

/* A SYN or ACK that no data frame carried during this loop iteration goes
 * out on its own, as a WindowUpdate with delta 0. */
void mux_emit_ctl(struct tnl_mux *m)
{
    while (!mux_list_empty(&m->ctl)) {
        struct mux_stream *s = mux_container(m->ctl.next, struct mux_stream, ctl);
        mux_list_del(&s->ctl);
        uint16_t flags = mux_take_open_flags(s);
        if (flags && mux_out_frame(m, TNL_MUX_WINDOW_UPDATE, flags, s->id, 0) < 0)
            return;
    }
}

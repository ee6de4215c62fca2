/*
 * stream.c — a yamux stream as a tnl_io, and its life cycle.
 *
 * A stream is "in the table" while it is live on the wire: from its SYN until
 * both FINs, a RST either way, or the end of the session. Its memory lives
 * until its owner closes it (the session owns inbound streams not yet handed
 * to on_stream). A stream the owner closed before the peer's FIN stays in the
 * table, ownerless, until that FIN (or a RST); data arriving for it then is
 * answered with RST, as TCP answers data for a closed socket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mux/mux_int.h"

static const struct tnl_io_ops stream_ops;

static void stream_free(struct mux_stream *s)
{
    struct tnl_mux *m = s->m;
    mux_list_del(&s->pending);
    mux_list_del(&s->wait);
    mux_list_del(&s->ctl);
    mux_rq_clear(s);
    free(s);
    mux_unref(m);
}

/* Free now, or at the end of the running entry point (a dispatch loop may
 * still look at it). */
static void park_or_free(struct mux_stream *s)
{
    struct tnl_mux *m = s->m;
    if (s->dead)
        return;
    s->dead = 1;
    mux_list_del(&s->pending);
    mux_list_del(&s->wait);
    mux_list_del(&s->ctl);
    mux_rq_clear(s);
    if (m->depth)
        mux_list_add_tail(&m->graveyard, &s->pending);
    else
        stream_free(s);
}

void mux_reap(struct tnl_mux *m)
{
    m->refs++;      /* the last stream_free must not free m under us */
    while (!mux_list_empty(&m->graveyard)) {
        struct mux_stream *s = mux_container(m->graveyard.next, struct mux_stream, pending);
        stream_free(s);
    }
    m->refs--;
}

struct mux_stream *mux_stream_new(struct tnl_mux *m, uint32_t id, int inbound)
{
    struct mux_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->io.ops = &stream_ops;
    s->m = m;
    s->id = id;
    mux_list_init(&s->pending);
    mux_list_init(&s->wait);
    mux_list_init(&s->ctl);
    s->b_head = s->b_tail = -1;
    s->rwin = s->rcredit = s->scredit = TNL_MUX_INITIAL_WINDOW;
    s->epoch = tnl_now();
    if (mux_table_put(m, s) < 0) {
        free(s);
        return NULL;
    }
    m->refs++;
    s->inbound = inbound ? 1 : 0;
    if (inbound) {
        s->ack_pending = 1;
        m->nbacklog++;
        m->st.streams_inbound++;
    } else {
        s->syn_pending = 1;
        s->accepted = 1;
    }
    m->st.streams_opened++;
    return s;
}

/* Off the wire: no frame will be sent or accepted for it any more. */
void mux_stream_forget(struct mux_stream *s)
{
    struct tnl_mux *m = s->m;
    if (!s->in_table)
        return;
    mux_table_del(m, s);
    if (s->ack_pending) {
        s->ack_pending = 0;
        m->nbacklog--;
    }
    s->syn_pending = 0;
    mux_list_del(&s->ctl);
    mux_list_del(&s->wait);
    if (m->in_s == s)
        m->in_s = NULL;         /* the rest of its payload is discarded */
    if (!s->accepted)
        s->closed = 1;          /* never handed out: nobody else will close it */
    mux_schedule(m);            /* GoAway may be done now */
    if (s->closed)
        park_or_free(s);
}

/* Report an error to the owner through read and write. */
static void abort_stream(struct mux_stream *s, int rerr, int werr)
{
    int owned = s->accepted && !s->closed;
    mux_rq_clear(s);
    s->rerr = rerr;
    if (!s->werr)
        s->werr = werr;
    mux_stream_forget(s);
    if (owned)
        mux_pending_add(s);
}

/* The session ended: what was fully received stays readable. */
void mux_stream_kill(struct mux_stream *s, int err)
{
    if (s->fin_recv) {
        int owned = s->accepted && !s->closed;
        if (!s->werr && !s->fin_sent)
            s->werr = err;
        mux_stream_forget(s);
        if (owned)
            mux_pending_add(s);
        return;
    }
    abort_stream(s, err, err);
}

void mux_stream_peer_reset(struct mux_stream *s)
{
    abort_stream(s, -ECONNRESET, -ECONNRESET);
}

void mux_stream_peer_fin(struct mux_stream *s)
{
    if (s->fin_recv)
        return;
    s->fin_recv = 1;
    int owned = !s->closed;
    if (s->closed || s->fin_sent)
        mux_stream_forget(s);   /* both directions done; frees an ownerless one */
    if (owned)
        mux_pending_add(s);
}

void mux_stream_window(struct mux_stream *s, uint32_t delta)
{
    uint64_t c = (uint64_t)s->scredit + delta;
    s->scredit = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    if (delta && (s->io.events & TNL_IO_WRITE))
        mux_pending_add(s);
}

int mux_stream_readiness(const struct mux_stream *s)
{
    const struct tnl_mux *m = s->m;
    int ev = 0;
    if (s->rqueued || s->rerr || s->fin_recv)
        ev |= TNL_IO_READ;
    if (s->werr)
        ev |= TNL_IO_WRITE;
    else if (!s->fin_sent && s->scredit > 0 && m->out_bytes < MUX_OUT_HIGH &&
             (mux_list_empty(&m->waiters) || (s->granted && s->quota > 0)))
        ev |= TNL_IO_WRITE;
    return ev;
}

/* The owner's first use of an inbound stream accepts it: an ACK is due. */
static void touch(struct mux_stream *s)
{
    if (s->used)
        return;
    s->used = 1;
    if (s->ack_pending && s->in_table && !mux_linked(&s->ctl)) {
        mux_list_add_tail(&s->m->ctl, &s->ctl);
        mux_schedule(s->m);
    }
}

static ssize_t stream_read(struct tnl_io *io, void *buf, size_t n)
{
    struct mux_stream *s = (struct mux_stream *)io;
    touch(s);
    size_t got = mux_rq_read(s, buf, n);
    if (got) {
        mux_rq_consumed(s);
        return (ssize_t)got;
    }
    if (s->rerr)
        return s->rerr;
    if (s->fin_recv)
        return 0;
    return -EAGAIN;
}

/* Whether the stream may send now: 0, or what write must return. */
static int write_state(const struct mux_stream *s)
{
    if (s->werr)
        return s->werr;
    if (s->fin_sent)
        return -EPIPE;
    if (!s->m->transport)
        return -ECONNRESET;
    return 0;
}

/* How much of `want` (> 0) may go into the next Data frame: the peer's
 * window, the frame size, the session's queue and, while writers wait their
 * turn, this one's quota. 0: none now (the stream is put in line when the
 * queue is what holds it back; a WindowUpdate wakes it otherwise). */
static size_t may_queue(struct mux_stream *s, size_t want)
{
    struct tnl_mux *m = s->m;
    size_t chunk = want < s->scredit ? want : s->scredit;
    if (chunk > MUX_MAX_FRAME)
        chunk = MUX_MAX_FRAME;
    if (!chunk)
        return 0;
    if (m->out_bytes >= MUX_OUT_HIGH) {
        mux_wait_add(s);
        return 0;
    }
    if (!mux_list_empty(&m->waiters)) {     /* take turns */
        if (!s->granted || s->quota == 0) {
            mux_wait_add(s);
            return 0;
        }
        if (chunk > s->quota)
            chunk = s->quota;
    }
    return chunk;
}

/* n payload bytes of this stream were queued as one Data frame. */
static void queued(struct mux_stream *s, size_t n)
{
    struct tnl_mux *m = s->m;
    m->st.frames_out++;
    m->st.data_out += n;
    s->scredit -= (uint32_t)n;
    s->quota = s->quota > n ? s->quota - (uint32_t)n : 0;
}

/* After queueing: a full buffer goes out now rather than before the loop
 * sleeps. */
static void queued_done(struct tnl_mux *m)
{
    if (m->out_head != m->out_tail && !m->write_blocked) {
        int r = mux_out_flush(m);
        if (r < 0)
            mux_fail(m, r, "transport write failed");
    }
    mux_schedule(m);
}

/* One Data frame of up to `want` payload bytes; 0 when out of memory. */
static size_t put_data(struct mux_stream *s, const uint8_t *p, size_t want)
{
    struct tnl_mux *m = s->m;
    size_t got, min = TNL_MUX_HDR_LEN + (want < 1024 ? want : 1024);
    uint8_t *f = mux_out_reserve(m, TNL_MUX_HDR_LEN + want, min, &got);
    if (!f)
        return 0;
    size_t n = got - TNL_MUX_HDR_LEN;
    tnl_mux_frame_encode(f, TNL_MUX_DATA, mux_take_open_flags(s), s->id, (uint32_t)n);
    memcpy(f + TNL_MUX_HDR_LEN, p, n);
    queued(s, n);
    return n;
}

static ssize_t stream_write(struct tnl_io *io, const void *buf, size_t n)
{
    struct mux_stream *s = (struct mux_stream *)io;
    const uint8_t *p = buf;
    size_t done = 0;
    touch(s);
    int e = write_state(s);
    if (e)
        return e;
    while (done < n) {
        size_t chunk = may_queue(s, n - done);
        if (!chunk)
            break;
        size_t k = put_data(s, p + done, chunk);
        if (!k) {
            if (!done)
                return -ENOMEM;
            break;
        }
        done += k;
    }
    if (!done)
        return n ? -EAGAIN : 0;
    queued_done(s->m);
    return (ssize_t)done;
}

/* Read without the copy (net/io.h): the first runs of unread bytes. */
static ssize_t stream_peek(struct tnl_io *io, struct iovec *iov, int *n)
{
    struct mux_stream *s = (struct mux_stream *)io;
    touch(s);
    size_t got = mux_rq_peek(s, iov, n, MUX_PEEK_MAX);
    if (got)
        return (ssize_t)got;
    if (s->rerr)
        return s->rerr;
    if (s->fin_recv)
        return 0;
    return -EAGAIN;
}

static void stream_consume(struct tnl_io *io, size_t n)
{
    struct mux_stream *s = (struct mux_stream *)io;
    if (n && mux_rq_read(s, NULL, n))
        mux_rq_consumed(s);
}

/* Write without the copy (net/io.h): room for one Data frame's payload at
 * the tail of the session's queue; commit writes its header once the size
 * is known. */
static ssize_t stream_reserve(struct tnl_io *io, void **p, size_t n)
{
    struct mux_stream *s = (struct mux_stream *)io;
    struct tnl_mux *m = s->m;
    size_t got;
    touch(s);
    int e = write_state(s);
    if (e)
        return e;
    size_t chunk = n ? may_queue(s, n) : 0;
    if (!chunk)
        return n ? -EAGAIN : 0;
    size_t min = TNL_MUX_HDR_LEN + (chunk < 1024 ? chunk : 1024);
    uint8_t *f = mux_out_reserve(m, TNL_MUX_HDR_LEN + chunk, min, &got);
    if (!f)
        return -ENOMEM;
    m->resv = f;
    m->resv_len = got - TNL_MUX_HDR_LEN;
    *p = f + TNL_MUX_HDR_LEN;
    return (ssize_t)m->resv_len;
}

static void stream_commit(struct tnl_io *io, size_t n)
{
    struct mux_stream *s = (struct mux_stream *)io;
    struct tnl_mux *m = s->m;
    uint8_t *f = m->resv;
    if (!f)
        return;
    m->resv = NULL;
    if (n > m->resv_len)
        n = m->resv_len;
    /* Give back what was not used (the header too when nothing was): the
     * reservation is the very end of the queue's last buffer. */
    size_t unused = m->resv_len - n + (n ? 0 : TNL_MUX_HDR_LEN);
    m->out_tail->len -= unused;
    m->out_bytes -= unused;
    if (!n)
        return;
    tnl_mux_frame_encode(f, TNL_MUX_DATA, mux_take_open_flags(s), s->id, (uint32_t)n);
    queued(s, n);
    queued_done(m);
}

static int stream_shutdown(struct tnl_io *io)
{
    struct mux_stream *s = (struct mux_stream *)io;
    struct tnl_mux *m = s->m;
    touch(s);
    if (s->fin_sent)
        return 0;
    if (s->werr)
        return s->werr;
    uint16_t flags = mux_take_open_flags(s);
    if (mux_out_frame(m, TNL_MUX_WINDOW_UPDATE, flags | TNL_MUX_FIN, s->id, 0) < 0)
        return -ENOMEM;
    s->fin_sent = 1;
    mux_list_del(&s->wait);
    if (s->fin_recv)
        mux_stream_forget(s);
    return 0;
}

static void stream_want(struct tnl_io *io, int events)
{
    struct mux_stream *s = (struct mux_stream *)io;
    io->events = events;
    if (events)
        touch(s);
    if (events & mux_stream_readiness(s))
        mux_pending_add(s);
    else
        mux_wait_if_blocked(s);
}

static void stream_close(struct tnl_io *io, int abort)
{
    struct mux_stream *s = (struct mux_stream *)io;
    struct tnl_mux *m = s->m;
    if (s->closed)
        return;
    s->closed = 1;
    io->ready = NULL;
    io->events = 0;
    mux_list_del(&s->wait);
    if (!s->in_table) {
        park_or_free(s);
        return;
    }
    if (abort || s->rqueued || s->syn_pending) {
        /* A reset, unread data (TCP resets too), or a stream the peer never
         * heard of (nothing to say). forget() frees it. */
        if (!s->syn_pending)
            mux_out_frame(m, TNL_MUX_WINDOW_UPDATE, TNL_MUX_RST, s->id, 0);
        mux_stream_forget(s);
        return;
    }
    if (!s->fin_sent && !s->werr &&
        mux_out_frame(m, TNL_MUX_WINDOW_UPDATE, mux_take_open_flags(s) | TNL_MUX_FIN, s->id, 0) == 0)
        s->fin_sent = 1;
    if (s->fin_recv || !s->fin_sent)
        mux_stream_forget(s);
    /* else ownerless until the peer's FIN */
}

static const struct tnl_io_ops stream_ops = {
    .kind = "yamux",
    .read = stream_read,
    .write = stream_write,
    .shutdown = stream_shutdown,
    .want = stream_want,
    .close = stream_close,
    .peek = stream_peek,
    .consume = stream_consume,
    .reserve = stream_reserve,
    .commit = stream_commit,
};

uint32_t tnl_mux_stream_id(const struct tnl_io *io)
{
    return io && io->ops == &stream_ops ? ((const struct mux_stream *)io)->id : 0;
}

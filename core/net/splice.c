/*
 * splice.c — bidirectional copy with backpressure and half-close (see splice.h).
 */
#include "net/splice.h"

#include <errno.h>
#include <string.h>

#include "loop/loop.h"

/* Reads per readiness event and direction before yielding to other
 * connections: fairness without a syscall round-trip per buffer. */
enum { PUMP_ROUNDS = 4 };

/* Record the first failure; the done callback runs from settle(), the last
 * thing an entry point does, so that it may free the splice. */
static void fail(struct tnl_splice *s, int err, char side)
{
    if (s->finished)
        return;
    s->finished = 1;
    s->err = err;
    s->err_side = side;
}

static char side_of(struct tnl_splice *s, struct tnl_io *io)
{
    return io == s->a ? 'a' : 'b';
}

/* Write what is buffered. Returns 1 when the buffer was emptied, 0 when the
 * destination is full, -1 after fail(). */
static int flush(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    while (d->buf && tnl_buf_pending(d->buf) > 0) {
        ssize_t w = tnl_io_write(d->to, d->buf->data + d->buf->off, tnl_buf_pending(d->buf));
        if (w == -EAGAIN || w == 0)
            return 0;
        if (w < 0) {
            fail(s, (int)w, side_of(s, d->to));
            return -1;
        }
        d->buf->off += (size_t)w;
        d->bytes += (uint64_t)w;
        s->last_active = tnl_now();
    }
    tnl_buf_put(d->buf);
    d->buf = NULL;
    return 1;
}

/* Move bytes in one direction until it blocks; sets want_read / want_write. */
static void pump(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    d->want_read = d->want_write = 0;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        int f = flush(s, d);
        if (f < 0)
            return;
        if (f == 0) {
            d->want_write = 1;
            return;
        }
        if (d->eof) {
            if (!d->shut) {
                d->shut = 1;
                int r = d->to->ops->shutdown(d->to);
                if (r < 0 && r != -ENOTCONN) {
                    fail(s, r, side_of(s, d->to));
                    return;
                }
            }
            return;
        }
        d->buf = tnl_buf_get();
        if (!d->buf) {
            fail(s, -ENOMEM, side_of(s, d->from));
            return;
        }
        ssize_t r = tnl_io_read(d->from, d->buf->data, d->buf->cap);
        if (r == -EAGAIN) {
            tnl_buf_put(d->buf);
            d->buf = NULL;
            d->want_read = 1;
            return;
        }
        if (r < 0) {
            fail(s, (int)r, side_of(s, d->from));
            return;
        }
        if (r == 0)
            d->eof = 1;
        d->buf->len = (size_t)r;
    }
    /* Out of rounds with more to do: come back on the next readiness event
     * (level-triggered, so at once if the destination can take more). */
    if (d->buf && tnl_buf_pending(d->buf) > 0) {
        d->want_write = 1;
    } else if (d->eof) {
        tnl_buf_put(d->buf);
        d->buf = NULL;
        if (!d->shut) {
            d->shut = 1;
            int r = d->to->ops->shutdown(d->to);
            if (r < 0 && r != -ENOTCONN)
                fail(s, r, side_of(s, d->to));
        }
    } else {
        d->want_read = 1;
    }
}

/* The tail of every entry point: report the end, or wait for what is needed. */
static void settle(struct tnl_splice *s)
{
    if (!s->finished && s->ab.shut && s->ba.shut)
        s->finished = 1;
    if (s->finished) {
        tnl_io_want(s->a, 0);
        tnl_io_want(s->b, 0);
        if (!s->reported) {
            s->reported = 1;
            s->done(s, s->err, s->err_side);    /* may free s */
        }
        return;
    }
    tnl_io_want(s->a, (s->ab.want_read ? TNL_IO_READ : 0) | (s->ba.want_write ? TNL_IO_WRITE : 0));
    tnl_io_want(s->b, (s->ba.want_read ? TNL_IO_READ : 0) | (s->ab.want_write ? TNL_IO_WRITE : 0));
}

static void ready(struct tnl_io *io, int events)
{
    struct tnl_splice *s = io->owner;
    struct tnl_splice_dir *out = io == s->a ? &s->ab : &s->ba;   /* io is its source */
    struct tnl_splice_dir *in = io == s->a ? &s->ba : &s->ab;    /* io is its destination */
    if (s->finished)
        return;
    if (events & TNL_IO_WRITE)
        pump(s, in);
    if (!s->finished && (events & TNL_IO_READ))
        pump(s, out);
    settle(s);
}

void tnl_splice_start(struct tnl_splice *s, struct tnl_io *a, struct tnl_io *b,
                      struct tnl_buf *prefill, int a_eof, tnl_splice_done_fn done, void *owner)
{
    memset(s, 0, sizeof *s);
    s->a = a;
    s->b = b;
    s->done = done;
    s->owner = owner;
    s->ab.from = a;
    s->ab.to = b;
    s->ba.from = b;
    s->ba.to = a;
    s->ab.buf = prefill;
    s->ab.eof = a_eof ? 1 : 0;
    s->last_active = tnl_now();
    a->owner = s;
    b->owner = s;
    a->ready = ready;
    b->ready = ready;
    pump(s, &s->ab);
    if (!s->finished)
        pump(s, &s->ba);
    settle(s);
}

void tnl_splice_release(struct tnl_splice *s)
{
    tnl_buf_put(s->ab.buf);
    tnl_buf_put(s->ba.buf);
    s->ab.buf = s->ba.buf = NULL;
}

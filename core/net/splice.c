/*
 * splice.c — bidirectional copy with backpressure and half-close (see splice.h).
 */
#include "net/splice.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop.h"
#include "net/pipe.h"

/* Reads per readiness event and direction before yielding to other
 * connections: fairness without a syscall round-trip per buffer. */
enum { PUMP_ROUNDS = 4 };

/* Runs of a source's own buffer written with one call (move_peek): a mux
 * stream's runs are frames of up to 64 KiB. */
enum { PEEK_RUNS = 8 };

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

/* What a read from the source returned: 1 go on (bytes, or EOF: eof set),
 * 0 the source is empty (want_read set), -1 after fail(). */
static int read_result(struct tnl_splice *s, struct tnl_splice_dir *d, ssize_t r)
{
    if (r == -EAGAIN) {
        d->want_read = 1;
        return 0;
    }
    if (r < 0) {
        fail(s, (int)r, side_of(s, d->from));
        return -1;
    }
    if (r == 0)
        d->eof = 1;
    return 1;
}

/* What a write to the destination returned: 1 bytes went (counted), 0 the
 * destination is full (want_write set), -1 after fail(). */
static int write_result(struct tnl_splice *s, struct tnl_splice_dir *d, ssize_t w)
{
    if (w == -EAGAIN || w == 0) {
        d->want_write = 1;
        return 0;
    }
    if (w < 0) {
        fail(s, (int)w, side_of(s, d->to));
        return -1;
    }
    d->bytes += (uint64_t)w;
    s->last_active = tnl_now();
    return 1;
}

/* The source ended: pass the half-close on (once). When the other direction
 * has already ended both ways, the splice is over and the owner is about to
 * close both sockets: close() sends the FIN, so skip the shutdown call (only
 * for a plain socket, whose close has no other ending to do). */
static void shut_to(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    if (d->shut)
        return;
    d->shut = 1;
    struct tnl_splice_dir *other = d == &s->ab ? &s->ba : &s->ab;
    if (other->shut && tnl_io_fd(d->to) >= 0)
        return;
    int r = d->to->ops->shutdown(d->to);
    if (r < 0 && r != -ENOTCONN)
        fail(s, r, side_of(s, d->to));
}

/* Write what is buffered. Returns 1 when the buffer was emptied, 0 when the
 * destination is full, -1 after fail(). */
static int flush(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    while (d->buf && tnl_buf_pending(d->buf) > 0) {
        ssize_t w = tnl_io_write(d->to, d->buf->data + d->buf->off, tnl_buf_pending(d->buf));
        int k = write_result(s, d, w);
        if (k <= 0)
            return k;
        d->buf->off += (size_t)w;
    }
    tnl_buf_put(d->buf);
    d->buf = NULL;
    return 1;
}

/* A full buffer's read means bulk: between two sockets, move the rest with
 * splice(2) through a pipe (splice.h). Without one, go on copying. */
static void zc_start(struct tnl_splice_dir *d)
{
    if (d->zc || d->zc_off)
        return;
    if (tnl_io_fd(d->from) < 0 || tnl_io_fd(d->to) < 0 || tnl_pipe_get(d->pipe, &d->pipe_cap) < 0) {
        d->zc_off = 1;
        return;
    }
    d->zc = 1;
    d->piped = 0;
}

/* Write what the pipe holds. 1 when empty, 0 when the destination is full,
 * -1 after fail(). */
static int zc_flush(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    while (d->piped > 0) {
        ssize_t w = tnl_pipe_out(d->pipe[0], tnl_io_fd(d->to), d->piped);
        int k = write_result(s, d, w);
        if (k <= 0)
            return k;
        d->piped -= (size_t)w;
    }
    return 1;
}

/* One splice from the source into the (empty) pipe: as fill. */
static int zc_fill(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    ssize_t r = tnl_pipe_in(tnl_io_fd(d->from), d->pipe[1], d->pipe_cap);
    int k = read_result(s, d, r);
    if (k > 0 && r > 0) {
        d->piped = (size_t)r;
        d->drained = (size_t)r < d->pipe_cap;
    }
    return k;
}

/* One read from the source into a fresh copy buffer. 1: go on (bytes or
 * EOF), 0: the source is empty (want_read set), -1 after fail(). */
static int fill(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    d->buf = tnl_buf_get();
    if (!d->buf) {
        fail(s, -ENOMEM, side_of(s, d->from));
        return -1;
    }
    ssize_t r = tnl_io_read(d->from, d->buf->data, d->buf->cap);
    int k = read_result(s, d, r);
    if (k == 0) {
        tnl_buf_put(d->buf);
        d->buf = NULL;
    } else if (k > 0) {
        d->buf->len = (size_t)r;
        d->drained = r > 0 && (size_t)r < d->buf->cap;
        if ((size_t)r == d->buf->cap) {
            d->bulk = 1;
            zc_start(d);
        }
    }
    return k;
}

/* From a source that keeps its own buffer (a mux stream): write its bytes
 * from where they are, several runs (frames) per system call, and drop what
 * the destination took. 1: go on, 0: wait (want set), -1 after fail(). */
static int move_peek(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    struct iovec iov[PEEK_RUNS];
    int n = PEEK_RUNS;
    ssize_t r = d->from->ops->peek(d->from, iov, &n);
    int k = read_result(s, d, r);
    if (k <= 0 || r == 0)
        return k;
    ssize_t w = tnl_io_writev(d->to, iov, n);
    k = write_result(s, d, w);
    if (k <= 0)
        return k;
    d->from->ops->consume(d->from, (size_t)w);
    if (w < r) {
        d->want_write = 1;
        return 0;
    }
    return 1;
}

/* Into a destination that keeps its own buffer (a mux stream): read the
 * source straight into the room it reserved. Only a socket source: its read
 * cannot touch the destination's output queue (net/io.h). */
static int move_reserve(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    void *p;
    ssize_t room = d->to->ops->reserve(d->to, &p, tnl_buf_size());
    if (room <= 0)
        return write_result(s, d, room);   /* 0 or -EAGAIN: full; else broken */
    ssize_t r = tnl_io_read(d->from, p, (size_t)room);
    d->to->ops->commit(d->to, r > 0 ? (size_t)r : 0);
    int k = read_result(s, d, r);
    if (k > 0 && r > 0) {
        d->bytes += (uint64_t)r;
        s->last_active = tnl_now();
        d->drained = r < room;
    }
    return k;
}

/* Move bytes in one direction until it blocks; sets want_read / want_write.
 * A buffer in flight (the prefill, or what the destination did not take) is
 * written first; then bytes move without a copy buffer when an end keeps its
 * own (peek, reserve), else through one. */
static void pump(struct tnl_splice *s, struct tnl_splice_dir *d)
{
    d->want_read = d->want_write = 0;
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        if (flush(s, d) <= 0 || zc_flush(s, d) <= 0)
            return;
        if (d->eof) {
            shut_to(s, d);
            return;
        }
        if (d->drained) {
            d->drained = 0;
            d->want_read = 1;
            return;
        }
        int r = d->from->ops->peek ? move_peek(s, d)
              : d->to->ops->reserve && tnl_io_fd(d->from) >= 0 ? move_reserve(s, d)
              : d->zc ? zc_fill(s, d)
              : fill(s, d);
        if (r <= 0)
            return;
    }
    /* Out of rounds with more to do: come back on the next readiness event
     * (level-triggered, so at once if the destination can take more). */
    if ((d->buf && tnl_buf_pending(d->buf) > 0) || d->piped > 0) {
        d->want_write = 1;
    } else if (d->eof) {
        tnl_buf_put(d->buf);
        d->buf = NULL;
        shut_to(s, d);
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

static void init(struct tnl_splice *s, struct tnl_io *a, struct tnl_io *b, tnl_splice_done_fn done, void *owner)
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
    /* Nothing to read yet that readiness will not announce (splice.h); a
     * stream's buffered bytes cost no system call to look at. */
    s->ab.drained = !a->ops->peek;
    s->ba.drained = !b->ops->peek;
    s->last_active = tnl_now();
    a->owner = s;
    b->owner = s;
    a->ready = ready;
    b->ready = ready;
}

static void go(struct tnl_splice *s)
{
    pump(s, &s->ab);
    if (!s->finished)
        pump(s, &s->ba);
    settle(s);
}

void tnl_splice_start(struct tnl_splice *s, struct tnl_io *a, struct tnl_io *b,
                      struct tnl_buf *prefill, int a_eof, tnl_splice_done_fn done, void *owner)
{
    init(s, a, b, done, owner);
    s->ab.buf = prefill;
    s->ab.eof = a_eof ? 1 : 0;
    go(s);
}

void tnl_splice_resume(struct tnl_splice *s, struct tnl_io *a, struct tnl_io *b,
                       const struct tnl_splice_pipe carry[2], tnl_splice_done_fn done, void *owner)
{
    init(s, a, b, done, owner);
    struct tnl_splice_dir *dirs[2] = { &s->ab, &s->ba };
    for (int i = 0; i < 2; i++) {
        if (carry[i].fd[0] < 0)
            continue;
        struct tnl_splice_dir *d = dirs[i];
        d->bulk = d->zc = 1;
        d->pipe[0] = carry[i].fd[0];
        d->pipe[1] = carry[i].fd[1];
        d->pipe_cap = carry[i].cap;
        d->piped = carry[i].piped;
    }
    go(s);
}

void tnl_splice_carry(const struct tnl_splice *s, struct tnl_splice_pipe carry[2])
{
    const struct tnl_splice_dir *dirs[2] = { &s->ab, &s->ba };
    for (int i = 0; i < 2; i++) {
        const struct tnl_splice_dir *d = dirs[i];
        carry[i].fd[0] = d->zc ? d->pipe[0] : -1;
        carry[i].fd[1] = d->zc ? d->pipe[1] : -1;
        carry[i].cap = d->zc ? d->pipe_cap : 0;
        carry[i].piped = d->zc ? d->piped : 0;
    }
}

void tnl_splice_drop_pipes(struct tnl_splice *s)
{
    struct tnl_splice_dir *dirs[2] = { &s->ab, &s->ba };
    for (int i = 0; i < 2; i++) {
        if (!dirs[i]->zc)
            continue;
        close(dirs[i]->pipe[0]);
        close(dirs[i]->pipe[1]);
        dirs[i]->zc = 0;
        dirs[i]->piped = 0;
    }
}

static void release_dir(struct tnl_splice_dir *d)
{
    tnl_buf_put(d->buf);
    d->buf = NULL;
    if (d->zc)
        tnl_pipe_put(d->pipe, d->piped);
    d->zc = 0;
    d->piped = 0;
}

void tnl_splice_release(struct tnl_splice *s)
{
    release_dir(&s->ab);
    release_dir(&s->ba);
}

/*
 * io_shaped.c — a tnl_io that reads through shapers (limit/shaper.h).
 *
 * It wraps another io: writes, shutdown and close pass through; a read is cut
 * to what every shaper allows, and when one allows nothing the wrapper stops
 * watching the inner io for reading and sets a timer for when tokens will be
 * there. The sender is paused (TCP flow control does the rest); nothing is
 * closed or dropped.
 */
#include "net/io_shaped.h"

#include <errno.h>
#include <stdlib.h>

#include "limit/shaper.h"
#include "loop/loop.h"

enum { SHAPERS_MAX = 3 };

struct io_shaped {
    struct tnl_io io;
    struct tnl_io *inner;               /* owned */
    struct tnl_shaper *sh[SHAPERS_MAX]; /* referenced */
    int nsh;
    ev_timer wake;
    int blocked;                        /* waiting for tokens */
};

static void apply_want(struct io_shaped *s)
{
    int ev = s->io.events;
    if (s->blocked)
        ev &= ~TNL_IO_READ;
    tnl_io_want(s->inner, ev);
}

/* Pause (on) or resume reading; the shapers know how many readers wait. */
static void set_blocked(struct io_shaped *s, int on)
{
    if (s->blocked == on)
        return;
    s->blocked = on;
    for (int i = 0; i < s->nsh; i++)
        tnl_shaper_wait(s->sh[i], on);
}

static void pause_for(struct io_shaped *s, double seconds)
{
    set_blocked(s, 1);
    apply_want(s);
    ev_timer_stop(tnl_ev, &s->wake);
    ev_timer_set(&s->wake, seconds, 0);
    ev_timer_start(tnl_ev, &s->wake);
}

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct io_shaped *s = w->data;
    set_blocked(s, 0);
    apply_want(s);
    if ((s->io.events & TNL_IO_READ) && s->io.ready)
        s->io.ready(&s->io, TNL_IO_READ);       /* tokens are back: try again */
}

static void inner_ready(struct tnl_io *inner, int events)
{
    struct io_shaped *s = inner->owner;
    if (s->blocked)
        events &= ~TNL_IO_READ;
    if (events && s->io.ready)
        s->io.ready(&s->io, events);
}

static ssize_t shaped_read(struct tnl_io *io, void *buf, size_t n)
{
    struct io_shaped *s = (struct io_shaped *)io;
    double wait = 0, longest = 0;
    size_t allow = n;
    /* Paused: the timer says when to try again (reading now would jump the
     * queue of the readers that wait with us). */
    if (s->blocked)
        return -EAGAIN;
    for (int i = 0; i < s->nsh; i++) {
        size_t a = tnl_shaper_allow(s->sh[i], allow, tnl_now(), &wait);
        if (a < allow)
            allow = a;
        if (wait > longest)
            longest = wait;
    }
    if (allow == 0) {
        pause_for(s, longest);
        return -EAGAIN;
    }
    /* Others wait on one of our limits: after this read, our turn is over
     * and we queue up behind them. */
    double turn = 0;
    for (int i = 0; i < s->nsh; i++)
        if (s->sh[i]->waiting > 0 && tnl_shaper_turn(s->sh[i]) > turn)
            turn = tnl_shaper_turn(s->sh[i]);
    ssize_t r = tnl_io_read(s->inner, buf, allow);
    if (r > 0) {
        for (int i = 0; i < s->nsh; i++)
            tnl_shaper_consume(s->sh[i], (size_t)r);
        /* The bucket, not the source, cut this read short: it is empty now.
         * Wait for a chunk instead of coming back at once (a level-triggered
         * source is still readable) for the few bytes that trickle in. */
        if (allow < n && (size_t)r == allow)
            for (int i = 0; i < s->nsh; i++)
                if (tnl_shaper_refill(s->sh[i]) > turn)
                    turn = tnl_shaper_refill(s->sh[i]);
        if (turn > 0)
            pause_for(s, turn);
    }
    return r;
}

static ssize_t shaped_write(struct tnl_io *io, const void *buf, size_t n)
{
    return tnl_io_write(((struct io_shaped *)io)->inner, buf, n);
}

static int shaped_shutdown(struct tnl_io *io)
{
    struct io_shaped *s = (struct io_shaped *)io;
    return s->inner->ops->shutdown(s->inner);
}

static void shaped_want(struct tnl_io *io, int events)
{
    io->events = events;
    apply_want((struct io_shaped *)io);
}

static void shaped_close(struct tnl_io *io, int abort)
{
    struct io_shaped *s = (struct io_shaped *)io;
    ev_timer_stop(tnl_ev, &s->wake);
    set_blocked(s, 0);
    tnl_io_close(s->inner, abort);
    for (int i = 0; i < s->nsh; i++)
        tnl_shaper_unref(s->sh[i]);
    free(s);
}

static const struct tnl_io_ops shaped_ops = {
    .kind = "shaped",
    .read = shaped_read,
    .write = shaped_write,
    .shutdown = shaped_shutdown,
    .want = shaped_want,
    .close = shaped_close,
};

struct tnl_io *tnl_io_shaped_new(struct tnl_io *inner, struct tnl_shaper *const *shapers, int n)
{
    struct io_shaped *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->io.ops = &shaped_ops;
    s->io.events = inner->events;
    s->inner = inner;
    inner->owner = s;
    inner->ready = inner_ready;
    for (int i = 0; i < n && s->nsh < SHAPERS_MAX; i++) {
        if (!shapers[i])
            continue;
        tnl_shaper_ref(shapers[i]);
        s->sh[s->nsh++] = shapers[i];
    }
    ev_init(&s->wake, wake_cb);
    s->wake.data = s;
    return &s->io;
}

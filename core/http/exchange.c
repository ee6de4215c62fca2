/*
 * exchange.c — one request, one response, then close (see exchange.h).
 */
#include "http/exchange.h"

#include <errno.h>
#include <stdlib.h>
#include <sodium.h>

void tnl_http_exchange_free(struct tnl_http_exchange *x)
{
    ev_timer_stop(tnl_ev, &x->timer);
    if (x->io)
        tnl_io_close(x->io, 0);
    free(x->out);
    sodium_memzero(x->buf, x->len);     /* tokens pass through here */
    if (x->cbs->done)
        x->cbs->done(x);
    free(x);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_http_exchange *x = w->data;
    if (x->cbs->timeout)
        x->cbs->timeout(x);
    tnl_http_exchange_free(x);
}

struct tnl_http_exchange *tnl_http_exchange_new(size_t buf_max, double timeout, const struct sockaddr *peer,
                                                const struct tnl_http_exchange_cbs *cbs, void *owner)
{
    struct tnl_http_exchange *x = calloc(1, sizeof *x + buf_max);
    if (!x)
        return NULL;
    x->cap = buf_max;
    x->cbs = cbs;
    x->owner = owner;
    tnl_addr_format(peer, x->src, sizeof x->src);
    ev_timer_init(&x->timer, timeout_cb, timeout, 0);
    x->timer.data = x;
    ev_timer_start(tnl_ev, &x->timer);
    return x;
}

void tnl_http_exchange_attach(struct tnl_http_exchange *x, struct tnl_io *io)
{
    x->io = io;
    io->owner = x;
}

static void write_ready(struct tnl_io *io, int events)
{
    (void)events;
    struct tnl_http_exchange *x = io->owner;
    while (x->out_off < x->out_len) {
        ssize_t w = tnl_io_write(io, x->out + x->out_off, x->out_len - x->out_off);
        if (w == -EAGAIN)
            return;
        if (w <= 0)
            break;
        x->out_off += (size_t)w;
    }
    io->ops->shutdown(io);
    tnl_http_exchange_free(x);
}

static void read_ready(struct tnl_io *io, int events)
{
    (void)events;
    struct tnl_http_exchange *x = io->owner;
    ssize_t r = tnl_io_read(io, x->buf + x->len, x->cap - x->len);
    if (r == -EAGAIN)
        return;
    if (r <= 0) {
        tnl_http_exchange_free(x);
        return;
    }
    x->len += (size_t)r;
    x->cbs->data(x, x->buf, x->len, x->len == x->cap);
}

void tnl_http_exchange_read(struct tnl_http_exchange *x)
{
    x->io->ready = read_ready;
    tnl_io_want(x->io, TNL_IO_READ);
}

void tnl_http_exchange_send(struct tnl_http_exchange *x, char *out, size_t len)
{
    ev_timer_stop(tnl_ev, &x->timer);
    free(x->out);
    x->out = out;
    x->out_len = out ? len : 0;
    x->out_off = 0;
    if (!x->out_len || !x->io) {
        tnl_http_exchange_free(x);
        return;
    }
    x->io->ready = write_ready;
    tnl_io_want(x->io, TNL_IO_WRITE);
}

/*
 * connect.c — outbound connect with resolution and a deadline (see connect.h).
 */
#include "net/connect.h"
#include "util/str.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/sock.h"

static void deferred_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void finish(struct tnl_connect *c, int fd, const char *err)
{
    if (c->starting) {
        /* A failure inside tnl_connect_start: report it on the next loop turn,
         * so that done never runs before start has returned. */
        ev_timer_stop(tnl_ev, &c->deadline);
        ev_timer_init(&c->deadline, deferred_cb, 0, 0);
        c->deadline.data = c;
        ev_timer_start(tnl_ev, &c->deadline);
        return;
    }
    c->active = 0;
    ev_io_stop(tnl_ev, &c->w);
    ev_timer_stop(tnl_ev, &c->deadline);
    c->fd = -1;
    c->done(c, fd, err);
}

static void try_next(struct tnl_connect *c);

/* The early bytes on a connect in progress: 1 sent (some or all: the
 * connection is up), 0 not yet (no early bytes, or the handshake is still on:
 * wait for writability), -errno the connect failed. */
static int send_early(struct tnl_connect *c)
{
    if (!c->early_len)
        return 0;
    ssize_t r;
    do {
        r = send(c->fd, c->early, c->early_len, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        c->early_sent = (size_t)r;
        return 1;
    }
    if (r == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)
        return 0;
    return -errno;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_connect *c = w->data;
    int rc = c->early_sent ? 0 : tnl_sock_connect_result(c->fd);
    ev_io_stop(tnl_ev, &c->w);
    if (rc == 0) {
        finish(c, c->fd, NULL);
        return;
    }
    snprintf(c->err, sizeof c->err, "connect to %s: %s", c->target, strerror(-rc));
    close(c->fd);
    c->fd = -1;
    try_next(c);
}

static void try_next(struct tnl_connect *c)
{
    while (c->next < c->naddrs) {
        const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[c->next++];
        int fd = tnl_sock_connect(sa, tnl_addr_len(sa));
        if (fd < 0) {
            snprintf(c->err, sizeof c->err, "connect to %s: %s", c->target, strerror(-fd));
            continue;
        }
        c->fd = fd;
        int rc = send_early(c);
        if (rc > 0) {
            /* Up already: done runs from the loop's pending queue, without
             * the socket ever being watched for writability. */
            ev_io_set(&c->w, fd, EV_WRITE);
            ev_feed_event(tnl_ev, &c->w, EV_WRITE);
            return;
        }
        if (rc == 0) {
            ev_io_set(&c->w, fd, EV_WRITE);
            ev_io_start(tnl_ev, &c->w);
            return;
        }
        snprintf(c->err, sizeof c->err, "connect to %s: %s", c->target, strerror(-rc));
        close(fd);
        c->fd = -1;
    }
    finish(c, -1, c->err);
}

static void resolved(void *arg, const struct sockaddr_storage *addrs, int n, const char *errmsg)
{
    struct tnl_connect *c = arg;
    c->res = NULL;
    if (n == 0) {
        tnl_strlcpy(c->err, errmsg, sizeof c->err);
        finish(c, -1, c->err);
        return;
    }
    memcpy(c->addrs, addrs, (size_t)n * sizeof addrs[0]);
    c->naddrs = n;
    try_next(c);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_connect *c = w->data;
    if (c->res) {
        tnl_resolve_cancel(c->res);
        c->res = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    snprintf(c->err, sizeof c->err, "connect to %s: timed out", c->target);
    finish(c, -1, c->err);
}

static void deferred_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_connect *c = w->data;
    finish(c, -1, c->err);
}

void tnl_connect_start(struct tnl_connect *c, const struct tnl_hostport *hp, double timeout,
                       const void *early, size_t early_len, tnl_connect_fn done, void *owner)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->early = early;
    c->early_len = early ? early_len : 0;
    c->done = done;
    c->owner = owner;
    c->active = 1;
    tnl_hostport_format(hp, c->target, sizeof c->target);
    ev_init(&c->w, io_cb);
    c->w.data = c;
    ev_timer_init(&c->deadline, deadline_cb, timeout, 0);
    c->deadline.data = c;
    ev_timer_start(tnl_ev, &c->deadline);
    if (tnl_addr_numeric(hp->host, hp->port, &ss, &len) == 0) {
        c->addrs[0] = ss;
        c->naddrs = 1;
        c->starting = 1;
        try_next(c);
        c->starting = 0;
        return;
    }
    c->res = tnl_resolve_start(hp->host, hp->port, resolved, c);
    if (!c->res) {
        snprintf(c->err, sizeof c->err, "resolve %s: out of memory", c->target);
        c->starting = 1;
        finish(c, -1, c->err);
        c->starting = 0;
    }
}

void tnl_connect_cancel(struct tnl_connect *c)
{
    if (!c->active)
        return;
    c->active = 0;
    if (c->res)
        tnl_resolve_cancel(c->res);
    c->res = NULL;
    ev_io_stop(tnl_ev, &c->w);
    ev_timer_stop(tnl_ev, &c->deadline);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

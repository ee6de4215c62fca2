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

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_connect *c = w->data;
    int rc = tnl_sock_connect_result(c->fd);
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
        ev_io_set(&c->w, fd, EV_WRITE);
        ev_io_start(tnl_ev, &c->w);
        return;
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
                       tnl_connect_fn done, void *owner)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->done = done;
    c->owner = owner;
    c->active = 1;
    snprintf(c->target, sizeof c->target, hp->bracketed ? "[%s]:%u" : "%s:%u", hp->host, hp->port);
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

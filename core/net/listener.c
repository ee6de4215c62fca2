/*
 * listener.c — accept loop (see listener.h).
 */
#include "net/listener.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "net/sock.h"
#include "util/log.h"

/* Accepts per readiness event: enough to empty a burst, few enough that one
 * busy listener does not starve established connections. */
enum { ACCEPT_BATCH = 64 };

static void backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_listener *l = w->data;
    if (l->fd >= 0)
        ev_io_start(tnl_ev, &l->w);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_listener *l = w->data;
    for (int i = 0; i < ACCEPT_BATCH && l->fd >= 0; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                tnl_logf(TNL_LOG_ERROR, "accept_error", "%s: %s; pausing accepts for 100 ms",
                         l->addr_str, strerror(errno));
                ev_io_stop(tnl_ev, &l->w);
                ev_timer_stop(tnl_ev, &l->backoff);
                ev_timer_set(&l->backoff, 0.1, 0);
                ev_timer_start(tnl_ev, &l->backoff);
            }
            return;
        }
        l->accepted++;          /* TCP_NODELAY: inherited from l->fd */
        l->on_accept(l, fd, (struct sockaddr *)&peer, plen);
    }
}

int tnl_listener_open(struct tnl_listener *l, const struct sockaddr *sa, socklen_t len,
                      tnl_accept_fn on_accept, void *owner)
{
    memset(l, 0, sizeof *l);
    int fd = tnl_sock_listen(sa, len);
    if (fd < 0) {
        l->fd = -1;
        return fd;
    }
    l->fd = fd;
    l->addrlen = sizeof l->addr;
    getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen);
    tnl_addr_format((struct sockaddr *)&l->addr, l->addr_str, sizeof l->addr_str);
    l->on_accept = on_accept;
    l->owner = owner;
    ev_io_init(&l->w, accept_cb, fd, EV_READ);
    l->w.data = l;
    ev_timer_init(&l->backoff, backoff_cb, 0.1, 0);
    l->backoff.data = l;
    ev_io_start(tnl_ev, &l->w);
    return 0;
}

void tnl_listener_pause(struct tnl_listener *l)
{
    ev_io_stop(tnl_ev, &l->w);
    ev_timer_stop(tnl_ev, &l->backoff);
}

void tnl_listener_resume(struct tnl_listener *l)
{
    if (l->fd >= 0)
        ev_io_start(tnl_ev, &l->w);
}

void tnl_listener_close(struct tnl_listener *l)
{
    tnl_listener_pause(l);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

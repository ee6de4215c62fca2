/*
 * io_fd.c — tnl_io over a non-blocking socket, driven by one libev watcher.
 */
#include "net/io.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop.h"
#include "loop/readyq.h"

struct io_fd {
    struct tnl_io io;
    int fd;
    ev_io w;
    struct tnl_readyq_item rq;          /* readiness waiting for its turn */
};

/* The socket's turn in the ready queue (loop/readyq.h): what it still wants
 * of what the poll reported. */
static void fd_run(struct tnl_readyq_item *it, int events)
{
    struct io_fd *f = (struct io_fd *)((char *)it - offsetof(struct io_fd, rq));
    events &= f->io.events;
    if (events && f->io.ready)
        f->io.ready(&f->io, events);
}

static void fd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct io_fd *f = w->data;
    tnl_readyq_push(&f->rq, (revents & EV_READ ? TNL_IO_READ : 0) | (revents & EV_WRITE ? TNL_IO_WRITE : 0));
}

static const struct tnl_io_ops fd_ops;

void tnl_io_fd_presume(struct tnl_io *io, int events)
{
    if (io->ops == &fd_ops)
        tnl_readyq_presume(&((struct io_fd *)io)->rq, events);
}

static ssize_t fd_read(struct tnl_io *io, void *buf, size_t n)
{
    struct io_fd *f = (struct io_fd *)io;
    ssize_t r;
    do {
        r = recv(f->fd, buf, n, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

static ssize_t fd_write(struct tnl_io *io, const void *buf, size_t n)
{
    struct io_fd *f = (struct io_fd *)io;
    ssize_t r;
    do {
        r = send(f->fd, buf, n, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

static ssize_t fd_writev(struct tnl_io *io, const struct iovec *iov, int n)
{
    struct io_fd *f = (struct io_fd *)io;
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    ssize_t r;
    do {
        r = sendmsg(f->fd, &mh, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

static int fd_shutdown(struct tnl_io *io)
{
    struct io_fd *f = (struct io_fd *)io;
    return shutdown(f->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void fd_want(struct tnl_io *io, int events)
{
    struct io_fd *f = (struct io_fd *)io;
    int ev = (events & TNL_IO_READ ? EV_READ : 0) | (events & TNL_IO_WRITE ? EV_WRITE : 0);
    io->events = events;
    if (ev_is_active(&f->w)) {
        if (f->w.events == ev)
            return;
        ev_io_stop(tnl_ev, &f->w);
    }
    if (ev) {
        /* The fd is the one ev_io_init gave: modify, not set, so that libev
         * does not re-register it with the kernel on every change of mind. */
        ev_io_modify(&f->w, ev);
        ev_io_start(tnl_ev, &f->w);
    }
}

static void fd_close(struct tnl_io *io, int abort)
{
    struct io_fd *f = (struct io_fd *)io;
    ev_io_stop(tnl_ev, &f->w);
    tnl_readyq_remove(&f->rq);
    if (abort) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(f->fd);
    free(f);
}

static const struct tnl_io_ops fd_ops = {
    .kind = "tcp",
    .read = fd_read,
    .write = fd_write,
    .writev = fd_writev,
    .shutdown = fd_shutdown,
    .want = fd_want,
    .close = fd_close,
};

struct tnl_io *tnl_io_fd_new(int fd)
{
    struct io_fd *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return NULL;
    }
    f->io.ops = &fd_ops;
    f->fd = fd;
    ev_io_init(&f->w, fd_cb, fd, EV_READ);
    f->w.data = f;
    tnl_readyq_init(&f->rq, fd_run);
    return &f->io;
}

int tnl_io_fd(const struct tnl_io *io)
{
    return io->ops == &fd_ops ? ((const struct io_fd *)io)->fd : -1;
}

int tnl_io_fd_detach(struct tnl_io *io)
{
    struct io_fd *f = (struct io_fd *)io;
    int fd = f->fd;
    ev_io_stop(tnl_ev, &f->w);
    tnl_readyq_remove(&f->rq);
    /* libev leaves a stopped fd registered until it is closed; here it will
     * not be closed everywhere, so take it out now (ENOENT: never added). */
    if (tnl_loop_fd() >= 0)
        (void)epoll_ctl(tnl_loop_fd(), EPOLL_CTL_DEL, fd, NULL);
    free(f);
    return fd;
}

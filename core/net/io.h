/*
 * io.h — a byte-stream endpoint: a TCP socket, a TLS session over one, or a
 * multiplexed stream. The splice moves bytes between two of them without
 * knowing which kind either is.
 *
 * Contract
 *   read/write never block. They return a count, 0 (read: end of stream), or a
 *   negative errno: -EAGAIN means "nothing now, wait for ready()", anything
 *   else means the endpoint is broken.
 *   want(events) replaces the set of readiness events the owner waits for;
 *   ready(io, events) is then called (possibly repeatedly, level-triggered)
 *   while any of them holds.
 *   close(io, abort): abort = 1 resets the peer (TCP RST, yamux RST) instead of
 *   an orderly end. After close the io must not be used; it frees itself.
 *
 * Without the copy (optional: NULL where the endpoint keeps no buffer of its
 * own; a mux stream has all four)
 *   peek(io, iov, &n) is a read that leaves the bytes where they are: up to n
 *   runs of them in iov[], n set to how many; the total (> 0), 0 (end of
 *   stream), -EAGAIN or -errno is what read would return. consume(io, k)
 *   then drops the first k bytes (k <= the total). Between the two the owner
 *   may write to other endpoints, but must not read from, write to, or close
 *   this one.
 *   reserve(io, &p, n) is a write that lets the owner fill the endpoint's own
 *   output: room for up to n bytes at *p, the count, or -EAGAIN / -errno as
 *   write would return. commit(io, k) then sends the first k bytes put there
 *   (0 cancels). Between the two nothing may be called on io, nor on anything
 *   that shares its output (another stream of the same session): read only
 *   from an endpoint that stands alone, a socket.
 *   writev(io, iov, n) is write over several runs at once (a socket: one
 *   system call); without it tnl_io_writev writes the runs one by one.
 */
#ifndef TNL_IO_H
#define TNL_IO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

enum { TNL_IO_READ = 1, TNL_IO_WRITE = 2 };

struct tnl_io;

struct tnl_io_ops {
    const char *kind;
    ssize_t (*read)(struct tnl_io *io, void *buf, size_t n);
    ssize_t (*write)(struct tnl_io *io, const void *buf, size_t n);
    int (*shutdown)(struct tnl_io *io);
    void (*want)(struct tnl_io *io, int events);
    void (*close)(struct tnl_io *io, int abort);
    /* Optional: why the last read or write failed, in words (a TLS alert
     * from the peer, say), or NULL when the errno says it all. */
    const char *(*error)(struct tnl_io *io);
    ssize_t (*peek)(struct tnl_io *io, struct iovec *iov, int *n);
    void (*consume)(struct tnl_io *io, size_t n);
    ssize_t (*reserve)(struct tnl_io *io, void **p, size_t n);
    void (*commit)(struct tnl_io *io, size_t n);
    ssize_t (*writev)(struct tnl_io *io, const struct iovec *iov, int n);
};

struct tnl_io {
    const struct tnl_io_ops *ops;
    void (*ready)(struct tnl_io *io, int events);
    void *owner;
    int events;                 /* what want() last asked for */
};

static inline ssize_t tnl_io_read(struct tnl_io *io, void *buf, size_t n)
{
    return io->ops->read(io, buf, n);
}

static inline ssize_t tnl_io_write(struct tnl_io *io, const void *buf, size_t n)
{
    return io->ops->write(io, buf, n);
}

/* Write n runs: a count (possibly short), -EAGAIN or -errno, as write. */
static inline ssize_t tnl_io_writev(struct tnl_io *io, const struct iovec *iov, int n)
{
    if (io->ops->writev)
        return io->ops->writev(io, iov, n);
    size_t done = 0;
    for (int i = 0; i < n; i++) {
        ssize_t w = io->ops->write(io, iov[i].iov_base, iov[i].iov_len);
        if (w < 0)
            return done ? (ssize_t)done : w;
        done += (size_t)w;
        if ((size_t)w < iov[i].iov_len)
            break;
    }
    return (ssize_t)done;
}

static inline void tnl_io_want(struct tnl_io *io, int events)
{
    if (io->events != events)
        io->ops->want(io, events);
}

static inline const char *tnl_io_error(struct tnl_io *io)
{
    return io->ops->error ? io->ops->error(io) : NULL;
}

static inline void tnl_io_close(struct tnl_io *io, int abort)
{
    io->ops->close(io, abort);
}

/* A plain non-blocking socket. Takes ownership of fd (closed by close()).
 * NULL when out of memory (fd is then closed). */
struct tnl_io *tnl_io_fd_new(int fd);
int tnl_io_fd(const struct tnl_io *io);
/* Try these events at the socket's next turn in this loop iteration without
 * waiting for the poll to report them (loop/readyq.h: presume): for a socket
 * just accepted, whose first bytes have most often arrived with it. A read
 * that finds nothing costs one -EAGAIN; the watcher stays as want() set it.
 * Not a plain socket: nothing happens. */
void tnl_io_fd_presume(struct tnl_io *io, int events);
/* Take the socket back out of a plain-socket io (tnl_io_fd(io) >= 0): it is
 * no longer watched, and no longer in the loop's epoll set either (a close
 * alone would leave it there while another process holds the same socket,
 * and the loop would hear of its events). io is freed; the descriptor is
 * returned, the caller's to close. */
int tnl_io_fd_detach(struct tnl_io *io);

#endif

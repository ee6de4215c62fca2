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
 */
#ifndef TNL_IO_H
#define TNL_IO_H

#include <stddef.h>
#include <sys/types.h>

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

#endif

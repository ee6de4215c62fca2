/*
 * pipe.h — kernel pipes for zero-copy splicing between two sockets.
 *
 * splice(2) moves a socket's received pages into a pipe and from the pipe
 * into another socket's send queue without copying them through user space:
 * a bulk transfer through the router then costs two system calls per pipe's
 * worth of bytes and no memcpy. Pipes come from a small free list (an empty
 * pipe is as good as new; creating one costs a system call and two fds) and
 * are sized to TNL_PIPE_SIZE where the kernel allows.
 *
 * A splice into a socket whose peer has gone raises SIGPIPE (there is no
 * MSG_NOSIGNAL for it), so pipes are handed out only while SIGPIPE is
 * ignored: `tunnel run` ignores it; a host that embeds the module and leaves
 * SIGPIPE at its default gets the copy path, which never raises it.
 */
#ifndef TNL_PIPE_H
#define TNL_PIPE_H

#include <stddef.h>
#include <sys/types.h>

enum { TNL_PIPE_SIZE = 256 * 1024 };

/* Zero-copy on or off from now on (tunnel.config{ zero_copy }); on by default. */
void tnl_pipe_enable(int on);

/* A pipe (p[0] read end, p[1] write end, both non-blocking): 0, or -1 when
 * zero copy is off, SIGPIPE is not ignored, or no pipe can be made (the
 * caller then copies). *cap is how many bytes the pipe holds. */
int tnl_pipe_get(int p[2], size_t *cap);

/* Give a pipe back: pooled when empty (pending == 0), else closed. */
void tnl_pipe_put(int p[2], size_t pending);

/* Move up to n bytes from socket fd into the pipe / from the pipe into socket
 * fd: the count, 0 (fd_in's peer ended), or -errno (-EAGAIN: nothing to move
 * now). */
ssize_t tnl_pipe_in(int fd, int pipe_w, size_t n);
ssize_t tnl_pipe_out(int pipe_r, int fd, size_t n);

/* Close every pooled pipe (shutdown, tests). */
void tnl_pipe_pool_drain(void);

#endif

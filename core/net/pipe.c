/*
 * pipe.c — the pipe free list and the splice(2) calls (see pipe.h).
 */
#include "net/pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

enum { POOL_MAX = 16 };

static int enabled = 1;
static int pool[POOL_MAX][2];
static size_t pool_cap[POOL_MAX];
static unsigned pooled;

void tnl_pipe_enable(int on)
{
    enabled = on;
    if (!on)
        tnl_pipe_pool_drain();
}

static int sigpipe_ignored(void)
{
    struct sigaction sa;
    return sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN;
}

int tnl_pipe_get(int p[2], size_t *cap)
{
    if (!enabled)
        return -1;
    if (pooled > 0) {
        pooled--;
        p[0] = pool[pooled][0];
        p[1] = pool[pooled][1];
        *cap = pool_cap[pooled];
        return 0;
    }
    if (!sigpipe_ignored() || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    /* Larger than the default 64 KiB where allowed: fewer calls per byte.
     * Past the per-user pipe allowance the kernel refuses; keep what it gave. */
    int got = fcntl(p[1], F_SETPIPE_SZ, TNL_PIPE_SIZE);
    if (got < 0)
        got = fcntl(p[1], F_GETPIPE_SZ);
    if (got <= 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    *cap = (size_t)got;
    return 0;
}

void tnl_pipe_put(int p[2], size_t pending)
{
    if (pending == 0 && enabled && pooled < POOL_MAX) {
        int cap = fcntl(p[1], F_GETPIPE_SZ);
        if (cap > 0) {
            pool[pooled][0] = p[0];
            pool[pooled][1] = p[1];
            pool_cap[pooled] = (size_t)cap;
            pooled++;
            return;
        }
    }
    close(p[0]);
    close(p[1]);
}

static ssize_t move(int in, int out, size_t n)
{
    ssize_t r;
    do {
        r = splice(in, NULL, out, NULL, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return r;
}

ssize_t tnl_pipe_in(int fd, int pipe_w, size_t n)
{
    return move(fd, pipe_w, n);
}

ssize_t tnl_pipe_out(int pipe_r, int fd, size_t n)
{
    return move(pipe_r, fd, n);
}

void tnl_pipe_pool_drain(void)
{
    while (pooled > 0) {
        pooled--;
        close(pool[pooled][0]);
        close(pool[pooled][1]);
    }
}

/*
 * control.c — line framing for the control channel (see control.h).
 */
#include "session/control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tnl_control {
    struct tnl_io *io;
    struct tnl_control_cbs cbs;
    void *arg;
    char *in;                   /* partial line, capacity TNL_CONTROL_LINE_MAX + 1 */
    size_t in_len;
    char *out;                  /* queued bytes */
    size_t out_len, out_cap, out_off;
    int shut_pending, shut_done, ended, busy, freed;
};

static void end(struct tnl_control *c, int err, const char *why)
{
    if (c->ended)
        return;
    c->ended = 1;
    tnl_io_want(c->io, 0);
    c->cbs.on_end(c, err, why, c->arg);
}

static int flush(struct tnl_control *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = tnl_io_write(c->io, c->out + c->out_off, c->out_len - c->out_off);
        if (w == -EAGAIN || w == 0)
            return 0;
        if (w < 0) {
            end(c, (int)w, "control channel write failed");
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    if (c->shut_pending && !c->shut_done) {
        c->shut_done = 1;
        c->io->ops->shutdown(c->io);
    }
    return 1;
}

static void rearm(struct tnl_control *c)
{
    if (c->ended || c->freed)
        return;
    tnl_io_want(c->io, TNL_IO_READ | (c->out_len > c->out_off ? TNL_IO_WRITE : 0));
}

/* Cut complete lines out of the input; returns -1 once the channel ended. */
static int deliver(struct tnl_control *c)
{
    size_t start = 0;
    for (size_t i = 0; i < c->in_len && !c->ended && !c->freed; i++) {
        if (c->in[i] != '\n')
            continue;
        size_t n = i - start;
        if (n > 0 && c->in[start + n - 1] == '\r')
            n--;
        c->in[start + n] = 0;
        if (n > 0)
            c->cbs.on_line(c, c->in + start, n, c->arg);
        start = i + 1;
    }
    if (c->ended || c->freed)
        return -1;
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    if (c->in_len >= TNL_CONTROL_LINE_MAX) {
        end(c, -EMSGSIZE, "control message longer than 64 KiB");
        return -1;
    }
    return 0;
}

static void ready(struct tnl_io *io, int events)
{
    struct tnl_control *c = io->owner;
    c->busy = 1;
    if ((events & TNL_IO_WRITE) && flush(c) < 0)
        goto out;
    if (events & TNL_IO_READ) {
        for (int round = 0; round < 8 && !c->ended && !c->freed; round++) {
            ssize_t r = tnl_io_read(io, c->in + c->in_len, TNL_CONTROL_LINE_MAX - c->in_len);
            if (r == -EAGAIN)
                break;
            if (r <= 0) {
                end(c, (int)r, r == 0 ? "control channel closed by peer" : "control channel read failed");
                break;
            }
            c->in_len += (size_t)r;
            if (deliver(c) < 0)
                break;
        }
    }
out:
    c->busy = 0;
    if (c->freed) {
        free(c);
        return;
    }
    rearm(c);
}

struct tnl_control *tnl_control_new(struct tnl_io *io, const struct tnl_control_cbs *cbs, void *arg)
{
    struct tnl_control *c = calloc(1, sizeof *c);
    if (c)
        c->in = malloc(TNL_CONTROL_LINE_MAX + 1);
    if (!c || !c->in) {
        if (c)
            free(c);
        tnl_io_close(io, 1);
        return NULL;
    }
    c->io = io;
    c->cbs = *cbs;
    c->arg = arg;
    io->owner = c;
    io->ready = ready;
    tnl_io_want(io, TNL_IO_READ);
    return c;
}

int tnl_control_send(struct tnl_control *c, const char *line, size_t len)
{
    if (c->ended || c->shut_pending)
        return -EPIPE;
    if (len >= TNL_CONTROL_LINE_MAX || memchr(line, '\n', len))
        return -EMSGSIZE;
    if (c->out_len + len + 1 > TNL_CONTROL_QUEUE_MAX)
        return -ENOBUFS;
    if (c->out_len + len + 1 > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len + 1)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p)
            return -ENOMEM;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, len);
    c->out[c->out_len + len] = '\n';
    c->out_len += len + 1;
    if (!c->busy)
        rearm(c);
    return 0;
}

void tnl_control_shutdown(struct tnl_control *c)
{
    c->shut_pending = 1;
    if (!c->busy && !c->ended && c->out_len == c->out_off) {
        c->shut_done = 1;
        c->io->ops->shutdown(c->io);
    }
}

void tnl_control_free(struct tnl_control *c)
{
    if (!c || c->freed)
        return;
    tnl_io_close(c->io, 0);
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    if (c->busy) {
        c->freed = 1;       /* ready() frees the struct when it unwinds */
        return;
    }
    free(c);
}

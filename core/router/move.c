/*
 * move.c — a spliced connection handed to a sibling process (see move.h).
 */
#include "router/move.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop.h"
#include "router/conn_int.h"
#include "util/log.h"
#include "util/str.h"

static int dir_bulk(const struct tnl_splice_dir *d)
{
    return d->bulk && !d->eof;
}

int tnl_conn_bulk(const struct tnl_conn *c, double recent)
{
    return c->state == TNL_CONN_SPLICE && (dir_bulk(&c->splice.ab) || dir_bulk(&c->splice.ba)) &&
           tnl_now() - c->splice.last_active < recent;
}

/* Nothing of it is held in this process but what a pipe holds, no end yet. */
static int dir_movable(const struct tnl_splice_dir *d)
{
    return !d->eof && !d->shut && (!d->buf || tnl_buf_pending(d->buf) == 0);
}

int tnl_conn_movable(const struct tnl_conn *c)
{
    return c->state == TNL_CONN_SPLICE && !c->service && !c->hook && c->up &&
           tnl_io_fd(c->client) >= 0 && tnl_io_fd(c->up) >= 0 && !c->splice.finished &&
           dir_movable(&c->splice.ab) && dir_movable(&c->splice.ba);
}

int tnl_conn_move_fds(const struct tnl_conn_move *m)
{
    return 2 + 2 * (m->piped[0] != 0) + 2 * (m->piped[1] != 0);
}

int tnl_conn_move_out(const struct tnl_conn *c, struct tnl_conn_move *m, int fds[TNL_MOVE_FDS_MAX])
{
    memset(m, 0, sizeof *m);
    tnl_strlcpy(m->listener, c->cfg->name, sizeof m->listener);
    memcpy(&m->bind, &c->cfg->bind, c->cfg->bindlen);
    m->bindlen = c->cfg->bindlen;
    m->src = c->src;
    m->dst = c->dst;
    m->upstream = c->upstream;
    tnl_strlcpy(m->proto, c->proto ? c->proto : "opaque", sizeof m->proto);
    m->id = c->id;
    m->bytes_in = tnl_conn_client_bytes(c) + c->earlier_in;
    m->bytes_out = c->splice.ba.bytes + c->earlier_out;
    m->age = tnl_now() - c->t_start;
    int n = 0;
    fds[n++] = tnl_io_fd(c->client);
    fds[n++] = tnl_io_fd(c->up);
    struct tnl_splice_pipe carry[2];
    tnl_splice_carry(&c->splice, carry);
    for (int i = 0; i < 2; i++) {
        if (carry[i].fd[0] < 0)
            continue;
        m->piped[i] = 1;
        m->pipe_cap[i] = carry[i].cap;
        m->pipe_held[i] = carry[i].piped;
        fds[n++] = carry[i].fd[0];
        fds[n++] = carry[i].fd[1];
    }
    return n;
}

static void log_move(const char *event, const struct tnl_conn *c, const char *peer_key, int peer,
                     const struct tnl_conn_move *m)
{
    struct tnl_log l;
    if (!tnl_log_begin(&l, TNL_LOG_INFO, event))
        return;
    tnl_log_uint(&l, "conn", c->id);
    tnl_log_str(&l, "listener", c->cfg->name);
    tnl_log_str(&l, "src", c->src_str);
    tnl_log_int(&l, peer_key, peer);
    if (m)
        tnl_log_uint(&l, "from_conn", m->id);
    tnl_log_uint(&l, "bytes_in", m ? m->bytes_in : tnl_conn_client_bytes(c) + c->earlier_in);
    tnl_log_uint(&l, "bytes_out", m ? m->bytes_out : c->splice.ba.bytes + c->earlier_out);
    tnl_log_end(&l);
}

void tnl_conn_moved(struct tnl_conn *c, int to)
{
    log_move("move", c, "to_worker", to, NULL);
    close(tnl_io_fd_detach(c->client));
    close(tnl_io_fd_detach(c->up));
    c->client = c->up = NULL;
    tnl_splice_drop_pipes(&c->splice);
    tnl_conn_release(c, 0);
}

/* A description from a sibling: every string ends, every address is one. */
static int valid(const struct tnl_conn_move *m)
{
    return memchr(m->listener, 0, sizeof m->listener) && memchr(m->proto, 0, sizeof m->proto) &&
           memchr(m->upstream.host, 0, sizeof m->upstream.host) && m->bindlen <= sizeof m->bind &&
           (m->src.ss_family == AF_INET || m->src.ss_family == AF_INET6) &&
           (m->dst.ss_family == AF_INET || m->dst.ss_family == AF_INET6) &&
           isfinite(m->age) && m->age >= 0 &&
           m->pipe_held[0] <= m->pipe_cap[0] && m->pipe_held[1] <= m->pipe_cap[1];
}

static void close_all(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

int tnl_conn_adopt(struct tnl_entry_cfg *cfg, const struct tnl_conn_move *m, const int *fds, int n, int from)
{
    if (!valid(m) || n != tnl_conn_move_fds(m)) {
        close_all(fds, n);
        tnl_logf(TNL_LOG_ERROR, "move_lost", "a malformed connection handed over by worker %d: closed", from);
        return -EINVAL;
    }
    struct tnl_splice_pipe carry[2];
    for (int i = 0, k = 2; i < 2; i++) {
        carry[i].fd[0] = m->piped[i] ? fds[k++] : -1;
        carry[i].fd[1] = m->piped[i] ? fds[k++] : -1;
        carry[i].cap = (size_t)m->pipe_cap[i];
        carry[i].piped = (size_t)m->pipe_held[i];
    }
    struct tnl_io *a = tnl_io_fd_new(fds[0]);       /* closes the fd if it fails */
    struct tnl_io *b = tnl_io_fd_new(fds[1]);
    struct tnl_conn *c = a && b ? tnl_conn_new(cfg, a) : NULL;
    if (!c) {
        if (a)
            tnl_io_close(a, 0);
        if (b)
            tnl_io_close(b, 0);
        close_all(fds + 2, n - 2);
        tnl_logf(TNL_LOG_ERROR, "move_lost", "out of memory adopting connection %llu of worker %d: closed",
                 (unsigned long long)m->id, from);
        return -ENOMEM;
    }
    c->src = m->src;
    c->dst = m->dst;
    tnl_conn_format_addrs(c);
    c->upstream = m->upstream;
    tnl_strlcpy(c->lua_proto, m->proto, sizeof c->lua_proto);
    c->proto = c->lua_proto;
    c->earlier_in = m->bytes_in;
    c->earlier_out = m->bytes_out;
    c->t_start = tnl_now() - m->age;
    log_move("adopt", c, "from_worker", from, m);
    tnl_conn_splice(c, b, carry);
    return 0;
}

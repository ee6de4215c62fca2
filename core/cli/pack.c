/*
 * pack.c — connections to worker 1 until it is busy (see pack.h).
 */
#include "cli/pack.h"
#include "net/steer.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"
#include "router/conn.h"
#include "router/entry.h"
#include "router/move.h"
#include "util/log.h"

enum { PACK_MAX = 64 };

/* One per worker on the shared page: its loop's busy fraction over the last
 * tick, when it last published (monotonic seconds), and how many bulk
 * connections it carries (router/move.h). */
struct slot {
    _Atomic double busy;
    _Atomic double beat;
    _Atomic int bulk;
};

/* What travels with a descriptor just accepted: which listener accepted
 * it, and from whom. */
struct handoff {
    char name[TNL_NAME_MAX];
    struct sockaddr_storage bind;
    socklen_t bindlen;
    struct sockaddr_storage peer;
    socklen_t plen;
};

/* One message on a worker's socket pair: a connection just accepted (one
 * descriptor), or one being spliced (its sockets and pipes, move.h). */
enum { MSG_ACCEPTED = 1, MSG_SPLICING = 2 };

struct msg {
    int kind;
    struct handoff h;               /* MSG_ACCEPTED */
    struct tnl_conn_move m;         /* MSG_SPLICING */
};

static struct slot *page;
static int pairs[PACK_MAX][2];      /* pair i (worker i+1): [0] worker 1's end, [1] worker i+1's */
static int nworkers, me;
static int serving;                 /* a worker > 1 serving what it accepts */
static ev_io rx[PACK_MAX];
static ev_prepare before_poll;
static ev_check after_poll;
static ev_timer tick;
static double blocked_at, idle, window_start;
static double moved_at[PACK_MAX];   /* worker 1: when it last moved connections to worker i+1 */

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int tnl_pack_setup(int n)
{
    if (n < 2 || n > PACK_MAX)
        return -1;
    page = mmap(NULL, sizeof(struct slot) * PACK_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        page = NULL;
        return -1;
    }
    for (int i = 1; i < n; i++) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pairs[i]) < 0) {
            while (--i >= 1) {
                close(pairs[i][0]);
                close(pairs[i][1]);
            }
            munmap(page, sizeof(struct slot) * PACK_MAX);
            page = NULL;
            return -1;
        }
    }
    nworkers = n;
    return 0;
}

/* A message and its n descriptors over sock: 1 sent (the descriptors are
 * still the caller's to close), 0 not. */
static int send_msg(int sock, const int *fds, int n, const struct msg *msg)
{
    union {
        char buf[CMSG_SPACE(TNL_MOVE_FDS_MAX * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { (void *)msg, sizeof *msg };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int)) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
    return sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof *msg;
}

/* A message is whole when it has the descriptors its kind says and its
 * names end within their fields (tnl_conn_adopt checks the rest of a move). */
static int whole(const struct msg *msg, int n)
{
    const struct handoff *h = &msg->h;
    const struct tnl_conn_move *m = &msg->m;
    if (msg->kind == MSG_ACCEPTED)
        return n == 1 && h->bindlen <= sizeof h->bind && h->plen <= sizeof h->peer &&
               memchr(h->name, 0, sizeof h->name) != NULL;
    return msg->kind == MSG_SPLICING && n == tnl_conn_move_fds(m) && m->bindlen <= sizeof m->bind &&
           memchr(m->listener, 0, sizeof m->listener) != NULL;
}

/* One message: 0 when there is none now, else 1 with fds[] and *n set (n
 * is 0 for a malformed message, whose descriptors are closed). */
static int recv_msg(int sock, int fds[TNL_MOVE_FDS_MAX], int *n, struct msg *msg)
{
    union {
        char buf[CMSG_SPACE(TNL_MOVE_FDS_MAX * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { msg, sizeof *msg };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    ssize_t r = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r <= 0)
        return 0;
    *n = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            if (*n < TNL_MOVE_FDS_MAX)
                fds[(*n)++] = fd;
            else
                close(fd);
        }
    }
    if (r != (ssize_t)sizeof *msg || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || !whole(msg, *n)) {
        for (int i = 0; i < *n; i++)
            close(fds[i]);
        tnl_logf(TNL_LOG_ERROR, "handoff_error", "malformed handoff from a sibling worker (%zd bytes, %d "
                 "descriptors)", r, *n);
        *n = 0;
    }
    return 1;
}

/* A connection just accepted, handed over (or sent back). */
static void take_accepted(int sock, int fd, struct msg *msg)
{
    struct handoff *h = &msg->h;
    struct tnl_entry *e = tnl_entry_find(h->name, &h->bind, h->bindlen);
    if (e) {
        tnl_entry_serve(e, fd, (struct sockaddr *)&h->peer, h->plen);
    } else if (me == 1 && send_msg(sock, &fd, 1, msg)) {
        close(fd);                                  /* back to the worker that accepted it */
    } else {
        tnl_logf(TNL_LOG_WARN, "handoff_lost", "listener '%s' is gone; closing a connection handed over "
                 "by a sibling worker", h->name);
        close(fd);
    }
}

/* A connection being spliced, moved here by worker 1 (router/move.h). */
static void take_splicing(const int *fds, int n, const struct msg *msg)
{
    const struct tnl_conn_move *m = &msg->m;
    struct tnl_entry *e = tnl_entry_find(m->listener, &m->bind, m->bindlen);     /* whole(): they end */
    if (e) {
        tnl_conn_adopt(e->cfg, m, fds, n, 1);
        return;
    }
    tnl_logf(TNL_LOG_WARN, "move_lost", "no listener '%s' here (reloaded?); closing connection %llu "
             "moved by worker 1", m->listener, (unsigned long long)m->id);
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* Worker 1 takes handoffs; worker N takes back what worker 1 could not, and
 * the spliced connections worker 1 moves to it. */
static void rx_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    for (int i = 0; i < 64; i++) {
        struct msg msg;
        int fds[TNL_MOVE_FDS_MAX], n;
        if (!recv_msg(w->fd, fds, &n, &msg))
            return;
        if (n > 0 && msg.kind == MSG_ACCEPTED)
            take_accepted(w->fd, fds[0], &msg);
        else if (n > 0)
            take_splicing(fds, n, &msg);
    }
}

/* Worker N: serve it here (0), or hand it to worker 1 (1: fd is gone). */
static int offer(struct tnl_entry *e, int fd, const struct sockaddr *peer, socklen_t plen)
{
    if (serving || tnl_loop_draining())
        return 0;
    struct msg msg;
    memset(&msg, 0, sizeof msg);
    msg.kind = MSG_ACCEPTED;
    snprintf(msg.h.name, sizeof msg.h.name, "%s", e->cfg->name);
    memcpy(&msg.h.bind, &e->cfg->bind, e->cfg->bindlen);
    msg.h.bindlen = e->cfg->bindlen;
    memcpy(&msg.h.peer, peer, plen);
    msg.h.plen = plen;
    if (!send_msg(pairs[me - 1][1], &fd, 1, &msg))
        return 0;
    close(fd);
    tnl_logf(TNL_LOG_DEBUG, "handoff", "a connection to '%s' handed to worker 1", e->cfg->name);
    return 1;
}

static void steer_listener(struct tnl_entry *e)
{
    tnl_steer_listen(me, e->l.fd, &e->cfg->bind, e->cfg->bindlen);
}

static void before_poll_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    blocked_at = mono();
    tnl_steer_publish(me, tnl_conn_count(), me == 1 || serving);
}

static void after_poll_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    idle += mono() - blocked_at;
}

static int count_bulk(void)
{
    int n = 0;
    for (const struct tnl_conn *c = tnl_conns; c; c = c->next)
        n += tnl_conn_bulk(c, BULK_RECENT);
    return n;
}

static int movable_bulk(const struct tnl_conn *c)
{
    return tnl_conn_bulk(c, BULK_RECENT) && tnl_conn_movable(c);
}

/* Worker 1, busy, with bulk connections: move some of them to the least
 * busy sibling, so that both carry as many (pack.h). The oldest go: a
 * transfer that has lasted is the likelier to last on (tnl_conns is newest
 * first, so skip all the others). */
static void spread(int bulk, double now)
{
    int to = 0;
    double least = PACK_OFF;
    if (bulk < 2 || tnl_loop_draining() || tnl_loop_fd() < 0)
        return;
    for (int k = 2; k <= nworkers; k++) {
        double b = atomic_load_explicit(&page[k - 1].busy, memory_order_relaxed);
        double beat = atomic_load_explicit(&page[k - 1].beat, memory_order_relaxed);
        /* fresh, and counted again since our last move to it */
        if (now - beat < 1.0 && beat > moved_at[k - 1] && b < least) {
            least = b;
            to = k;
        }
    }
    if (!to)
        return;
    int moves = (bulk - atomic_load_explicit(&page[to - 1].bulk, memory_order_relaxed)) / 2;
    int skip = -moves;
    for (const struct tnl_conn *c = tnl_conns; c; c = c->next)
        skip += movable_bulk(c);
    struct tnl_conn *next;
    for (struct tnl_conn *c = tnl_conns; c && moves > 0; c = next) {
        next = c->next;
        if (!movable_bulk(c) || skip-- > 0)
            continue;
        struct msg msg;
        int fds[TNL_MOVE_FDS_MAX];
        memset(&msg, 0, sizeof msg);
        msg.kind = MSG_SPLICING;
        int n = tnl_conn_move_out(c, &msg.m, fds);
        if (!send_msg(pairs[to - 1][0], fds, n, &msg))
            return;
        tnl_conn_moved(c, to);
        moved_at[to - 1] = now;
        moves--;
    }
}

/* Publish this worker's busy fraction and bulk count; worker 1 spreads its
 * bulk when busy, a worker > 1 decides whether it serves (pack.h). */
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    double now = mono(), span = now - window_start;
    double busy = span > 0 ? 1.0 - idle / span : 0;
    busy = busy < 0 ? 0 : busy > 1 ? 1 : busy;
    int bulk = count_bulk();
    atomic_store_explicit(&page[me - 1].busy, busy, memory_order_relaxed);
    atomic_store_explicit(&page[me - 1].bulk, bulk, memory_order_relaxed);
    atomic_store_explicit(&page[me - 1].beat, now, memory_order_relaxed);
    idle = 0;
    window_start = now;
    if (me == 1) {
        if (busy > PACK_ON)
            spread(bulk, now);
        return;
    }
    double first = atomic_load_explicit(&page[0].busy, memory_order_relaxed);
    double beat = atomic_load_explicit(&page[0].beat, memory_order_relaxed);
    int was = serving;
    if (now - beat > 1.0)
        serving = 1;                            /* worker 1 is not publishing: restarting */
    else if (!serving && first > PACK_ON)
        serving = 1;
    else if (serving && first + busy < PACK_OFF)
        serving = 0;
    if (serving != was)
        tnl_logf(TNL_LOG_INFO, "worker_overflow", "worker %d %s (worker 1 busy %.0f%%, this one %.0f%%)", me,
                 serving ? "serves what it accepts" : "hands new connections to worker 1",
                 first * 100, busy * 100);
}

void tnl_pack_start(int index)
{
    if (!page || index < 1 || index > nworkers)
        return;
    me = index;
    for (int i = 1; i < nworkers; i++) {
        if (me != 1) {
            close(pairs[i][0]);
            pairs[i][0] = -1;
        }
        if (i != me - 1) {
            close(pairs[i][1]);
            pairs[i][1] = -1;
        }
        int mine = me == 1 ? pairs[i][0] : pairs[i][1];
        if (mine < 0)
            continue;
        ev_io_init(&rx[i], rx_cb, mine, EV_READ);
        ev_io_start(tnl_ev, &rx[i]);
    }
    if (me > 1)
        tnl_entry_accept_filter = offer;
    tnl_entry_listen_hook = steer_listener;
    window_start = blocked_at = mono();
    ev_prepare_init(&before_poll, before_poll_cb);
    ev_prepare_start(tnl_ev, &before_poll);
    ev_check_init(&after_poll, after_poll_cb);
    ev_check_start(tnl_ev, &after_poll);
    ev_timer_init(&tick, tick_cb, PACK_TICK, PACK_TICK);
    ev_timer_start(tnl_ev, &tick);
}

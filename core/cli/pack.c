/*
 * pack.c — connections to worker 1 until it is busy (see pack.h).
 */
#include "cli/pack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop.h"
#include "router/entry.h"
#include "util/log.h"

enum { PACK_MAX = 64 };

/* One per worker on the shared page: its loop's busy fraction over the last
 * tick, and when it last published (monotonic seconds). */
struct slot {
    _Atomic double busy;
    _Atomic double beat;
};

/* What travels with a descriptor: which listener accepted it, and from whom. */
struct handoff {
    char name[TNL_NAME_MAX];
    struct sockaddr_storage bind;
    socklen_t bindlen;
    struct sockaddr_storage peer;
    socklen_t plen;
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

/* fd and its handoff over sock: 1 sent (fd closed here), 0 not. */
static int send_fd(int sock, int fd, const struct handoff *h)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { (void *)h, sizeof *h };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    if (sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof *h)
        return 0;
    close(fd);
    return 1;
}

/* One message: the fd (or -1) and its handoff; 0 when there is none now. */
static int recv_fd(int sock, int *fd, struct handoff *h)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { h, sizeof *h };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    ssize_t r = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r <= 0)
        return 0;
    *fd = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(cm), sizeof *fd);
    int whole = r == (ssize_t)sizeof *h && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
                h->bindlen <= sizeof h->bind && h->plen <= sizeof h->peer &&
                memchr(h->name, 0, sizeof h->name) != NULL;
    if (!whole) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        tnl_logf(TNL_LOG_ERROR, "handoff_error", "malformed handoff from a sibling worker (%zd bytes)", r);
    }
    return 1;
}

/* Worker 1 takes handoffs; worker N takes back what worker 1 could not. */
static void rx_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    for (int i = 0; i < 64; i++) {
        struct handoff h;
        int fd;
        if (!recv_fd(w->fd, &fd, &h))
            return;
        if (fd < 0)
            continue;
        struct tnl_entry *e = tnl_entry_find(h.name, &h.bind, h.bindlen);
        if (e) {
            tnl_entry_serve(e, fd, (struct sockaddr *)&h.peer, h.plen);
        } else if (me != 1 || !send_fd(w->fd, fd, &h)) {
            tnl_logf(TNL_LOG_WARN, "handoff_lost", "listener '%s' is gone; closing a connection handed over "
                     "by a sibling worker", h.name);
            close(fd);
        }
    }
}

/* Worker N: serve it here (0), or hand it to worker 1 (1: fd is gone). */
static int offer(struct tnl_entry *e, int fd, const struct sockaddr *peer, socklen_t plen)
{
    if (serving || tnl_loop_draining())
        return 0;
    struct handoff h;
    memset(&h, 0, sizeof h);
    snprintf(h.name, sizeof h.name, "%s", e->cfg->name);
    memcpy(&h.bind, &e->cfg->bind, e->cfg->bindlen);
    h.bindlen = e->cfg->bindlen;
    memcpy(&h.peer, peer, plen);
    h.plen = plen;
    return send_fd(pairs[me - 1][1], fd, &h);
}

static void before_poll_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    blocked_at = mono();
}

static void after_poll_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    idle += mono() - blocked_at;
}

/* Publish this worker's busy fraction; a worker > 1 decides whether it
 * serves (pack.h). */
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    double now = mono(), span = now - window_start;
    double busy = span > 0 ? 1.0 - idle / span : 0;
    busy = busy < 0 ? 0 : busy > 1 ? 1 : busy;
    atomic_store_explicit(&page[me - 1].busy, busy, memory_order_relaxed);
    atomic_store_explicit(&page[me - 1].beat, now, memory_order_relaxed);
    idle = 0;
    window_start = now;
    if (me == 1)
        return;
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
    window_start = blocked_at = mono();
    ev_prepare_init(&before_poll, before_poll_cb);
    ev_prepare_start(tnl_ev, &before_poll);
    ev_check_init(&after_poll, after_poll_cb);
    ev_check_start(tnl_ev, &after_poll);
    ev_timer_init(&tick, tick_cb, PACK_TICK, PACK_TICK);
    ev_timer_start(tnl_ev, &tick);
}

/*
 * loop.c — event loop, signals and graceful drain (see loop.h).
 */
#include "loop/loop.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

struct ev_loop *tnl_ev;
double tnl_drain_timeout = 30.0;

enum { MAX_PARTICIPANTS = 16, MAX_EPOLL_SCAN = 64 };

struct participant {
    void (*fn)(void *);
    void *arg;
};

static struct participant drainers[MAX_PARTICIPANTS], aborters[MAX_PARTICIPANTS];
static unsigned ndrainers, naborters;
static unsigned work;
static int draining;
static int loop_fd = -1;
static ev_timer drain_timer;
static ev_signal sig_term, sig_int, sig_hup;
static void (*reload_fn)(void *);
static void *reload_arg;

/* libev does not expose its epoll descriptor. Find it as the one eventpoll
 * descriptor that exists after the loop was created and not before. */
static int list_epoll_fds(int *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char path[64], target[64];
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = 0;
            if (strcmp(target, "anon_inode:[eventpoll]") == 0)
                out[n++] = fd;
        }
    }
    closedir(d);
    return n;
}

static int find_new_fd(const int *before, int nb, const int *after, int na)
{
    int found = -1;
    for (int i = 0; i < na; i++) {
        int seen = 0;
        for (int j = 0; j < nb; j++)
            seen |= before[j] == after[i];
        if (!seen) {
            if (found >= 0)
                return -1;      /* ambiguous: another thread made one too */
            found = after[i];
        }
    }
    return found;
}

int tnl_loop_init(void)
{
    int before[MAX_EPOLL_SCAN], after[MAX_EPOLL_SCAN];
    if (tnl_ev)
        return 0;
    int nb = list_epoll_fds(before, MAX_EPOLL_SCAN);
    tnl_ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!tnl_ev)
        return -ENOMEM;
    int na = list_epoll_fds(after, MAX_EPOLL_SCAN);
    loop_fd = find_new_fd(before, nb, after, na);
    return 0;
}

int tnl_loop_fd(void)
{
    return loop_fd;
}

void tnl_loop_run(void)
{
    ev_run(tnl_ev, 0);
}

static void step_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)w; (void)revents;
}

void tnl_loop_step(double timeout)
{
    if (timeout <= 0) {
        ev_run(tnl_ev, EVRUN_NOWAIT);
    } else {
        /* EVRUN_ONCE blocks until something happens; a timer bounds the wait. */
        ev_timer t;
        ev_timer_init(&t, step_timeout_cb, timeout, 0);
        ev_timer_start(tnl_ev, &t);
        ev_run(tnl_ev, EVRUN_ONCE);
        ev_timer_stop(tnl_ev, &t);
    }
}

void tnl_loop_stop(void)
{
    ev_break(tnl_ev, EVBREAK_ALL);
}

static void run_all(struct participant *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i].fn(p[i].arg);
}

static void drain_finish(void)
{
    ev_timer_stop(tnl_ev, &drain_timer);
    tnl_logf(TNL_LOG_INFO, "drain_done", "drain finished, %u open at the end", work);
    tnl_loop_stop();
}

static void drain_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    tnl_logf(TNL_LOG_WARN, "drain_deadline", "drain deadline reached with %u still open; closing them", work);
    run_all(aborters, naborters);
    drain_finish();
}

void tnl_loop_drain(double deadline)
{
    if (draining)
        return;
    draining = 1;
    tnl_logf(TNL_LOG_INFO, "drain", "draining: accepting no new work, %u open, deadline %.1fs", work, deadline);
    run_all(drainers, ndrainers);
    if (work == 0) {
        drain_finish();
        return;
    }
    ev_timer_init(&drain_timer, drain_deadline_cb, deadline, 0);
    ev_timer_start(tnl_ev, &drain_timer);
}

int tnl_loop_draining(void)
{
    return draining;
}

void tnl_loop_work_add(void)
{
    work++;
}

void tnl_loop_work_done(void)
{
    if (work > 0)
        work--;
    if (draining && work == 0 && ev_is_active(&drain_timer))
        drain_finish();
}

unsigned tnl_loop_work_count(void)
{
    return work;
}

static void add(struct participant *p, unsigned *n, void (*fn)(void *), void *arg)
{
    for (unsigned i = 0; i < *n; i++)
        if (p[i].fn == fn && p[i].arg == arg)
            return;
    if (*n < MAX_PARTICIPANTS)
        p[(*n)++] = (struct participant){ fn, arg };
}

void tnl_loop_on_drain(void (*fn)(void *), void *arg)
{
    add(drainers, &ndrainers, fn, arg);
}

void tnl_loop_on_abort(void (*fn)(void *), void *arg)
{
    add(aborters, &naborters, fn, arg);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop; (void)revents;
    if (w->signum == SIGHUP) {
        if (reload_fn)
            reload_fn(reload_arg);
        else
            tnl_logf(TNL_LOG_WARN, "reload", "SIGHUP ignored: no script to reload");
        return;
    }
    if (draining) {
        tnl_logf(TNL_LOG_WARN, "drain_abort", "second %s during drain: closing %u at once",
                 strsignal(w->signum), work);
        run_all(aborters, naborters);
        drain_finish();
        return;
    }
    tnl_logf(TNL_LOG_INFO, "signal", "%s received", strsignal(w->signum));
    tnl_loop_drain(tnl_drain_timeout);
}

void tnl_loop_handle_signals(int on)
{
    if (on) {
        ev_signal_init(&sig_term, signal_cb, SIGTERM);
        ev_signal_init(&sig_int, signal_cb, SIGINT);
        ev_signal_init(&sig_hup, signal_cb, SIGHUP);
        ev_signal_start(tnl_ev, &sig_term);
        ev_signal_start(tnl_ev, &sig_int);
        ev_signal_start(tnl_ev, &sig_hup);
    } else if (ev_is_active(&sig_term)) {
        ev_signal_stop(tnl_ev, &sig_term);
        ev_signal_stop(tnl_ev, &sig_int);
        ev_signal_stop(tnl_ev, &sig_hup);
    }
}

void tnl_loop_set_reload(void (*fn)(void *), void *arg)
{
    reload_fn = fn;
    reload_arg = arg;
}

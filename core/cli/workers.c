/*
 * workers.c — tunnel run --workers N: N processes serving the same router
 * script, each with its own event loop and Lua state, sharing the listening
 * ports through SO_REUSEPORT, with new connections packed onto worker 1
 * until it is busy (cli/pack.h) and steered by load in the kernel
 * (net/steer.h). This is for routers: relays and agents keep per-process
 * state (sessions, exposed names), so a worker refuses a script that
 * declares them.
 *
 * The parent only supervises: it forwards SIGTERM/SIGINT/SIGHUP to the
 * workers, restarts one that dies of a signal (not while stopping), and exits
 * when they all have (0 if they all exited 0). Worker 1 serves the
 * management endpoint; its /status and /metrics describe that worker.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/pack.h"
#include "net/steer.h"

enum { WORKERS_MAX = 64 };

static pid_t pids[WORKERS_MAX];
static int nworkers;
static volatile sig_atomic_t pending_sig;
static int stopping;

int tnl_worker_index;               /* 0 outside --workers, else 1..N */

static void on_signal(int sig)
{
    pending_sig = sig;
}

static void forward(int sig)
{
    for (int i = 0; i < nworkers; i++)
        if (pids[i] > 0)
            kill(pids[i], sig);
}

/* Fork worker i; returns 0 in the child (which goes on to serve), else 1. */
static int spawn(int i)
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "tunnel: cannot start worker %d: %s\n", i + 1, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        tnl_worker_index = i + 1;
        return 0;
    }
    pids[i] = pid;
    return 1;
}

static int index_of(pid_t pid)
{
    for (int i = 0; i < nworkers; i++)
        if (pids[i] == pid)
            return i;
    return -1;
}

/* Each worker listens on a socket of its own (SO_REUSEPORT). When one dies,
 * the connections waiting in its accept queue are reset, unless the kernel
 * moves them to a sibling's queue (net.ipv4.tcp_migrate_req, Linux 5.14):
 * say so when it is off, since only the operator can turn it on. */
static void advise_migrate_req(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_migrate_req", "r");
    int on = -1;
    if (f) {
        if (fscanf(f, "%d", &on) != 1)
            on = -1;
        fclose(f);
    }
    if (on == 0)
        fprintf(stderr, "{\"event\":\"workers\",\"level\":\"warn\",\"msg\":\"net.ipv4.tcp_migrate_req is 0: "
                        "connections waiting to be accepted by a worker that dies are reset; "
                        "sysctl -w net.ipv4.tcp_migrate_req=1 hands them to a sibling\"}\n");
}

/* Returns -1 in a worker (the caller serves), or the exit status for the parent. */
int tnl_workers_run(int n)
{
    struct sigaction sa;
    int status = 0, alive = 0;
    nworkers = n < WORKERS_MAX ? n : WORKERS_MAX;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    char why[160] = "";
    int steered = 0;
    if (tnl_pack_setup(nworkers) < 0) {
        fprintf(stderr, "{\"event\":\"workers\",\"level\":\"warn\",\"msg\":\"cannot share a page and sockets "
                        "between workers (%s): connections are spread by hash\"}\n", strerror(errno));
        snprintf(why, sizeof why, "nothing shared between workers");
    } else {
        steered = tnl_steer_setup(nworkers, why, sizeof why);
    }
    for (int i = 0; i < nworkers; i++) {
        if (spawn(i) == 0)
            return -1;
        alive++;
    }
    fprintf(stderr, "{\"event\":\"workers\",\"level\":\"info\",\"msg\":\"%d workers serving (parent pid %d); "
                    "new connections %s%s%s\"}\n", nworkers, (int)getpid(),
            steered ? "steered by load in the kernel" : "spread by hash, then handed over", steered ? "" : ": ",
            steered ? "" : why);
    advise_migrate_req();
    while (alive > 0) {
        int ws;
        pid_t pid = waitpid(-1, &ws, 0);
        if (pid < 0 && errno == EINTR) {
            int sig = pending_sig;
            pending_sig = 0;
            if (sig == SIGTERM || sig == SIGINT)
                stopping = 1;
            if (sig)
                forward(sig);
            continue;
        }
        if (pid < 0)
            break;
        int i = index_of(pid);
        if (i < 0)
            continue;
        pids[i] = 0;
        alive--;
        int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (WIFSIGNALED(ws) && !stopping) {
            fprintf(stderr, "{\"event\":\"worker_died\",\"level\":\"error\",\"msg\":\"worker %d died of signal %d; "
                            "restarting it\"}\n", i + 1, WTERMSIG(ws));
            if (spawn(i) == 0)
                return -1;
            alive++;
            continue;
        }
        if (code != 0) {
            status = code;
            if (!stopping) {        /* a worker that fails on its own (bad script): stop the others */
                stopping = 1;
                forward(SIGTERM);
            }
        }
    }
    return status;
}

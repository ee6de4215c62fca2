/*
 * loop.h — the process's one event loop and its lifecycle.
 *
 * Glossary
 *   loop    a libev loop with the epoll backend, created on first use (by the
 *           CLI or by `require "tunnel"` inside a host's Lua state).
 *   work    anything that must finish before a drain may end (a connection, a
 *           session). Counted, not listed: each owner adds and removes itself.
 *   drain   stop accepting (every on_drain callback runs once), let work finish,
 *           stop the loop when the count reaches zero or at the deadline (every
 *           on_abort callback then closes what is left).
 */
#ifndef TNL_LOOP_H
#define TNL_LOOP_H

#include <ev.h>

extern struct ev_loop *tnl_ev;

/* Create the loop (idempotent). Returns 0 or -errno. */
int tnl_loop_init(void);

/* The epoll descriptor behind the loop, for hosts that poll it from their own
 * loop (tunnel.fd()); -1 if it could not be determined. */
int tnl_loop_fd(void);

/* Run until tnl_loop_stop() or the end of a drain. */
void tnl_loop_run(void);
/* One iteration, waiting at most timeout seconds (0: do not wait). */
void tnl_loop_step(double timeout);
void tnl_loop_stop(void);

/* SIGTERM/SIGINT start a drain, SIGHUP calls the reload callback (if set).
 * Installed by `tunnel run` and by tunnel.run(); a second SIGTERM/SIGINT during
 * a drain ends it at once. */
void tnl_loop_handle_signals(int on);
void tnl_loop_set_reload(void (*fn)(void *), void *arg);

/* Register drain participants. At most a handful (listeners, relay, agent). */
void tnl_loop_on_drain(void (*fn)(void *), void *arg);
void tnl_loop_on_abort(void (*fn)(void *), void *arg);

void tnl_loop_work_add(void);
void tnl_loop_work_done(void);
unsigned tnl_loop_work_count(void);

/* Begin a drain with this deadline (seconds). */
void tnl_loop_drain(double deadline);
int tnl_loop_draining(void);

/* Default drain deadline in seconds (tunnel.config{drain_timeout}). */
extern double tnl_drain_timeout;

/* Monotonic seconds (the loop's cached time). */
static inline double tnl_now(void)
{
    return ev_now(tnl_ev);
}

#endif

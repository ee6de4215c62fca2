/*
 * hook.h — the one place where C calls into the operator's Lua hooks.
 *
 * Every hook invocation runs as its own coroutine, under a budget of VM
 * instructions and CPU time, and fails closed: a hook that raises, exceeds its
 * budget, yields where it may not, or (checked by the caller) returns something
 * outside its documented shapes is logged once — hook name, the function's
 * file:line, the message — and its caller refuses that one piece of work.
 *
 * Hooks that may yield (route) can call tunnel.sleep() and, later, other
 * asynchronous helpers: the coroutine is parked and resumed from the loop.
 *
 * Use:
 *   struct tnl_hook_run *r = tnl_hook_prepare(ctx, fn_ref, "route", NULL, conn_id);
 *   ...push nargs arguments onto r->co...
 *   tnl_hook_start(r, nargs, TNL_HOOK_MAY_YIELD, done, arg);
 * done(arg, r, ok) runs exactly once unless the run is cancelled first; when ok,
 * the results are r->co's stack [1 .. lua_gettop(r->co)]. The run is freed
 * after done returns; inside done, tnl_hook_fail() reports a bad result.
 */
#ifndef TNL_HOOK_H
#define TNL_HOOK_H

#include <stdint.h>
#include <lua.h>

#include "loop/loop.h"
#include "lua/ctx.h"

enum { TNL_HOOK_NO_YIELD = 0, TNL_HOOK_MAY_YIELD = 1 };

struct tnl_hook_run;
typedef void (*tnl_hook_done_fn)(void *arg, struct tnl_hook_run *run, int ok);

struct tnl_hook_run {
    struct tnl_ctx *ctx;            /* referenced for the run's life */
    lua_State *co;
    int co_ref;
    int fn_ref;                     /* not owned: for file:line in messages */
    const char *hook;               /* static: "route", "sniffer", ... */
    char detail[48];                /* e.g. the sniffer's name */
    uint64_t conn;                  /* connection id for logs, 0 if none */
    int allow_yield;
    long instructions;              /* consumed so far */
    double seconds;
    double resumed_at;
    double sleep_for;               /* set by tunnel.sleep before it yields */
    ev_timer timer;
    tnl_hook_done_fn done;
    void *arg;
    int state;
};

/* NULL if out of memory (nothing to clean up then). */
struct tnl_hook_run *tnl_hook_prepare(struct tnl_ctx *ctx, int fn_ref, const char *hook,
                                      const char *detail, uint64_t conn);
void tnl_hook_start(struct tnl_hook_run *run, int nargs, int allow_yield, tnl_hook_done_fn done,
                    void *arg);
/* Drop a parked run (its connection went away): done is not called. */
void tnl_hook_cancel(struct tnl_hook_run *run);
/* Inside done: log that the hook returned something it may not. */
void tnl_hook_fail(struct tnl_hook_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "file.lua:12" where the function behind ref was defined. */
void tnl_hook_where(struct tnl_ctx *ctx, int fn_ref, char *out, size_t cap);

/* The run executing now (NULL outside hooks): for helpers such as tunnel.sleep. */
struct tnl_hook_run *tnl_hook_current(void);

/* Count of hook failures since start (metrics). */
extern unsigned long long tnl_hook_errors;

/* Register tunnel.sleep and friends into the table on top of L's stack. */
void tnl_hook_open_helpers(lua_State *L);

#endif

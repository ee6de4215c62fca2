/*
 * hook.c — budgeted, fail-closed hook invocations (see hook.h).
 *
 * The budget is enforced by a count hook that fires every HOOK_STEP VM
 * instructions. LuaJIT does not run hooks inside compiled traces, so the code
 * a hook runs is kept out of the JIT: `tunnel run` switches the JIT off for
 * its states; in a host with the JIT on, hook functions are excluded at
 * registration and, while a hook runs, a call hook excludes every Lua
 * function it calls before that function's first instruction (so a runaway
 * loop anywhere under a hook stays interruptible).
 */
#include "lua/hook.h"
#include "util/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include <luajit.h>

#include "util/log.h"
#include "util/metrics.h"

enum { HOOK_STEP = 1000 };
enum { RUN_READY, RUN_RUNNING, RUN_PARKED, RUN_DONE };

unsigned long long tnl_hook_errors;
static struct tnl_hook_run *current;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct tnl_hook_run *tnl_hook_current(void)
{
    return current;
}

void tnl_hook_where(struct tnl_ctx *ctx, int fn_ref, char *out, size_t cap)
{
    lua_Debug ar;
    lua_State *W = ctx->W;
    lua_rawgeti(W, LUA_REGISTRYINDEX, fn_ref);
    /* A callable table (policy objects) is described by its __call. */
    if (!lua_isfunction(W, -1) && luaL_getmetafield(W, -1, "__call"))
        lua_remove(W, -2);
    if (lua_isfunction(W, -1)) {
        lua_getinfo(W, ">S", &ar);
        snprintf(out, cap, "%s:%d", ar.short_src, ar.linedefined);
    } else {
        snprintf(out, cap, "(%s)", luaL_typename(W, -1));
        lua_pop(W, 1);
    }
}

static void log_failure(struct tnl_hook_run *r, const char *msg, const char *at)
{
    struct tnl_log l;
    char where[256];
    tnl_hook_errors++;
    if (!tnl_log_begin(&l, TNL_LOG_ERROR, "hook_error"))
        return;
    tnl_hook_where(r->ctx, r->fn_ref, where, sizeof where);
    tnl_log_str(&l, "hook", r->hook);
    if (r->detail[0])
        tnl_log_str(&l, "name", r->detail);
    tnl_log_str(&l, "function", where);
    if (at)
        tnl_log_str(&l, "at", at);
    if (r->conn)
        tnl_log_uint(&l, "conn", r->conn);
    tnl_log_str(&l, "error", msg);
    tnl_log_end(&l);
}

void tnl_hook_fail(struct tnl_hook_run *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_failure(r, msg, NULL);
}

/* First Lua frame of a dead coroutine: where the error was raised. */
static void error_site(lua_State *co, char *out, size_t cap)
{
    lua_Debug ar;
    out[0] = 0;
    for (int level = 0; lua_getstack(co, level, &ar); level++) {
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
            snprintf(out, cap, "%s:%d", ar.short_src, ar.currentline);
            return;
        }
    }
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    struct tnl_hook_run *r = current;
    if (!r)
        return;
    if (ar->event != LUA_HOOKCOUNT) {
        /* A call under a hook in a JIT-enabled host: keep the callee interpreted. */
        if (ar->event == LUA_HOOKCALL && lua_getinfo(L, "f", ar)) {
            if (lua_isfunction(L, -1) && !lua_iscfunction(L, -1))
                luaJIT_setmode(L, -1, LUAJIT_MODE_FUNC | LUAJIT_MODE_OFF);
            lua_pop(L, 1);
        }
        return;
    }
    if (L != r->co)
        return;
    r->instructions += HOOK_STEP;
    double spent = r->seconds + (mono() - r->resumed_at);
    const char *what = NULL;
    char limit[64];
    if (r->instructions > r->ctx->budget_instructions) {
        what = "instructions";
        snprintf(limit, sizeof limit, "%ld instructions", r->ctx->budget_instructions);
    } else if (spent > r->ctx->budget_seconds) {
        what = "time";
        snprintf(limit, sizeof limit, "%.0f ms", r->ctx->budget_seconds * 1000);
    }
    if (!what)
        return;
    lua_getinfo(L, "Sl", ar);
    lua_pushfstring(L, "%s:%d: %s hook exceeded its budget of %s", ar->short_src,
                    ar->currentline, r->hook, limit);
    lua_error(L);
}

/* A thread whose function returned is as good as new (LuaJIT resumes a
 * thread in status 0 with a fresh function on its stack): keep a few for
 * the next hooks. One that raised or is suspended is dropped. */
static void put_thread(struct tnl_ctx *ctx, lua_State *co, int ref, int returned)
{
    if (returned && lua_status(co) == 0 && ctx->nspare < TNL_HOOK_SPARE_MAX) {
        lua_settop(co, 0);
        ctx->spare[ctx->nspare] = co;
        ctx->spare_ref[ctx->nspare++] = ref;
        return;
    }
    luaL_unref(ctx->W, LUA_REGISTRYINDEX, ref);
}

static void finish(struct tnl_hook_run *r, int ok)
{
    r->state = RUN_DONE;
    tnl_histogram_observe(&tnl_metrics.hook_latency[tnl_hook_kind_of(r->hook)], r->seconds);
    r->done(r->arg, r, ok);
    put_thread(r->ctx, r->co, r->co_ref, ok);
    tnl_ctx_unref(r->ctx);
    free(r);
}

static void resume(struct tnl_hook_run *r, int nargs);

static void sleep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_hook_run *r = w->data;
    resume(r, 0);
}

static const char *error_text(lua_State *co)
{
    const char *msg = lua_tostring(co, -1);
    return msg ? msg : "(error object is not a string)";
}

static void resume(struct tnl_hook_run *r, int nargs)
{
    struct tnl_hook_run *prev = current;
    lua_Hook old_hook = lua_gethook(r->co);
    int old_mask = lua_gethookmask(r->co), old_count = lua_gethookcount(r->co);

    current = r;
    r->state = RUN_RUNNING;
    r->sleep_for = -1;
    r->resumed_at = mono();
    lua_sethook(r->co, budget_hook, LUA_MASKCOUNT | (r->ctx->owned ? 0 : LUA_MASKCALL), HOOK_STEP);
    int rc = lua_resume(r->co, nargs);
    lua_sethook(r->co, old_hook, old_mask, old_count);
    r->seconds += mono() - r->resumed_at;
    current = prev;

    if (rc == 0) {
        finish(r, 1);
    } else if (rc == LUA_YIELD && r->sleep_for >= 0) {
        lua_settop(r->co, 0);
        r->state = RUN_PARKED;
        ev_timer_init(&r->timer, sleep_cb, r->sleep_for, 0);
        r->timer.data = r;
        ev_timer_start(tnl_ev, &r->timer);
    } else if (rc == LUA_YIELD) {
        log_failure(r, "yielded outside a tunnel helper (coroutine.yield is not allowed in hooks)", NULL);
        finish(r, 0);
    } else {
        char at[256];
        error_site(r->co, at, sizeof at);
        log_failure(r, error_text(r->co), at[0] ? at : NULL);
        finish(r, 0);
    }
}

struct tnl_hook_run *tnl_hook_prepare(struct tnl_ctx *ctx, int fn_ref, const char *hook,
                                      const char *detail, uint64_t conn)
{
    struct tnl_hook_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->ctx = ctx;
    tnl_ctx_ref(ctx);
    if (ctx->nspare > 0) {
        r->co = ctx->spare[--ctx->nspare];
        r->co_ref = ctx->spare_ref[ctx->nspare];
    } else {
        r->co = lua_newthread(ctx->W);
        r->co_ref = luaL_ref(ctx->W, LUA_REGISTRYINDEX);
    }
    r->fn_ref = fn_ref;
    r->hook = hook;
    r->conn = conn;
    if (detail)
        tnl_strlcpy(r->detail, detail, sizeof r->detail);
    lua_rawgeti(r->co, LUA_REGISTRYINDEX, fn_ref);
    return r;
}

void tnl_hook_start(struct tnl_hook_run *r, int nargs, int allow_yield, tnl_hook_done_fn done, void *arg)
{
    r->allow_yield = allow_yield;
    r->done = done;
    r->arg = arg;
    resume(r, nargs);
}

void tnl_hook_cancel(struct tnl_hook_run *r)
{
    if (!r || r->state != RUN_PARKED)
        return;
    ev_timer_stop(tnl_ev, &r->timer);
    luaL_unref(r->ctx->W, LUA_REGISTRYINDEX, r->co_ref);
    tnl_ctx_unref(r->ctx);
    free(r);
}

/* tunnel.sleep(seconds): park the calling hook; only where the hook may yield. */
static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct tnl_hook_run *r = current;
    if (s < 0 || s != s)
        return luaL_argerror(L, 1, "seconds must be a non-negative number");
    if (!r || r->co != L)
        return luaL_error(L, "tunnel.sleep: API disabled outside hooks that may yield (route)");
    if (!r->allow_yield)
        return luaL_error(L, "tunnel.sleep: API disabled in the context of the %s hook (it may not yield)", r->hook);
    r->sleep_for = s;
    return lua_yield(L, 0);
}

struct call_out {
    lua_State *L;
    int n;
    int ok;
};

static void call_done(void *arg, struct tnl_hook_run *run, int ok)
{
    struct call_out *o = arg;
    o->ok = ok;
    if (!ok)
        return;
    o->n = lua_gettop(run->co);
    lua_checkstack(o->L, o->n + 1);
    lua_xmove(run->co, o->L, o->n);
}

/*
 * core.call_hook(name, detail, fn, ...) -> true, results... | false
 * The Lua library's way to call an operator hook (authorize, allocate_port):
 * same budget, same fail-closed logging as hooks called from C. The hook may
 * not yield (the library needs its answer now).
 */
static int l_call_hook(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *detail = luaL_optstring(L, 2, NULL);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 3;
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    lua_pushvalue(L, 3);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    struct tnl_hook_run *run = tnl_hook_prepare(ctx, ref, name, detail, 0);
    if (!run) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "out of memory");
    }
    lua_checkstack(run->co, nargs + 1);
    for (int i = 4; i < 4 + nargs; i++)
        lua_pushvalue(L, i);
    lua_xmove(L, run->co, nargs);
    struct call_out out = { L, 0, 0 };
    int base = lua_gettop(L);
    tnl_hook_start(run, nargs, TNL_HOOK_NO_YIELD, call_done, &out);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    lua_pushboolean(L, out.ok);
    lua_insert(L, base + 1);
    return out.n + 1;
}

void tnl_hook_open_helpers(lua_State *L)
{
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushcfunction(L, l_call_hook);
    lua_setfield(L, -2, "call_hook");
}

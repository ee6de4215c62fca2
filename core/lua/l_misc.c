/*
 * l_misc.c — small runtime services for scripts and the Lua library:
 *   core.after(seconds, fn) -> id      run fn once, later, as a hook (budgeted,
 *                                      may yield); core.cancel(id)
 *   core.write_file(path, data, mode)  atomic replace (temp, fsync, rename)
 *   core.demo_http(addr, text) -> id, bound addr; core.demo_stop(id)
 */
#include "lua/module.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>

#include "demo/demo_http.h"
#include "lua/hook.h"
#include "util/atomic_file.h"

struct timer {
    struct timer *next;
    double id;
    ev_timer w;
    struct tnl_ctx *ctx;        /* referenced */
    int fn_ref;
};

static struct timer *timers;
static double next_timer_id;

enum { MAX_DEMOS = 16 };
static struct tnl_demo_http *demos[MAX_DEMOS];

static void timer_unlink(struct timer *t)
{
    for (struct timer **pp = &timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
}

static void timer_free(struct timer *t)
{
    ev_timer_stop(tnl_ev, &t->w);
    timer_unlink(t);
    tnl_ctx_unref_value(t->ctx, t->fn_ref);
    tnl_ctx_unref(t->ctx);
    free(t);
}

static void timer_done(void *arg, struct tnl_hook_run *run, int ok)
{
    (void)run; (void)ok;    /* failures are logged by the runner */
    struct timer *t = arg;
    timer_free(t);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct timer *t = w->data;
    timer_unlink(t);        /* no longer cancellable once it fired */
    t->next = NULL;
    struct tnl_hook_run *run = tnl_hook_prepare(t->ctx, t->fn_ref, "timer", NULL, 0);
    if (!run) {
        timer_free(t);
        return;
    }
    tnl_hook_start(run, 0, TNL_HOOK_MAY_YIELD, timer_done, t);
}

void tnl_timers_cancel_all(void)
{
    while (timers)
        timer_free(timers);
    for (int i = 0; i < MAX_DEMOS; i++) {
        if (demos[i])
            tnl_demo_http_stop(demos[i]);
        demos[i] = NULL;
    }
}

static int l_after(lua_State *L)
{
    double secs = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    struct timer *t = calloc(1, sizeof *t);
    if (!t)
        return luaL_error(L, "out of memory");
    t->id = ++next_timer_id;
    t->ctx = ctx;
    tnl_ctx_ref(ctx);
    lua_pushvalue(L, 2);
    tnl_lua_nojit(L, -1, ctx);
    t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ev_timer_init(&t->w, timer_cb, secs < 0 ? 0 : secs, 0);
    t->w.data = t;
    ev_timer_start(tnl_ev, &t->w);
    t->next = timers;
    timers = t;
    lua_pushnumber(L, t->id);
    return 1;
}

static int l_cancel(lua_State *L)
{
    double id = luaL_checknumber(L, 1);
    for (struct timer *t = timers; t; t = t->next) {
        if (t->id == id) {
            timer_free(t);
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    lua_pushboolean(L, 0);
    return 1;
}

static int l_write_file(lua_State *L)
{
    size_t len;
    char err[512];
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    int mode = (int)luaL_optinteger(L, 3, 0644);
    if (tnl_file_replace(path, data, len, (mode_t)mode, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_demo_http(lua_State *L)
{
    char err[256];
    const char *addr = luaL_checkstring(L, 1);
    const char *text = luaL_optstring(L, 2, NULL);
    int slot = 0;
    while (slot < MAX_DEMOS && demos[slot])
        slot++;
    if (slot == MAX_DEMOS)
        return luaL_error(L, "too many demo services (at most %d)", MAX_DEMOS);
    demos[slot] = tnl_demo_http_start(addr, text, err, sizeof err);
    if (!demos[slot]) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, slot + 1);
    lua_pushstring(L, tnl_demo_http_addr(demos[slot]));
    return 2;
}

static int l_demo_stop(lua_State *L)
{
    int slot = (int)luaL_checkinteger(L, 1) - 1;
    if (slot < 0 || slot >= MAX_DEMOS || !demos[slot]) {
        lua_pushboolean(L, 0);
        return 1;
    }
    tnl_demo_http_stop(demos[slot]);
    demos[slot] = NULL;
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg misc_fns[] = {
    { "after", l_after },
    { "cancel", l_cancel },
    { "write_file", l_write_file },
    { "demo_http", l_demo_http },
    { "demo_stop", l_demo_stop },
    { NULL, NULL },
};

void tnl_lua_open_misc(lua_State *L)
{
    luaL_register(L, NULL, misc_fns);
}

/*
 * module.c — luaopen_tunnel: the same entry point for `tunnel run` (whose ctx
 * exists before the script runs) and for `require "tunnel"` in any LuaJIT
 * host (which gets a live ctx around its own state).
 */
#include "lua/module.h"
#include "util/str.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include <sodium.h>

#include "loop/loop.h"
#include "lua/hook.h"
#include "mgmt/mgmt.h"
#include "mux/mux.h"
#include "net/pipe.h"
#include "agent/agent.h"
#include "lua/l_agent.h"
#include "lua/l_relay.h"
#include "relay/relay.h"
#include "router/conn.h"
#include "lua/commit.h"
#include "router/entry.h"
#include "util/buf.h"
#include "util/log.h"

static void drain_entries(void *arg)
{
    (void)arg;
    tnl_entries_close_all();
    tnl_relays_drain();
    tnl_agents_drain();
}

static void abort_conns(void *arg)
{
    (void)arg;
    tnl_conns_abort_all("drain deadline");
    tnl_relays_abort();
    tnl_agents_abort();
}

extern double tnl_started_at;

int tnl_runtime_init(void)
{
    if (sodium_init() < 0)
        return -ENOSYS;
    if (!tnl_started_at) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        tnl_started_at = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    int rc = tnl_loop_init();
    if (rc < 0)
        return rc;
    tnl_loop_on_drain(drain_entries, NULL);
    tnl_loop_on_abort(abort_conns, NULL);
    return 0;
}

void tnl_runtime_shutdown(void)
{
    tnl_conns_abort_all("shutdown");
    tnl_entries_close_all();
    tnl_relays_close_all();
    tnl_agents_close_all();
    tnl_timers_cancel_all();
    char err[64];
    tnl_mgmt_configure(NULL, err, sizeof err);
    tnl_ctx_set_current(NULL);      /* the last reference: lua_close */
    tnl_buf_pool_drain();
    tnl_pipe_pool_drain();
    tnl_mux_pool_drain();
}

/*
 * A script that drives the loop itself (tunnel.run / tunnel.step, as written
 * for a host) also works under `tunnel run`: the first such call commits what
 * the script has declared so far and the ctx becomes live. Such a script owns
 * the loop, so `tunnel run` does not reload it; it exits when the script ends.
 */
static int go_live(lua_State *L)
{
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    char err[512];
    if (ctx && ctx->check_only)
        return 0;               /* tunnel run --check: never serve */
    if (!ctx || !ctx->staging)
        return 1;
    if (tnl_commit(ctx, err, sizeof err) < 0)
        luaL_error(L, "%s", err);
    ctx->staging = 0;
    ctx->self_driven = 1;
    tnl_ctx_set_current(ctx);
    return 1;
}

/* tunnel.run(): serve until SIGTERM/SIGINT or tunnel.stop() has drained. */
static int l_run(lua_State *L)
{
    if (!go_live(L)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    tnl_loop_handle_signals(1);
    tnl_loop_run();
    tnl_loop_handle_signals(0);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_step(lua_State *L)
{
    double timeout = luaL_optnumber(L, 1, 0);
    int live = go_live(L);
    if (live)
        tnl_loop_step(timeout);
    lua_pushboolean(L, live);
    return 1;
}

static int l_fd(lua_State *L)
{
    int fd = tnl_loop_fd();
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushstring(L, "the loop's descriptor could not be determined");
        return 2;
    }
    lua_pushinteger(L, fd);
    return 1;
}

static int l_stop(lua_State *L)
{
    double deadline = luaL_optnumber(L, 1, tnl_drain_timeout);
    tnl_loop_drain(deadline);
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, tnl_now());
    return 1;
}

/* core.log(level, event, fields): one JSON line; fields' values may be
 * strings, numbers or booleans (api.lua checked). */
static int l_log(lua_State *L)
{
    enum tnl_log_level lvl;
    if (tnl_log_level_parse(luaL_checkstring(L, 1), &lvl) < 0)
        return luaL_argerror(L, 1, "level must be debug, info, warn or error");
    const char *event = luaL_checkstring(L, 2);
    struct tnl_log l;
    if (!tnl_log_begin(&l, lvl, event))
        return 0;
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (lua_type(L, -2) == LUA_TSTRING) {
                const char *k = lua_tostring(L, -2);
                int t = lua_type(L, -1);
                if (t == LUA_TNUMBER)
                    tnl_log_num(&l, k, lua_tonumber(L, -1));
                else if (t == LUA_TBOOLEAN)
                    tnl_log_bool(&l, k, lua_toboolean(L, -1));
                else if (t == LUA_TSTRING) {
                    size_t n;
                    const char *s = lua_tolstring(L, -1, &n);
                    tnl_log_strn(&l, k, s, n);
                }
            }
            lua_pop(L, 1);
        }
    }
    tnl_log_end(&l);
    return 0;
}

/* core.sniffer(name, match) -> true | nil, err (api.lua checked the name's form). */
static int l_sniffer(lua_State *L)
{
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    const char *name = luaL_checkstring(L, 1);
    for (int i = 0; i < ctx->nsniffers; i++) {
        if (strcmp(ctx->sniffers[i].name, name) == 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "a sniffer named '%s' is already registered", name);
            return 2;
        }
    }
    if (ctx->nsniffers >= TNL_LUA_SNIFFERS_MAX)
        return luaL_error(L, "too many sniffers (at most %d)", TNL_LUA_SNIFFERS_MAX);
    struct tnl_lua_sniffer *s = &ctx->sniffers[ctx->nsniffers];
    tnl_strlcpy(s->name, name, sizeof s->name);
    lua_pushvalue(L, 2);
    tnl_lua_nojit(L, -1, ctx);
    s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ctx->nsniffers++;
    lua_pushboolean(L, 1);
    return 1;
}

/* core.sniffers() -> { name, ... } in the order they are tried. */
static int l_sniffers(lua_State *L)
{
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    lua_createtable(L, ctx->nsniffers, 0);
    for (int i = 0; i < ctx->nsniffers; i++) {
        lua_pushstring(L, ctx->sniffers[i].name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static const luaL_Reg core_fns[] = {
    { "listen", tnl_l_listen },
    { "listener_info", tnl_l_listener_info },
    { "listener_close", tnl_l_listener_close },
    { "sniffer", l_sniffer },
    { "sniffers", l_sniffers },
    { "run", l_run },
    { "step", l_step },
    { "fd", l_fd },
    { "stop", l_stop },
    { "now", l_now },
    { "config", tnl_l_config },
    { "cidr_check", tnl_l_cidr_check },
    { "log", l_log },
    { NULL, NULL },
};

int luaopen_tunnel(lua_State *L)
{
    if (tnl_runtime_init() < 0)
        return luaL_error(L, "tunnel: cannot create the event loop");
    if (!tnl_ctx_of(L)) {
        struct tnl_ctx *ctx = tnl_ctx_new(L, 0);
        if (!ctx)
            return luaL_error(L, "tunnel: out of memory");
        tnl_ctx_set_current(ctx);
        tnl_ctx_unref(ctx);     /* tnl_ctx_current holds it */
    }
    lua_newtable(L);
    luaL_register(L, NULL, core_fns);
    tnl_lua_open_misc(L);
    tnl_lua_open_pki(L);
    tnl_lua_open_crypto(L);
    tnl_lua_open_http(L);
    tnl_lua_open_relay(L);
    tnl_lua_open_agent(L);
    tnl_hook_open_helpers(L);
    lua_pushstring(L, TNL_VERSION);
    lua_setfield(L, -2, "version");

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "tunnel.core");
    lua_pop(L, 3);

    lua_getglobal(L, "require");
    lua_pushstring(L, "tunnel.api");
    lua_call(L, 1, 1);
    return 1;
}

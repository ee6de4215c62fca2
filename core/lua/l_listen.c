/*
 * l_listen.c — core.listen and the listener handle functions.
 *
 * lua/tunnel/api.lua validates the option table (names, types, ranges) and
 * hands a normalized copy here; this file turns it into an entry cfg, resolves
 * the bind address, and declares it (bound at once in a host, at commit under
 * `tunnel run`). Operational failures return nil, message.
 */
#include "lua/module.h"
#include "util/str.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include <luajit.h>

#include "router/entry.h"
#include "token/token.h"

static const char *opt_str(lua_State *L, const char *key, const char *def)
{
    lua_getfield(L, 1, key);
    const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : def;
    lua_pop(L, 1);      /* the string stays alive: it is in the table */
    return s;
}

static double opt_num(lua_State *L, const char *key, double def)
{
    lua_getfield(L, 1, key);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, const char *key)
{
    lua_getfield(L, 1, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Bind address: an IP literal, or a name resolved now (configuration time). */
static int bind_addr(struct tnl_entry_cfg *cfg, char *err, size_t cap)
{
    struct tnl_hostport hp;
    const char *why;
    if (tnl_hostport_parse(cfg->addr, strlen(cfg->addr), &hp, &why) < 0) {
        snprintf(err, cap, "listener '%s': bad addr \"%s\": %s", cfg->name, cfg->addr, why);
        return -EINVAL;
    }
    if (tnl_addr_numeric(hp.host, hp.port, &cfg->bind, &cfg->bindlen) == 0)
        return 0;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
    char port[8];
    snprintf(port, sizeof port, "%u", hp.port);
    int rc = getaddrinfo(hp.host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, cap, "listener '%s': cannot resolve \"%s\": %s", cfg->name, hp.host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&cfg->bind, res->ai_addr, res->ai_addrlen);
    cfg->bindlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Hook functions of a host's state are kept out of the JIT, or the budget's
 * count hook would not fire inside compiled loops (`tunnel run` turns the JIT
 * off for the whole state). */
void tnl_lua_nojit(lua_State *L, int idx, struct tnl_ctx *ctx)
{
    if (ctx->owned)
        return;
    lua_pushvalue(L, idx);
    if (!lua_isfunction(L, -1) && luaL_getmetafield(L, -1, "__call"))
        lua_remove(L, -2);
    if (lua_isfunction(L, -1))
        luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
    lua_pop(L, 1);
}

/* core.listen(opts) -> handle | nil, err */
int tnl_l_listen(lua_State *L)
{
    char err[512];
    luaL_checktype(L, 1, LUA_TTABLE);
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    struct tnl_entry_cfg *cfg = tnl_entry_cfg_new(ctx);
    if (!cfg)
        return luaL_error(L, "out of memory");
    tnl_strlcpy(cfg->addr, opt_str(L, "addr", ""), sizeof cfg->addr);
    tnl_strlcpy(cfg->name, opt_str(L, "name", cfg->addr), sizeof cfg->name);
    cfg->peek_max = (size_t)opt_num(L, "peek", 16384);
    cfg->sniff_timeout = opt_num(L, "sniff_timeout", 5);
    cfg->connect_timeout = opt_num(L, "connect_timeout", 5);
    cfg->idle_timeout = opt_num(L, "idle_timeout", 3600);
    cfg->on_timeout = strcmp(opt_str(L, "on_timeout", "close"), "opaque") == 0 ? TNL_TIMEOUT_OPAQUE
                                                                             : TNL_TIMEOUT_CLOSE;
    cfg->proxy_protocol = opt_bool(L, "proxy_protocol");
    cfg->no_sniff = opt_bool(L, "no_sniff");
    cfg->send_proxy = opt_bool(L, "send_proxy");
    cfg->relay = (uint64_t)opt_num(L, "relay", 0);
    const char *secret = opt_str(L, "token_secret", NULL);
    if (secret) {
        int n = tnl_token_secret_load(secret, cfg->token_secret, sizeof cfg->token_secret, err, sizeof err);
        if (n < 0) {
            tnl_entry_cfg_unref(cfg);
            return luaL_error(L, "listener '%s': %s", opt_str(L, "name", "?"), err);
        }
        cfg->token_len = (size_t)n;
        cfg->token_required = opt_bool(L, "token_required");
    }
    lua_getfield(L, 1, "route");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);      /* a relay entry without a hook routes by exposed name */
    } else {
        tnl_lua_nojit(L, -1, ctx);
        cfg->route_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (bind_addr(cfg, err, sizeof err) < 0) {
        tnl_entry_cfg_unref(cfg);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    uint64_t handle = cfg->handle;
    if (tnl_entry_declare(cfg, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushnumber(L, (lua_Number)handle);
    return 1;
}

/* core.listener_info(handle) -> {name, addr, live} | nil */
int tnl_l_listener_info(lua_State *L)
{
    uint64_t h = (uint64_t)luaL_checknumber(L, 1);
    struct tnl_entry *e = tnl_entry_by_handle(h);
    struct tnl_entry_cfg *cfg = e ? e->cfg : tnl_entry_decl_by_handle(tnl_ctx_of(L), h);
    if (!cfg)
        return 0;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, cfg->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, e ? e->l.addr_str : cfg->addr);
    lua_setfield(L, -2, "addr");
    lua_pushboolean(L, e != NULL);
    lua_setfield(L, -2, "live");
    return 1;
}

/* core.listener_close(handle) -> true | nil, err */
int tnl_l_listener_close(lua_State *L)
{
    uint64_t h = (uint64_t)luaL_checknumber(L, 1);
    struct tnl_entry *e = tnl_entry_by_handle(h);
    if (!e) {
        lua_pushnil(L);
        lua_pushstring(L, "stale handle: the listener is closed");
        return 2;
    }
    tnl_entry_close(e);
    lua_pushboolean(L, 1);
    return 1;
}

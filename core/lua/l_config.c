/*
 * l_config.c — core.config(t): tunnel.config{} after api.lua validated it.
 * Values go into the ctx's settings (merged with earlier calls); a live ctx
 * applies them at once, a staging one at commit (settings.h). The hook budget
 * belongs to the ctx and takes effect at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <sodium.h>

#include "lua/module.h"
#include "lua/settings.h"
#include "util/atomic_file.h"
#include "util/str.h"

static int num(lua_State *L, int idx, const char *k, double *out)
{
    lua_getfield(L, idx, k);
    int ok = lua_isnumber(L, -1);
    if (ok)
        *out = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return ok;
}

static void bucket(lua_State *L, int idx, const char *k, double *rate, double *burst)
{
    lua_getfield(L, idx, k);
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        num(L, t, "rate", rate);
        if (!num(L, t, "burst", burst))
            *burst = *rate;
    }
    lua_pop(L, 1);
}

static void read_limits(lua_State *L, struct tnl_settings *s)
{
    double v;
    lua_getfield(L, 1, "limits");
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        s->limits = tnl_limits_default;       /* what the table leaves out keeps its default */
        bucket(L, t, "connections_per_ip", &s->limits.conn_rate, &s->limits.conn_burst);
        bucket(L, t, "handshakes_per_ip", &s->limits.handshake_rate, &s->limits.handshake_burst);
        if (num(L, t, "max_pending_sniffs", &v))
            s->limits.max_pending_sniffs = (unsigned)v;
        s->has_limits = 1;
    }
    lua_pop(L, 1);
}

static int read_token(const char *path, struct tnl_mgmt_cfg *m, char *err, size_t cap)
{
    size_t n;
    char *t = tnl_file_read(path, sizeof m->token, &n, err, cap);
    if (!t)
        return -1;
    while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
        n--;
    int rc = n >= 16 ? 0 : -1;
    if (rc == 0) {
        memcpy(m->token, t, n);
        m->token_len = n;
    } else {
        snprintf(err, cap, "%s: a management token needs at least 16 characters", path);
    }
    sodium_memzero(t, n);
    free(t);
    return rc;
}

/* management = false | { addr, allow = {cidr...}, token_file } */
static int read_mgmt(lua_State *L, struct tnl_settings *s, char *err, size_t cap)
{
    lua_getfield(L, 1, "management");
    int t = lua_gettop(L), rc = 0;
    if (lua_isboolean(L, t) && !lua_toboolean(L, t)) {
        s->mgmt = -1;
    } else if (lua_istable(L, t)) {
        struct tnl_mgmt_cfg *m = &s->mgmt_cfg;
        struct tnl_hostport hp;
        const char *why;
        sodium_memzero(m->token, sizeof m->token);
        memset(m, 0, sizeof *m);
        lua_getfield(L, t, "addr");
        tnl_strlcpy(m->addr, lua_isstring(L, -1) ? lua_tostring(L, -1) : "127.0.0.1:7777", sizeof m->addr);
        lua_pop(L, 1);
        if (tnl_hostport_parse(m->addr, strlen(m->addr), &hp, &why) < 0 ||
            tnl_addr_numeric(hp.host, hp.port, &m->bind, &m->bindlen) < 0) {
            snprintf(err, cap, "management addr must be \"ip:port\", got \"%s\"", m->addr);
            rc = -1;
        }
        lua_getfield(L, t, "allow");
        int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : -1;
        if (n < 0) {            /* default: loopback only */
            tnl_cidr_parse("127.0.0.0/8", &m->allow[0], &why);
            tnl_cidr_parse("::1/128", &m->allow[1], &why);
            m->nallow = 2;
        }
        for (int i = 0; i < n && i < TNL_MGMT_ACL_MAX && rc == 0; i++) {
            lua_rawgeti(L, -1, i + 1);
            const char *c = lua_tostring(L, -1);
            if (!c || tnl_cidr_parse(c, &m->allow[m->nallow++], &why) < 0) {
                snprintf(err, cap, "management allow[%d]: %s", i + 1, c ? why : "not a string");
                rc = -1;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_getfield(L, t, "token_file");
        if (rc == 0 && lua_isstring(L, -1))
            rc = read_token(lua_tostring(L, -1), m, err, cap);
        lua_pop(L, 1);
        s->mgmt = rc == 0 ? 1 : s->mgmt;
    }
    lua_pop(L, 1);
    return rc;
}

int tnl_l_config(lua_State *L)
{
    char err[512];
    double v;
    luaL_checktype(L, 1, LUA_TTABLE);
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    struct tnl_settings *s = &ctx->settings;
    lua_getfield(L, 1, "log_level");
    if (lua_isstring(L, -1) && tnl_log_level_parse(lua_tostring(L, -1), &s->log_level) == 0)
        s->has_log_level = 1;
    lua_pop(L, 1);
    if (num(L, 1, "drain_timeout", &s->drain_timeout))
        s->has_drain = 1;
    if (num(L, 1, "buffer_size", &v)) {
        s->buffer_size = (size_t)v;
        s->has_buffer = 1;
    }
    lua_getfield(L, 1, "zero_copy");
    if (lua_isboolean(L, -1))
        s->zero_copy = lua_toboolean(L, -1) ? 1 : -1;
    lua_pop(L, 1);
    if (num(L, 1, "hook_instructions", &v))
        ctx->budget_instructions = (long)v;
    num(L, 1, "hook_timeout", &ctx->budget_seconds);
    read_limits(L, s);
    if (read_mgmt(L, s, err, sizeof err) < 0)
        return luaL_error(L, "tunnel.config: %s", err);
    if (!ctx->staging)
        tnl_settings_apply(s, 1);
    return 0;
}

/* core.cidr_check(s) -> true, or nil and why: the parser the ACL uses, so
 * that Lua refuses at the caller's line what C would refuse later. */
int tnl_l_cidr_check(lua_State *L)
{
    struct tnl_cidr c;
    const char *why = "not an address range";
    if (tnl_cidr_parse(luaL_checkstring(L, 1), &c, &why) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/*
 * l_agent.c — agent bindings (see l_agent.h).
 */
#include "lua/l_agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <sodium.h>

#include "lua/hook.h"
#include "util/atomic_file.h"
#include "lua/l_relay.h"
#include "lua/module.h"
#include "util/log.h"
#include "util/str.h"

/* ---- C -> Lua ----------------------------------------------------------- */

static void dispatch(struct tnl_agent *a, int nargs)
{
    lua_State *W = a->cfg->ctx->W;
    if (lua_pcall(W, nargs, 0, 0) != 0) {
        tnl_logf(TNL_LOG_ERROR, "internal_error", "agent dispatcher: %s", lua_tostring(W, -1));
        lua_pop(W, 1);
    }
}

void tnl_lua_agent_event(struct tnl_agent *a, const char *event, const char *why)
{
    lua_State *W = a->cfg->ctx->W;
    char relay[300];
    const struct tnl_hostport *hp = &a->cfg->relays[a->relay_idx % a->cfg->nrelays];
    lua_rawgeti(W, LUA_REGISTRYINDEX, a->cfg->events_ref);
    lua_pushstring(W, event);
    if (strcmp(event, "connected") == 0 || strcmp(event, "reconfigured") == 0) {
        tnl_lua_push_identity(W, &a->relay_id);
        tnl_hostport_format(hp, relay, sizeof relay);
        lua_pushstring(W, relay);
        dispatch(a, 3);
    } else {
        lua_pushstring(W, why ? why : "");
        dispatch(a, 2);
    }
}

void tnl_lua_agent_line(struct tnl_agent *a, const char *line, size_t len)
{
    lua_State *W = a->cfg->ctx->W;
    lua_rawgeti(W, LUA_REGISTRYINDEX, a->cfg->events_ref);
    lua_pushstring(W, "line");
    lua_pushlstring(W, line, len);
    dispatch(a, 2);
}

static void dial_done(void *arg, struct tnl_hook_run *run, int ok)
{
    struct tnl_dial *d = arg;
    lua_State *co = run->co;
    if (!ok) {
        tnl_dial_refuse(d, "dial hook failed");
        return;
    }
    int t = lua_gettop(co) >= 1 ? lua_type(co, 1) : LUA_TNIL;
    if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(co, 1, &len);
        struct tnl_hostport hp;
        const char *err;
        if (tnl_hostport_parse(s, len, &hp, &err) == 0 && hp.port != 0) {
            tnl_dial_target(d, &hp);
            return;
        }
        tnl_hook_fail(run, "returned \"%.*s\", which is not a \"host:port\" (%s)", (int)(len > 200 ? 200 : len), s,
                      hp.port == 0 ? "port 0" : err);
    } else if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(co, 1))) {
        char why[256];
        snprintf(why, sizeof why, "dial: %s", lua_type(co, 2) == LUA_TSTRING ? lua_tostring(co, 2) : "refused");
        tnl_dial_refuse(d, why);
        return;
    } else {
        tnl_hook_fail(run, "returned a %s; expected \"host:port\" or nil, reason", lua_typename(co, t));
    }
    tnl_dial_refuse(d, "dial hook returned an invalid value");
}

static void set_field(lua_State *L, const char *k, const char *v)
{
    if (!v || !*v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void tnl_lua_dial(struct tnl_agent *a, struct tnl_dial *d, const char *service, const char *proto,
                  const char *authority, const char *src, const char *dst)
{
    struct tnl_hook_run *run = tnl_hook_prepare(a->cfg->ctx, a->cfg->dial_ref, "dial", service, 0);
    if (!run) {
        tnl_dial_refuse(d, "out of memory");
        return;
    }
    lua_State *co = run->co;
    lua_createtable(co, 0, 6);
    set_field(co, "service", service);
    set_field(co, "proto", proto);
    set_field(co, "host", authority);
    set_field(co, "src", src);
    set_field(co, "dst", dst);
    set_field(co, "agent", a->cfg->name);
    tnl_dial_set_hook(d, run);
    tnl_hook_start(run, 1, TNL_HOOK_MAY_YIELD, dial_done, d);
}

void tnl_lua_dial_cancel(void *run)
{
    tnl_hook_cancel(run);
}

/* ---- Lua -> C ----------------------------------------------------------- */

static const char *field_str(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    const char *v = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    return v;
}

static double field_num(lua_State *L, int idx, const char *k, double def)
{
    lua_getfield(L, idx, k);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

static int fail(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static int parse_hp(const char *s, struct tnl_hostport *hp, const char *what, char *err, size_t cap)
{
    const char *why;
    if (!s || tnl_hostport_parse(s, strlen(s), hp, &why) < 0) {
        snprintf(err, cap, "%s \"%s\": %s", what, s ? s : "", s ? why : "missing");
        return -1;
    }
    return 0;
}

/* services = { {service = name, target = "h:p", send_proxy = bool}, ... } */
static int read_services(lua_State *L, struct tnl_agent_cfg *cfg, char *err, size_t cap)
{
    lua_getfield(L, 1, "services");
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    for (int i = 0; i < n && i < TNL_AGENT_SERVICES_MAX; i++) {
        lua_rawgeti(L, -1, i + 1);
        int t = lua_gettop(L);
        struct tnl_agent_service *svc = &cfg->services[cfg->nservices];
        tnl_strlcpy(svc->name, field_str(L, t, "service") ? field_str(L, t, "service") : "", sizeof svc->name);
        lua_getfield(L, t, "send_proxy");
        svc->send_proxy = lua_toboolean(L, -1);
        lua_pop(L, 1);
        int rc = parse_hp(field_str(L, t, "target"), &svc->target, "service target", err, cap);
        lua_pop(L, 1);
        if (rc < 0)
            return -1;
        cfg->nservices++;
    }
    lua_pop(L, 1);
    return 0;
}

static int read_list(lua_State *L, const char *key, struct tnl_hostport *out, int max, int *count,
                     const char *what, char *err, size_t cap)
{
    lua_getfield(L, 1, key);
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    for (int i = 0; i < n && i < max; i++) {
        lua_rawgeti(L, -1, i + 1);
        int rc = parse_hp(lua_tostring(L, -1), &out[*count], what, err, cap);
        lua_pop(L, 1);
        if (rc < 0) {
            lua_pop(L, 1);
            return -1;
        }
        (*count)++;
    }
    lua_pop(L, 1);
    return 0;
}

/* core.agent{name, relays, cert, key, ca, pin, server_name, services, allow,
 *            dial, events, backoff_min, backoff_max, connect_timeout, mux} */
static int l_agent(lua_State *L)
{
    char err[512] = "";
    luaL_checktype(L, 1, LUA_TTABLE);
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    struct tnl_agent_cfg *cfg = tnl_agent_cfg_new(ctx);
    if (!cfg)
        return luaL_error(L, "out of memory");
    tnl_strlcpy(cfg->name, field_str(L, 1, "name") ? field_str(L, 1, "name") : "agent", sizeof cfg->name);
    if (field_str(L, 1, "server_name"))
        tnl_strlcpy(cfg->server_name, field_str(L, 1, "server_name"), sizeof cfg->server_name);
    cfg->backoff_min = field_num(L, 1, "backoff_min", cfg->backoff_min);
    cfg->backoff_max = field_num(L, 1, "backoff_max", cfg->backoff_max);
    cfg->connect_timeout = field_num(L, 1, "connect_timeout", cfg->connect_timeout);
    lua_getfield(L, 1, "mux");
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        cfg->mux.max_window = (uint32_t)field_num(L, t, "max_window", cfg->mux.max_window);
        cfg->mux.keepalive_interval = field_num(L, t, "keepalive_interval", cfg->mux.keepalive_interval);
        cfg->mux.keepalive_timeout = field_num(L, t, "keepalive_timeout", cfg->mux.keepalive_timeout);
        cfg->mux.max_streams = (unsigned)field_num(L, t, "max_streams", cfg->mux.max_streams);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "events");
    cfg->events_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, 1, "dial");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
    } else {
        tnl_lua_nojit(L, -1, ctx);
        cfg->dial_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    struct tnl_tls_cfg tc = {
        .server = 0, .cert = field_str(L, 1, "cert"), .key = field_str(L, 1, "key"),
        .ca = field_str(L, 1, "ca"), .pin = field_str(L, 1, "pin"),
    };
    if (field_str(L, 1, "token_file")) {
        size_t n;
        char *tok = tnl_file_read(field_str(L, 1, "token_file"), sizeof cfg->token - 1, &n, err, sizeof err);
        while (tok && n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
            tok[--n] = 0;
        if (!tok || n == 0 || memchr(tok, '\n', n)) {
            if (tok) {
                sodium_memzero(tok, n);
                free(tok);
                snprintf(err, sizeof err, "%s does not hold one token", field_str(L, 1, "token_file"));
            }
            tnl_agent_cfg_unref(cfg);
            lua_pushnil(L);
            lua_pushstring(L, err);
            lua_pushstring(L, "config");
            return 3;
        }
        memcpy(cfg->token, tok, n + 1);
        sodium_memzero(tok, n);
        free(tok);
    }
    if (field_str(L, 1, "cred_dir")) {
        tnl_strlcpy(cfg->cred_dir, field_str(L, 1, "cred_dir"), sizeof cfg->cred_dir);
        tnl_strlcpy(cfg->ca, tc.ca ? tc.ca : "", sizeof cfg->ca);
        tnl_strlcpy(cfg->pin, tc.pin ? tc.pin : "", sizeof cfg->pin);
    }
    if (read_list(L, "relays", cfg->relays, TNL_AGENT_RELAYS_MAX, &cfg->nrelays, "relay", err, sizeof err) < 0 ||
        read_list(L, "allow", cfg->allow, TNL_AGENT_ALLOW_MAX, &cfg->nallow, "allow entry", err, sizeof err) < 0 ||
        read_services(L, cfg, err, sizeof err) < 0 ||
        (cfg->cred_dir[0] ? tnl_agent_tls_load(cfg, err, sizeof err) < 0
                          : !(cfg->tls = tnl_tls_ctx_new(&tc, err, sizeof err))) ||
        (cfg->nrelays == 0 && snprintf(err, sizeof err, "an agent needs at least one relay") > 0)) {
        tnl_agent_cfg_unref(cfg);
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushstring(L, "config");    /* a configuration error: api.lua raises */
        return 3;
    }
    uint64_t handle = cfg->handle;
    tnl_agent_declare(cfg, err, sizeof err);
    lua_pushnumber(L, (lua_Number)handle);
    return 1;
}

static struct tnl_agent *check_agent(lua_State *L)
{
    return tnl_agent_by_handle((uint64_t)luaL_checknumber(L, 1));
}

static int l_agent_send(lua_State *L)
{
    size_t len;
    struct tnl_agent *a = check_agent(L);
    const char *line = luaL_checklstring(L, 2, &len);
    if (!a)
        return fail(L, "stale handle: the agent is gone");
    int rc = tnl_agent_send(a, line, len);
    if (rc < 0)
        return fail(L, strerror(-rc));
    lua_pushboolean(L, 1);
    return 1;
}

static const char *state_name(enum tnl_agent_state s)
{
    static const char *const names[] = { "idle", "connecting", "handshake", "open", "backoff", "stopped" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

/* core.agent_status(handle) -> {name, state, relay, streams, ...} | nil */
static int l_agent_status(lua_State *L)
{
    struct tnl_agent *a = check_agent(L);
    char relay[300];
    if (!a)
        return 0;
    const struct tnl_hostport *hp = &a->cfg->relays[a->relay_idx % a->cfg->nrelays];
    tnl_hostport_format(hp, relay, sizeof relay);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, a->cfg->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, state_name(a->state));
    lua_setfield(L, -2, "state");
    lua_pushstring(L, relay);
    lua_setfield(L, -2, "relay");
    lua_pushinteger(L, a->streams_open);
    lua_setfield(L, -2, "streams");
    lua_pushnumber(L, (lua_Number)a->streams_total);
    lua_setfield(L, -2, "streams_total");
    lua_pushnumber(L, (lua_Number)a->session);
    lua_setfield(L, -2, "attempts");
    if (a->state == TNL_AGENT_OPEN) {
        lua_pushnumber(L, tnl_now() - a->connected_at);
        lua_setfield(L, -2, "uptime");
        tnl_lua_push_identity(L, &a->relay_id);
        lua_setfield(L, -2, "relay_identity");
    }
    return 1;
}

/* core.agent_identity(handle) -> identity of the agent's own certificate | nil, err */
static int l_agent_identity(lua_State *L)
{
    struct tnl_agent *a = check_agent(L);
    struct tnl_identity id;
    char err[512], path[1100];
    if (!a)
        return fail(L, "stale handle: the agent is gone");
    if (!a->cfg->cred_dir[0])
        return fail(L, "static credentials");
    snprintf(path, sizeof path, "%s/current/cert.pem", a->cfg->cred_dir);
    if (tnl_tls_file_identity(path, &id, err, sizeof err) < 0)
        return fail(L, err);
    tnl_lua_push_identity(L, &id);
    return 1;
}

/* core.agent_renew_begin(handle) -> csr_pem | nil, err */
static int l_agent_renew_begin(lua_State *L)
{
    struct tnl_agent *a = check_agent(L);
    char err[512];
    if (!a)
        return fail(L, "stale handle: the agent is gone");
    char *pem = tnl_agent_renew_begin(a, err, sizeof err);
    if (!pem)
        return fail(L, err);
    lua_pushstring(L, pem);
    free(pem);
    return 1;
}

/* core.agent_renew_commit(handle, cert_pem, ca_pem) -> true | nil, err */
static int l_agent_renew_commit(lua_State *L)
{
    struct tnl_agent *a = check_agent(L);
    size_t cl, al;
    const char *cert = luaL_checklstring(L, 2, &cl);
    const char *ca = luaL_checklstring(L, 3, &al);
    char err[512];
    if (!a)
        return fail(L, "stale handle: the agent is gone");
    if (tnl_agent_renew_commit(a, cert, cl, ca, al, err, sizeof err) < 0)
        return fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg agent_fns[] = {
    { "agent_identity", l_agent_identity },
    { "agent_renew_begin", l_agent_renew_begin },
    { "agent_renew_commit", l_agent_renew_commit },
    { "agent", l_agent },
    { "agent_send", l_agent_send },
    { "agent_status", l_agent_status },
    { NULL, NULL },
};

void tnl_lua_open_agent(lua_State *L)
{
    luaL_register(L, NULL, agent_fns);
}

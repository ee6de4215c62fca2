/*
 * l_route.c — call route(conn) and read back its answer (see l_route.h).
 */
#include "lua/l_route.h"

#include <stdio.h>
#include <string.h>
#include <lauxlib.h>

#include "lua/hook.h"
#include "relay/relay.h"
#include "router/conn.h"

static void set_slice(lua_State *L, const char *key, struct tnl_slice s)
{
    if (s.n == 0)
        return;
    lua_pushlstring(L, (const char *)s.p, s.n);
    lua_setfield(L, -2, key);
}

static void set_str(lua_State *L, const char *key, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, key);
}

static void push_alpn(lua_State *L, struct tnl_slice list)
{
    struct tnl_slice name;
    size_t off = 0;
    int i = 0;
    lua_createtable(L, 2, 0);
    while (tnl_sniff_alpn_next(list, &off, &name)) {
        lua_pushlstring(L, (const char *)name.p, name.n);
        lua_rawseti(L, -2, ++i);
    }
    lua_setfield(L, -2, "alpn");
}

static void push_pg(lua_State *L, const struct tnl_sniff_result *sr)
{
    lua_createtable(L, 0, 5);
    set_slice(L, "user", sr->pg.user);
    set_slice(L, "database", sr->pg.database);
    lua_pushboolean(L, sr->pg.ssl);
    lua_setfield(L, -2, "ssl");
    lua_pushboolean(L, sr->pg.gssenc);
    lua_setfield(L, -2, "gssenc");
    lua_pushboolean(L, sr->pg.cancel);
    lua_setfield(L, -2, "cancel");
    lua_setfield(L, -2, "pg");
}

/* Relay entries: conn.service = { service, agent, kind, online } for the
 * service the name would reach by default (return it to accept). */
static void push_service(lua_State *L, const struct tnl_service *svc)
{
    if (!svc)
        return;
    lua_createtable(L, 0, 4);
    set_str(L, "service", svc->name);
    set_str(L, "agent", svc->owner);
    set_str(L, "kind", tnl_service_kind_name(svc->kind));
    lua_pushboolean(L, svc->session != NULL);
    lua_setfield(L, -2, "online");
    lua_setfield(L, -2, "service");
}

/* The conn table handed to route(conn): docs/hooks.md lists every field. */
static void push_conn(lua_State *L, struct tnl_conn *c)
{
    const struct tnl_sniff_result *sr = &c->sr;
    size_t blen;
    const uint8_t *bytes = tnl_conn_bytes(c, &blen);
    lua_createtable(L, 0, 16);
    lua_pushnumber(L, (lua_Number)c->id);
    lua_setfield(L, -2, "id");
    set_str(L, "proto", c->proto);
    set_str(L, "listener", c->cfg->name);
    set_str(L, "src", c->src_str);
    set_str(L, "dst", c->dst_str);
    lua_pushlstring(L, (const char *)bytes, blen);
    lua_setfield(L, -2, "bytes");
    if (strcmp(c->proto, "tls") == 0) {
        set_slice(L, "sni", sr->sni);
        push_alpn(L, sr->alpn);
    } else if (strcmp(c->proto, "http") == 0) {
        set_slice(L, "method", sr->method);
        set_slice(L, "path", sr->path);
        set_slice(L, "host", sr->host);
    } else if (strcmp(c->proto, "postgresql") == 0) {
        push_pg(L, sr);
    } else if (strcmp(c->proto, "ssh") == 0) {
        set_slice(L, "ssh", sr->ssh_version);
    }
    if (c->fields_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->fields_ref);
        lua_setfield(L, -2, "fields");
    }
    if (c->cfg->relay)
        push_service(L, tnl_relay_default_service(tnl_relay_of_entry(c->cfg->relay), c));
    if (c->identity.id[0]) {
        lua_createtable(L, 0, 4);
        set_str(L, "name", c->identity.id);
        set_str(L, "role", c->identity.role);
        lua_pushnumber(L, (lua_Number)c->identity.exp);
        lua_setfield(L, -2, "expires");
        set_str(L, "via", "token");
        lua_setfield(L, -2, "identity");
    }
}

/* {service = name [, agent = name]}: an agent's service. 1 when routed. */
static int route_table_result(struct tnl_conn *c, struct tnl_hook_run *run, lua_State *co)
{
    lua_getfield(co, 1, "service");
    lua_getfield(co, 1, "agent");
    const char *name = lua_type(co, -2) == LUA_TSTRING ? lua_tostring(co, -2) : NULL;
    const char *agent = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : NULL;
    if (!name || (!agent && !lua_isnil(co, -1))) {
        tnl_hook_fail(run, "returned a table without a string 'service' (and optional string 'agent')");
        return 0;
    }
    struct tnl_relay *r = tnl_relay_of_entry(c->cfg->relay);
    struct tnl_service *svc = r ? tnl_service_find(r, agent, name) : NULL;
    if (!svc) {
        char why[200];
        snprintf(why, sizeof why, "route: no service '%s'%s%s is exposed", name, agent ? " of agent " : "",
                 agent ? agent : "");
        tnl_conn_route_reject(c, TNL_REJECT_NO_ROUTE, why);
        return 1;
    }
    tnl_conn_route_service(c, svc);
    return 1;
}

static void route_done(void *arg, struct tnl_hook_run *run, int ok)
{
    struct tnl_conn *c = arg;
    lua_State *co = run->co;
    if (!ok) {
        tnl_conn_route_failed(c, "route hook failed");
        return;
    }
    int n = lua_gettop(co);
    int t = n >= 1 ? lua_type(co, 1) : LUA_TNIL;
    if (t == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(co, 1, &len);
        struct tnl_hostport hp;
        const char *err;
        if (tnl_hostport_parse(s, len, &hp, &err) == 0 && hp.port != 0) {
            tnl_conn_route_upstream(c, &hp);
            return;
        }
        tnl_hook_fail(run, "returned \"%.*s\", which is not an upstream \"host:port\" (%s)",
                      (int)(len > 200 ? 200 : len), s, hp.port == 0 ? "port 0" : err);
    } else if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(co, 1))) {
        int rt = n >= 2 ? lua_type(co, 2) : LUA_TNIL;
        if (rt == LUA_TNIL || rt == LUA_TSTRING) {
            const char *reason = rt == LUA_TSTRING ? lua_tostring(co, 2) : "no route";
            char why[256];
            snprintf(why, sizeof why, "route: %s", reason);
            tnl_conn_route_reject(c, TNL_REJECT_NO_ROUTE, why);
            return;
        }
        tnl_hook_fail(run, "returned nil with a %s as reason; expected a string", lua_typename(co, rt));
    } else if (t == LUA_TTABLE && c->cfg->relay) {
        if (route_table_result(c, run, co))
            return;
    } else {
        tnl_hook_fail(run, "returned a %s; expected \"host:port\"%s or nil, reason", lua_typename(co, t),
                      c->cfg->relay ? ", {service = name [, agent = name]}" : "");
    }
    tnl_conn_route_failed(c, "route hook returned an invalid value");
}

void tnl_route_call(struct tnl_conn *c)
{
    struct tnl_ctx *ctx = c->cfg->ctx;
    struct tnl_hook_run *run = tnl_hook_prepare(ctx, c->cfg->route_ref, "route", c->cfg->name, c->id);
    if (!run) {
        tnl_conn_route_reject(c, TNL_REJECT_UPSTREAM, "out of memory");
        return;
    }
    push_conn(run->co, c);
    c->hook = run;
    tnl_hook_start(run, 1, TNL_HOOK_MAY_YIELD, route_done, c);
}

/*
 * l_relay.c — relay bindings (see l_relay.h).
 */
#include "lua/l_relay.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "lua/module.h"
#include "pki/pki.h"
#include "token/token.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"

/* ---- C -> Lua ----------------------------------------------------------- */

/* Call cfg's dispatcher with the nargs values pushed after it; nres results
 * are left on W (nil-padded) on success. Library code: a failure is a bug in
 * lua/tunnel, logged, never fatal. */
static int dispatch(struct tnl_relay *r, int nargs, int nres)
{
    lua_State *W = r->cfg->ctx->W;
    if (lua_pcall(W, nargs, nres, 0) != 0) {
        tnl_logf(TNL_LOG_ERROR, "internal_error", "relay dispatcher: %s", lua_tostring(W, -1));
        lua_pop(W, 1);
        return -1;
    }
    return 0;
}

static lua_State *begin(struct tnl_relay *r, const char *event)
{
    lua_State *W = r->cfg->ctx->W;
    lua_rawgeti(W, LUA_REGISTRYINDEX, r->cfg->events_ref);
    lua_pushstring(W, event);
    return W;
}

void tnl_lua_push_identity(lua_State *L, const struct tnl_identity *id)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, id->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, id->role);
    lua_setfield(L, -2, "role");
    lua_pushstring(L, id->fingerprint);
    lua_setfield(L, -2, "fingerprint");
    lua_pushnumber(L, (lua_Number)id->expires);
    lua_setfield(L, -2, "expires");
    if (id->issued) {
        lua_pushnumber(L, (lua_Number)id->issued);
        lua_setfield(L, -2, "issued");
    }
    lua_pushstring(L, id->via);
    lua_setfield(L, -2, "via");
}

int tnl_lua_relay_session(struct tnl_relay *r, struct tnl_session *s, char *why, size_t cap)
{
    lua_State *W = begin(r, "session");
    lua_pushnumber(W, (lua_Number)s->id);
    tnl_lua_push_identity(W, &s->peer);
    lua_pushstring(W, s->peer_addr);
    if (dispatch(r, 4, 2) < 0) {
        snprintf(why, cap, "internal error");
        return -1;
    }
    int ok = lua_toboolean(W, -2);
    if (!ok)
        tnl_strlcpy(why, lua_isstring(W, -1) ? lua_tostring(W, -1) : "refused", cap);
    lua_pop(W, 2);
    return ok ? 0 : -1;
}

void tnl_lua_relay_line(struct tnl_relay *r, struct tnl_session *s, const char *line, size_t len)
{
    lua_State *W = begin(r, "line");
    lua_pushnumber(W, (lua_Number)s->id);
    lua_pushlstring(W, line, len);
    dispatch(r, 3, 0);
}

void tnl_lua_relay_end(struct tnl_relay *r, struct tnl_session *s, const char *why)
{
    lua_State *W = begin(r, "end");
    lua_pushnumber(W, (lua_Number)s->id);
    lua_pushstring(W, why ? why : "");
    dispatch(r, 3, 0);
}

static void push_service_info(lua_State *L, const struct tnl_service *svc)
{
    lua_createtable(L, 0, 8);
    lua_pushstring(L, svc->name);
    lua_setfield(L, -2, "service");
    lua_pushstring(L, svc->owner);
    lua_setfield(L, -2, "agent");
    lua_pushstring(L, tnl_service_kind_name(svc->kind));
    lua_setfield(L, -2, "kind");
    if (svc->kind == TNL_SVC_TCP) {
        lua_pushinteger(L, svc->port);
        lua_setfield(L, -2, "port");
    }
    lua_createtable(L, svc->nhosts, 0);
    for (int i = 0; i < svc->nhosts; i++) {
        lua_pushstring(L, svc->hosts[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "hosts");
    lua_pushboolean(L, svc->session != NULL);
    lua_setfield(L, -2, "online");
    lua_pushnumber(L, (lua_Number)svc->conns);
    lua_setfield(L, -2, "connections");
    lua_pushnumber(L, (lua_Number)svc->bytes_in);
    lua_setfield(L, -2, "bytes_in");
    lua_pushnumber(L, (lua_Number)svc->bytes_out);
    lua_setfield(L, -2, "bytes_out");
}

void tnl_lua_relay_released(struct tnl_relay *r, struct tnl_service *svc)
{
    lua_State *W = begin(r, "released");
    push_service_info(W, svc);
    dispatch(r, 2, 0);
}

int tnl_lua_relay_enroll(struct tnl_relay *r, const char *token_hash, const char *name, const char *key_type,
                         int key_bits, const char *src, char *role, size_t role_cap, double *ttl, char *err,
                         size_t err_cap)
{
    lua_State *W = begin(r, "enroll");
    lua_createtable(W, 0, 5);
    lua_pushstring(W, token_hash);
    lua_setfield(W, -2, "token_hash");
    lua_pushstring(W, name);
    lua_setfield(W, -2, "name");
    lua_pushstring(W, key_type);
    lua_setfield(W, -2, "key_type");
    lua_pushinteger(W, key_bits);
    lua_setfield(W, -2, "key_bits");
    lua_pushstring(W, src);
    lua_setfield(W, -2, "src");
    if (dispatch(r, 2, 2) < 0) {
        snprintf(err, err_cap, "internal error");
        return 500;
    }
    int status = lua_isnumber(W, -2) ? (int)lua_tointeger(W, -2) : 500;
    if (status == 200 && lua_istable(W, -1)) {
        lua_getfield(W, -1, "role");
        tnl_strlcpy(role, lua_isstring(W, -1) ? lua_tostring(W, -1) : "", role_cap);
        lua_getfield(W, -2, "ttl");
        if (lua_isnumber(W, -1) && lua_tonumber(W, -1) > 0)
            *ttl = lua_tonumber(W, -1);
        lua_pop(W, 2);
    } else {
        tnl_strlcpy(err, lua_isstring(W, -1) ? lua_tostring(W, -1) : "refused", err_cap);
        if (status == 200)
            status = 500;
    }
    lua_pop(W, 2);
    return status;
}

/* ---- Lua -> C ----------------------------------------------------------- */

static double field_num(lua_State *L, int idx, const char *k, double def)
{
    lua_getfield(L, idx, k);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
    lua_pop(L, 1);
    return v;
}

static const char *field_str(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    const char *v = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    return v;
}

static int fail(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static int bind_addr(struct tnl_relay_cfg *cfg, char *err, size_t cap)
{
    struct tnl_hostport hp;
    const char *why;
    if (tnl_hostport_parse(cfg->addr, strlen(cfg->addr), &hp, &why) < 0) {
        snprintf(err, cap, "relay: bad addr \"%s\": %s", cfg->addr, why);
        return -1;
    }
    if (tnl_addr_numeric(hp.host, hp.port, &cfg->bind, &cfg->bindlen) == 0)
        return 0;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
    char port[8];
    snprintf(port, sizeof port, "%u", hp.port);
    if (getaddrinfo(hp.host, port, &hints, &res) != 0) {
        snprintf(err, cap, "relay: cannot resolve \"%s\"", hp.host);
        return -1;
    }
    memcpy(&cfg->bind, res->ai_addr, res->ai_addrlen);
    cfg->bindlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* shaping = { session = {rate, burst, quota, trickle, window}, service = {...} } */
static void read_shape(lua_State *L, int idx, const char *key, struct tnl_shaper_cfg *c)
{
    lua_getfield(L, idx, "shaping");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, key);
        if (lua_istable(L, -1)) {
            int t = lua_gettop(L);
            c->rate = field_num(L, t, "rate", 0);
            c->burst = field_num(L, t, "burst", 0);
            c->quota = field_num(L, t, "quota", 0);
            c->trickle = field_num(L, t, "trickle", 0);
            c->window = field_num(L, t, "window", 0);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void read_mux(lua_State *L, int idx, struct tnl_mux_cfg *m)
{
    lua_getfield(L, idx, "mux");
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        m->max_window = (uint32_t)field_num(L, t, "max_window", m->max_window);
        m->keepalive_interval = field_num(L, t, "keepalive_interval", m->keepalive_interval);
        m->keepalive_timeout = field_num(L, t, "keepalive_timeout", m->keepalive_timeout);
        m->max_streams = (unsigned)field_num(L, t, "max_streams", m->max_streams);
        m->max_backlog = (unsigned)field_num(L, t, "max_backlog", m->max_backlog);
    }
    lua_pop(L, 1);
}

/* Certificates the relay issues: issuer_ca = "DIR" (ca.crt, ca.key),
 * cert_ttl; enroll = "host:port" for the enrollment listener. */
static int read_issuing(lua_State *L, struct tnl_relay_cfg *cfg, const struct tnl_tls_cfg *tc, char *err,
                        size_t cap)
{
    char path[1100];
    const char *dir = field_str(L, 1, "issuer_ca");
    const char *enroll = field_str(L, 1, "enroll");
    cfg->cert_ttl = field_num(L, 1, "cert_ttl", cfg->cert_ttl);
    if (dir) {
        snprintf(path, sizeof path, "%s/ca.key", dir);
        cfg->ca_key = tnl_pki_key_load(path, err, cap);
        snprintf(path, sizeof path, "%s/ca.crt", dir);
        cfg->ca_cert = cfg->ca_key ? tnl_pki_cert_load(path, err, cap) : NULL;
        if (!cfg->ca_cert)
            return -1;
    }
    if (!enroll)
        return 0;
    if (!dir) {
        snprintf(err, cap, "relay: enrollment needs the CA that signs (issuer_ca)");
        return -1;
    }
    struct tnl_hostport hp;
    const char *why;
    tnl_strlcpy(cfg->enroll_addr, enroll, sizeof cfg->enroll_addr);
    if (tnl_hostport_parse(enroll, strlen(enroll), &hp, &why) < 0 ||
        tnl_addr_numeric(hp.host, hp.port, &cfg->enroll_bind, &cfg->enroll_bindlen) < 0) {
        snprintf(err, cap, "relay: enroll must be \"ip:port\", got \"%s\"", enroll);
        return -1;
    }
    struct tnl_tls_cfg etc = { .server = 1, .cert = tc->cert, .key = tc->key };
    cfg->enroll_tls = tnl_tls_ctx_new(&etc, err, cap);
    return cfg->enroll_tls ? 0 : -1;
}

/* core.relay_sign(handle, csr_pem, name, role, ttl) -> cert_pem, ca_pem | nil, err */
static int l_relay_sign(lua_State *L)
{
    char err[512];
    size_t len;
    struct tnl_relay *r = tnl_relay_by_handle((uint64_t)luaL_checknumber(L, 1));
    const char *csr = luaL_checklstring(L, 2, &len);
    const char *name = luaL_checkstring(L, 3);
    const char *role = luaL_optstring(L, 4, "");
    double ttl = luaL_optnumber(L, 5, r ? r->cfg->cert_ttl : 86400);
    char *cert = NULL, *ca = NULL;
    if (!r)
        return fail(L, "stale handle: the relay is closed");
    if (tnl_relay_issue(r->cfg, csr, len, name, role, ttl, &cert, &ca, err, sizeof err) < 0)
        return fail(L, err);
    tnl_metrics.renewals++;
    lua_pushstring(L, cert);
    lua_pushstring(L, ca);
    free(cert);
    free(ca);
    return 2;
}

/* core.relay{addr, name, cert, key, ca, events, grace, handshake_timeout,
 *            max_sessions, tcp_bind, mux = {...}} -> handle | nil, err */
static int l_relay(lua_State *L)
{
    char err[512];
    luaL_checktype(L, 1, LUA_TTABLE);
    struct tnl_ctx *ctx = tnl_ctx_of(L);
    struct tnl_relay_cfg *cfg = tnl_relay_cfg_new(ctx);
    if (!cfg)
        return luaL_error(L, "out of memory");
    tnl_strlcpy(cfg->addr, field_str(L, 1, "addr") ? field_str(L, 1, "addr") : "", sizeof cfg->addr);
    tnl_strlcpy(cfg->name, field_str(L, 1, "name") ? field_str(L, 1, "name") : cfg->addr, sizeof cfg->name);
    if (field_str(L, 1, "tcp_bind"))
        tnl_strlcpy(cfg->tcp_bind, field_str(L, 1, "tcp_bind"), sizeof cfg->tcp_bind);
    cfg->grace = field_num(L, 1, "grace", cfg->grace);
    cfg->handshake_timeout = field_num(L, 1, "handshake_timeout", cfg->handshake_timeout);
    cfg->max_sessions = (unsigned)field_num(L, 1, "max_sessions", cfg->max_sessions);
    read_mux(L, 1, &cfg->mux);
    read_shape(L, 1, "session", &cfg->shape_session);
    read_shape(L, 1, "service", &cfg->shape_service);
    cfg->stream_idle = field_num(L, 1, "stream_idle", 3600);
    cfg->session_idle = field_num(L, 1, "session_idle", 0);
    lua_getfield(L, 1, "events");
    cfg->events_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    const char *token_secret = field_str(L, 1, "token_secret");
    if (token_secret) {
        int n = tnl_token_secret_load(token_secret, cfg->token_secret, sizeof cfg->token_secret, err, sizeof err);
        if (n < 0) {
            tnl_relay_cfg_unref(cfg);
            lua_pushnil(L);
            lua_pushstring(L, err);
            lua_pushstring(L, "config");
            return 3;
        }
        cfg->token_len = (size_t)n;
    }
    struct tnl_tls_cfg tc = {
        .server = 1, .cert = field_str(L, 1, "cert"), .key = field_str(L, 1, "key"),
        .ca = field_str(L, 1, "ca"), .require_client_cert = token_secret ? 2 : 1,
    };
    cfg->tls = tnl_tls_ctx_new(&tc, err, sizeof err);
    if (!cfg->tls || bind_addr(cfg, err, sizeof err) < 0 || read_issuing(L, cfg, &tc, err, sizeof err) < 0) {
        tnl_relay_cfg_unref(cfg);
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushstring(L, "config");    /* a configuration error: api.lua raises */
        return 3;
    }
    uint64_t handle = cfg->handle;
    if (tnl_relay_declare(cfg, err, sizeof err) < 0)
        return fail(L, err);
    lua_pushnumber(L, (lua_Number)handle);
    return 1;
}

static struct tnl_session *check_session(lua_State *L, int idx)
{
    return tnl_session_by_id((uint64_t)luaL_checknumber(L, idx));
}

static int l_session_send(lua_State *L)
{
    size_t len;
    struct tnl_session *s = check_session(L, 1);
    const char *line = luaL_checklstring(L, 2, &len);
    if (!s)
        return fail(L, "stale handle: the session is gone");
    int rc = tnl_session_send(s, line, len);
    if (rc < 0)
        return fail(L, strerror(-rc));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_session_close(lua_State *L)
{
    struct tnl_session *s = check_session(L, 1);
    if (s)
        tnl_session_close(s, luaL_optstring(L, 2, "closed by the script"));
    lua_pushboolean(L, s != NULL);
    return 1;
}

static int l_session_hello(lua_State *L)
{
    struct tnl_session *s = check_session(L, 1);
    if (s)
        tnl_strlcpy(s->hello, luaL_checkstring(L, 2), sizeof s->hello);
    return 0;
}

static int parse_kind(const char *k, enum tnl_service_kind *out)
{
    if (!k)
        return -1;
    if (strcmp(k, "http") == 0)
        *out = TNL_SVC_HTTP;
    else if (strcmp(k, "tls") == 0)
        *out = TNL_SVC_TLS;
    else if (strcmp(k, "tcp") == 0)
        *out = TNL_SVC_TCP;
    else
        return -1;
    return 0;
}

/* core.expose(session, {service, kind, hosts = {...}, port, send_proxy}) -> true | nil, err */
static int l_expose(lua_State *L)
{
    char err[512] = "";
    const char *hosts[TNL_SERVICE_HOSTS_MAX];
    struct tnl_session *s = check_session(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!s)
        return fail(L, "stale handle: the session is gone");
    struct tnl_service_spec spec = { .name = field_str(L, 2, "service") };
    if (!spec.name || parse_kind(field_str(L, 2, "kind"), &spec.kind) < 0)
        return fail(L, "expose needs service and kind");
    spec.port = (uint16_t)field_num(L, 2, "port", 0);
    lua_getfield(L, 2, "send_proxy");
    spec.send_proxy = lua_toboolean(L, -1);
    lua_getfield(L, 2, "hosts");
    int nh = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    for (int i = 0; i < nh && i < TNL_SERVICE_HOSTS_MAX; i++) {
        lua_rawgeti(L, -1, i + 1);
        hosts[i] = lua_tostring(L, -1);     /* anchored by the hosts table */
        lua_pop(L, 1);
        if (!hosts[i])
            return fail(L, "hosts must be strings");
    }
    spec.hosts = hosts;
    spec.nhosts = nh < TNL_SERVICE_HOSTS_MAX ? nh : TNL_SERVICE_HOSTS_MAX;
    if (tnl_service_expose(s, &spec, err, sizeof err) < 0)
        return fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_unexpose(lua_State *L)
{
    struct tnl_session *s = check_session(L, 1);
    const char *name = luaL_checkstring(L, 2);
    if (!s)
        return fail(L, "stale handle: the session is gone");
    if (tnl_service_unexpose(s, name) < 0)
        return fail(L, "no such service on this session");
    lua_pushboolean(L, 1);
    return 1;
}

static void push_session(lua_State *L, const struct tnl_session *s)
{
    struct tnl_mux_stats st;
    lua_createtable(L, 0, 10);
    lua_pushnumber(L, (lua_Number)s->id);
    lua_setfield(L, -2, "id");
    tnl_lua_push_identity(L, &s->peer);
    lua_setfield(L, -2, "identity");
    lua_pushstring(L, s->peer_addr);
    lua_setfield(L, -2, "src");
    lua_pushnumber(L, tnl_now() - s->started);
    lua_setfield(L, -2, "uptime");
    lua_pushnumber(L, tnl_now() - s->last_active);
    lua_setfield(L, -2, "idle");
    if (s->hello[0]) {
        lua_pushstring(L, s->hello);
        lua_setfield(L, -2, "hello");
    }
    if (s->mux) {
        tnl_mux_stats(s->mux, &st);
        lua_pushinteger(L, st.streams);
        lua_setfield(L, -2, "streams");
        lua_pushnumber(L, (lua_Number)st.bytes_in);
        lua_setfield(L, -2, "bytes_in");
        lua_pushnumber(L, (lua_Number)st.bytes_out);
        lua_setfield(L, -2, "bytes_out");
        lua_pushnumber(L, st.rtt);
        lua_setfield(L, -2, "rtt");
    }
}

/* core.relay_status(handle) -> {addr, sessions = {...}, services = {...}} | nil */
static int l_relay_status(lua_State *L)
{
    struct tnl_relay *r = tnl_relay_by_handle((uint64_t)luaL_checknumber(L, 1));
    if (!r)
        return 0;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, r->l.addr_str);
    lua_setfield(L, -2, "addr");
    lua_createtable(L, (int)r->nsessions, 0);
    int i = 0;
    for (struct tnl_session *s = r->sessions; s; s = s->next) {
        if (s->state == TNL_SESSION_HANDSHAKE)
            continue;
        push_session(L, s);
        lua_rawseti(L, -2, ++i);
    }
    lua_setfield(L, -2, "sessions");
    lua_newtable(L);
    i = 0;
    for (struct tnl_service *svc = r->services; svc; svc = svc->next) {
        push_service_info(L, svc);
        if (svc->session) {
            lua_pushnumber(L, (lua_Number)svc->session->id);
            lua_setfield(L, -2, "session");
        }
        lua_rawseti(L, -2, ++i);
    }
    lua_setfield(L, -2, "services");
    return 1;
}

/* core.session_info(id) -> session table | nil */
static int l_session_info(lua_State *L)
{
    struct tnl_session *s = check_session(L, 1);
    if (!s)
        return 0;
    push_session(L, s);
    return 1;
}

static const luaL_Reg relay_fns[] = {
    { "relay", l_relay },
    { "relay_status", l_relay_status },
    { "relay_sign", l_relay_sign },
    { "session_send", l_session_send },
    { "session_close", l_session_close },
    { "session_hello", l_session_hello },
    { "session_info", l_session_info },
    { "expose", l_expose },
    { "unexpose", l_unexpose },
    { NULL, NULL },
};

void tnl_lua_open_relay(lua_State *L)
{
    luaL_register(L, NULL, relay_fns);
}

/*
 * l_pki.c — credentials from Lua (lua/tunnel/pki.lua wraps these):
 *   core.pki_ca_init(dir [, "rsa"]) -> true | nil, err
 *   core.pki_issue{ca, name, role, server, dns = {...}, ttl, key, out} -> true | nil, err
 *   core.pki_identity(certfile) -> {name, role, fingerprint, expires, via} | nil, err
 */
#include <string.h>
#include <lauxlib.h>

#include "lua/l_relay.h"
#include "lua/module.h"
#include "pki/files.h"

static int fail(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static int l_ca_init(lua_State *L)
{
    char err[512];
    const char *dir = luaL_checkstring(L, 1);
    const char *type = luaL_optstring(L, 2, "p256");
    if (tnl_pki_ca_init_dir(dir, strcmp(type, "rsa") == 0 ? TNL_KEY_RSA2048 : TNL_KEY_P256, "tunnel CA",
                            3650LL * 86400, err, sizeof err) < 0)
        return fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static const char *opt(lua_State *L, const char *k)
{
    lua_getfield(L, 1, k);
    const char *v = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    return v;
}

static int l_issue(lua_State *L)
{
    char err[512];
    const char *dns[17] = { 0 };
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "dns");
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    for (int i = 0; i < n && i < 16; i++) {
        lua_rawgeti(L, -1, i + 1);
        dns[i] = lua_tostring(L, -1);   /* anchored by the dns table */
        lua_pop(L, 1);
    }
    lua_getfield(L, 1, "server");
    lua_getfield(L, 1, "ttl");
    struct tnl_issue_files f = {
        .ca_dir = opt(L, "ca"), .name = opt(L, "name"), .role = opt(L, "role"),
        .server = lua_toboolean(L, -2), .dns = n ? dns : NULL,
        .ttl = lua_isnumber(L, -1) ? (int64_t)lua_tonumber(L, -1) : 86400, .key = opt(L, "key"),
        .out = opt(L, "out"),
    };
    if (!f.ca_dir || !f.name || !f.out)
        return luaL_error(L, "pki_issue needs ca, name and out");
    if (tnl_pki_issue_files(&f, err, sizeof err) < 0)
        return fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_identity(lua_State *L)
{
    char err[512];
    struct tnl_identity id;
    if (tnl_tls_file_identity(luaL_checkstring(L, 1), &id, err, sizeof err) < 0)
        return fail(L, err);
    tnl_lua_push_identity(L, &id);
    return 1;
}

static const luaL_Reg pki_fns[] = {
    { "pki_ca_init", l_ca_init },
    { "pki_issue", l_issue },
    { "pki_identity", l_identity },
    { NULL, NULL },
};

void tnl_lua_open_pki(lua_State *L)
{
    luaL_register(L, NULL, pki_fns);
}

/*
 * l_crypto.c — small crypto and file helpers for the Lua library:
 *   core.sha256_hex(s)          hex SHA-256 (token store keys: tokens are kept hashed)
 *   core.random_token(prefix)   prefix .. base64url(32 random bytes)
 *   core.lock(path) -> fd       exclusive flock on path (created 0600); core.unlock(fd)
 *   core.file_mtime(path)       modification time, or nil
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lauxlib.h>
#include <sodium.h>

#include "lua/module.h"

static int l_sha256_hex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    uint8_t md[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof md + 1];
    crypto_hash_sha256(md, (const uint8_t *)s, n);
    sodium_bin2hex(hex, sizeof hex, md, sizeof md);
    lua_pushstring(L, hex);
    return 1;
}

static int l_random_token(lua_State *L)
{
    const char *prefix = luaL_optstring(L, 1, "");
    uint8_t raw[32];
    char b64[64];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    lua_pushfstring(L, "%s%s", prefix, b64);
    sodium_memzero(b64, sizeof b64);
    return 1;
}

static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot lock %s: %s", path, strerror(e));
        return 2;
    }
    lua_pushinteger(L, fd);
    return 1;
}

static int l_unlock(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    flock(fd, LOCK_UN);
    close(fd);
    return 0;
}

static int l_file_mtime(lua_State *L)
{
    struct stat st;
    if (stat(luaL_checkstring(L, 1), &st) < 0)
        return 0;
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec * 1e-9);
    return 1;
}

static const luaL_Reg crypto_fns[] = {
    { "sha256_hex", l_sha256_hex },
    { "random_token", l_random_token },
    { "lock", l_lock },
    { "unlock", l_unlock },
    { "file_mtime", l_file_mtime },
    { NULL, NULL },
};

void tnl_lua_open_crypto(lua_State *L)
{
    luaL_register(L, NULL, crypto_fns);
}

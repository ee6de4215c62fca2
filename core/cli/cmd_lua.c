/*
 * cmd_lua.c — subcommands written in Lua (those that mostly manage JSON
 * files): a fresh Lua state with the tunnel library, require(module), call
 * module.main(args) and exit with what it returns.
 */
#include <stdio.h>
#include <lauxlib.h>
#include <lualib.h>

#include "cli/cli.h"
#include "lua/module.h"

int tnl_cli_lua(const char *module, int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (!L || tnl_runtime_init() < 0) {
        fprintf(stderr, "tunnel: cannot start Lua\n");
        return 1;
    }
    luaL_openlibs(L);
    tnl_cli_set_paths(L, ".");
    /* The library first (it provides tunnel.core), then the command. */
    lua_getglobal(L, "require");
    lua_pushstring(L, "tunnel");
    int rc = lua_pcall(L, 1, 0, 0);
    if (rc == 0) {
        lua_getglobal(L, "require");
        lua_pushstring(L, module);
        rc = lua_pcall(L, 1, 1, 0);
    }
    if (rc == 0) {
        lua_getfield(L, -1, "main");
        lua_createtable(L, argc, 0);
        for (int i = 0; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i + 1);
        }
        rc = lua_pcall(L, 1, 1, 0);
    }
    int status;
    if (rc != 0) {
        fprintf(stderr, "tunnel: %s\n", lua_tostring(L, -1));
        status = 1;
    } else {
        status = (int)lua_tointeger(L, -1);
    }
    lua_close(L);
    return status;
}

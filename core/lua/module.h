/*
 * module.h — the `tunnel` Lua module: luaopen_tunnel and the C functions of the
 * internal `tunnel.core` table, which lua/tunnel/api.lua wraps into the public
 * API (validation, objects, documentation live there).
 */
#ifndef TNL_MODULE_H
#define TNL_MODULE_H

#include <lua.h>

#include "lua/ctx.h"

int luaopen_tunnel(lua_State *L);

/* Make sure the loop and the router are set up (idempotent). */
int tnl_runtime_init(void);
/* `tunnel run` after the drain: release everything (the script's Lua state
 * included) so that nothing is left for a leak checker to find. */
void tnl_runtime_shutdown(void);
void tnl_timers_cancel_all(void);

void tnl_lua_nojit(lua_State *L, int idx, struct tnl_ctx *ctx);

/* Add core.after/cancel/write_file/demo_http to the table on top of L. */
void tnl_lua_open_misc(lua_State *L);
void tnl_lua_open_pki(lua_State *L);
void tnl_lua_open_crypto(lua_State *L);
void tnl_lua_open_http(lua_State *L);

int tnl_l_config(lua_State *L);
int tnl_l_cidr_check(lua_State *L);
int tnl_l_listen(lua_State *L);
int tnl_l_listener_info(lua_State *L);
int tnl_l_listener_close(lua_State *L);

#endif

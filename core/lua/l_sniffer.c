/*
 * l_sniffer.c — run Lua matchers (see l_sniffer.h).
 */
#include "lua/l_sniffer.h"

#include <lauxlib.h>

#include "lua/hook.h"

struct outcome {
    enum tnl_lua_match m;
    int fields_ref;
};

static void match_done(void *arg, struct tnl_hook_run *run, int ok)
{
    struct outcome *o = arg;
    lua_State *co = run->co;
    o->m = TNL_LUA_FAILED;
    if (!ok)
        return;
    int n = lua_gettop(co);
    int t = n >= 1 ? lua_type(co, 1) : LUA_TNIL;
    if (t == LUA_TNIL) {
        o->m = TNL_LUA_NEED_MORE;
    } else if (t == LUA_TBOOLEAN && !lua_toboolean(co, 1)) {
        o->m = TNL_LUA_NO_MATCH;
    } else if (t == LUA_TBOOLEAN) {
        int ft = n >= 2 ? lua_type(co, 2) : LUA_TNIL;
        if (ft == LUA_TTABLE) {
            lua_pushvalue(co, 2);
            o->fields_ref = luaL_ref(co, LUA_REGISTRYINDEX);
        } else if (ft != LUA_TNIL) {
            tnl_hook_fail(run, "returned true with a %s as fields; expected a table", lua_typename(co, ft));
            return;
        }
        o->m = TNL_LUA_MATCH;
    } else {
        tnl_hook_fail(run, "returned a %s; expected true [, fields], false or nil (need more bytes)",
                      lua_typename(co, t));
    }
}

enum tnl_lua_match tnl_lua_sniffer_run(struct tnl_ctx *ctx, int i, const uint8_t *bytes, size_t len,
                                       uint64_t conn, int *fields_ref)
{
    struct outcome o = { TNL_LUA_FAILED, LUA_NOREF };
    struct tnl_hook_run *run = tnl_hook_prepare(ctx, ctx->sniffers[i].ref, "sniffer",
                                                ctx->sniffers[i].name, conn);
    if (!run)
        return TNL_LUA_FAILED;
    lua_pushlstring(run->co, (const char *)bytes, len);
    /* Matchers may not yield, so done has run when start returns. */
    tnl_hook_start(run, 1, TNL_HOOK_NO_YIELD, match_done, &o);
    *fields_ref = o.fields_ref;
    return o.m;
}

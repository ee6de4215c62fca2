/*
 * ctx.c — script contexts (see ctx.h).
 */
#include "lua/ctx.h"

#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <sodium.h>


struct tnl_ctx *tnl_ctx_current;
static unsigned generations;
static const char ctx_key = 'c';    /* its address keys the ctx in the registry */

struct tnl_ctx *tnl_ctx_new(lua_State *L, int owned)
{
    struct tnl_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->L = L;
    ctx->owned = owned;
    ctx->refs = 1;
    ctx->generation = ++generations;
    ctx->budget_instructions = 1000000;
    ctx->budget_seconds = 0.1;
    ctx->W = lua_newthread(L);
    ctx->W_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, (void *)&ctx_key);
    lua_pushlightuserdata(L, ctx);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return ctx;
}

struct tnl_ctx *tnl_ctx_of(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&ctx_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    struct tnl_ctx *ctx = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return ctx;
}

void tnl_ctx_ref(struct tnl_ctx *ctx)
{
    ctx->refs++;
}

void tnl_ctx_unref_value(struct tnl_ctx *ctx, int ref)
{
    if (ref != LUA_NOREF && ref != LUA_REFNIL)
        luaL_unref(ctx->L, LUA_REGISTRYINDEX, ref);
}

void tnl_ctx_unref(struct tnl_ctx *ctx)
{
    if (!ctx || --ctx->refs > 0)
        return;
    if (tnl_ctx_current == ctx)
        tnl_ctx_current = NULL;
    sodium_memzero(ctx->settings.mgmt_cfg.token, sizeof ctx->settings.mgmt_cfg.token);
    if (ctx->owned) {
        lua_close(ctx->L);
    } else {
        for (int i = 0; i < ctx->nsniffers; i++)
            tnl_ctx_unref_value(ctx, ctx->sniffers[i].ref);
        for (int i = 0; i < ctx->nspare; i++)
            tnl_ctx_unref_value(ctx, ctx->spare_ref[i]);
        luaL_unref(ctx->L, LUA_REGISTRYINDEX, ctx->W_ref);
        lua_pushlightuserdata(ctx->L, (void *)&ctx_key);
        lua_pushnil(ctx->L);
        lua_rawset(ctx->L, LUA_REGISTRYINDEX);
    }
    free(ctx);
}

void tnl_ctx_set_current(struct tnl_ctx *ctx)
{
    if (ctx == tnl_ctx_current)
        return;
    if (ctx)
        tnl_ctx_ref(ctx);
    struct tnl_ctx *old = tnl_ctx_current;
    tnl_ctx_current = ctx;
    tnl_ctx_unref(old);
}

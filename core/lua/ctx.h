/*
 * ctx.h — a script context: one generation of the operator's script.
 *
 * Glossary
 *   ctx       a Lua state plus everything the script declared while loading
 *             (listeners, sniffers, settings). `tunnel run` builds a new ctx
 *             for every (re)load and swaps it in only if the script loaded
 *             cleanly; `require "tunnel"` in a host makes one ctx around the
 *             host's state.
 *   W         a Lua thread owned by the ctx, anchored in its registry, on
 *             which C creates hook coroutines and scratch values. C never
 *             pushes onto whatever thread the host happens to be running.
 *   staging   the ctx is loading under `tunnel run`: declarations are recorded
 *             and only take effect at commit (entry.h). In live mode (a host's
 *             state) they take effect at once.
 *
 * Ownership: a ctx is reference-counted. Staged declarations reference the ctx
 * too: whoever abandons a staging ctx (failed reload, --check) calls
 * tnl_entry_decls_free() first. Live listeners' configs and connections
 * still being sniffed or routed hold references; the old generation's state is
 * closed when the last of them lets go.
 */
#ifndef TNL_CTX_H
#define TNL_CTX_H

#include <stdint.h>
#include <lua.h>

#include "lua/settings.h"

enum { TNL_SNIFFER_NAME_MAX = 32, TNL_LUA_SNIFFERS_MAX = 64 };

struct tnl_lua_sniffer {
    char name[TNL_SNIFFER_NAME_MAX];
    int ref;                        /* match function, in the registry */
};

enum { TNL_HOOK_SPARE_MAX = 16 };

struct tnl_entry_cfg;
struct tnl_relay_cfg;
struct tnl_agent_cfg;

struct tnl_ctx {
    lua_State *L;
    lua_State *W;
    int W_ref;
    int refs;
    int owned;                      /* lua_close(L) when the last reference goes */
    int staging;
    int check_only;                 /* tunnel run --check: declarations are never committed */
    int self_driven;                /* the script ran the loop itself (tunnel.run/step) */
    unsigned generation;
    char script[1024];              /* file the ctx was loaded from, "" in a host */

    struct tnl_lua_sniffer sniffers[TNL_LUA_SNIFFERS_MAX];
    int nsniffers;

    struct tnl_entry_cfg *decls;    /* declared listeners, in order (staging) */
    struct tnl_relay_cfg *relay_decls;
    struct tnl_agent_cfg *agent_decls;

    struct tnl_settings settings;   /* tunnel.config{}: applied at commit */

    /* hook budget: per hook invocation */
    long budget_instructions;
    double budget_seconds;

    /* Lua threads of hooks that returned normally, for the next hooks
     * (lua/hook.c): a thread per call costs an allocation and its GC. */
    lua_State *spare[TNL_HOOK_SPARE_MAX];
    int spare_ref[TNL_HOOK_SPARE_MAX];
    int nspare;
};

/* Make a ctx around L. owned: close L with the ctx. Registers the ctx in L's
 * registry so that tnl_ctx_of(L) finds it from any thread of L. */
struct tnl_ctx *tnl_ctx_new(lua_State *L, int owned);
struct tnl_ctx *tnl_ctx_of(lua_State *L);
void tnl_ctx_ref(struct tnl_ctx *ctx);
void tnl_ctx_unref(struct tnl_ctx *ctx);

/* Drop a registry reference held in ctx's state (no-op for LUA_NOREF). */
void tnl_ctx_unref_value(struct tnl_ctx *ctx, int ref);

/* The ctx scripts see now (new connections use it); NULL before the first load. */
extern struct tnl_ctx *tnl_ctx_current;
void tnl_ctx_set_current(struct tnl_ctx *ctx);

#endif

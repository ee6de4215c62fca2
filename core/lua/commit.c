/*
 * commit.c — make a staged script context live, all or nothing.
 *
 * Every kind of declared object first binds what it needs (listeners, relay
 * listeners); if any bind fails, all binds of this commit are undone and the
 * running configuration is untouched. Only then does each kind swap in the
 * new configuration, which cannot fail. Agents bind nothing (they connect
 * out), so they only apply.
 */
#include "lua/commit.h"

#include "agent/agent.h"
#include "relay/relay.h"
#include "router/entry.h"

int tnl_commit(struct tnl_ctx *ctx, char *err, size_t cap)
{
    struct tnl_relay *relays;
    struct tnl_entry *entries;
    if (tnl_relays_prepare(ctx, &relays, err, cap) < 0)
        return -1;
    if (tnl_entries_prepare(ctx, &entries, err, cap) < 0) {
        tnl_relays_abort_opened(relays);
        return -1;
    }
    tnl_settings_apply(&ctx->settings, ctx->decls || ctx->relay_decls);
    tnl_relays_apply(ctx, relays);
    tnl_entries_apply(ctx, entries);
    tnl_agents_apply(ctx);
    return 0;
}

void tnl_commit_discard(struct tnl_ctx *ctx)
{
    tnl_entry_decls_free(ctx);
    tnl_relay_decls_free(ctx);
    tnl_agent_decls_free(ctx);
}

/*
 * l_sniffer.h — custom protocol matchers written in Lua (tunnel.sniffer{}).
 *
 * match(bytes) returns true [, fields] (this protocol), false (not this one)
 * or nil (need more bytes). Matchers run after the built-ins, in registration
 * order, before the opaque fallback; they may not yield.
 */
#ifndef TNL_L_SNIFFER_H
#define TNL_L_SNIFFER_H

#include <stddef.h>
#include <stdint.h>

#include "lua/ctx.h"
#include "sniff/sniff.h"

enum tnl_lua_match {
    TNL_LUA_MATCH = TNL_SNIFF_MATCH,
    TNL_LUA_NO_MATCH = TNL_SNIFF_NO_MATCH,
    TNL_LUA_NEED_MORE = TNL_SNIFF_NEED_MORE,
    TNL_LUA_FAILED = 10,        /* the matcher raised or misbehaved (logged) */
};

/* Run matcher i over bytes. On MATCH, *fields_ref is a registry reference to
 * the fields table (or LUA_NOREF). */
enum tnl_lua_match tnl_lua_sniffer_run(struct tnl_ctx *ctx, int i, const uint8_t *bytes, size_t len,
                                       uint64_t conn, int *fields_ref);

#endif

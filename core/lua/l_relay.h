/*
 * l_relay.h — relay <-> Lua. The relay calls its cfg's Lua dispatcher
 * (lua/tunnel/relay.lua) for session events; the dispatcher speaks the
 * control protocol and calls the operator's hooks.
 *
 *   events("session", id, identity, src) -> true | false, reason   (authorize connect)
 *   events("line", id, line)                                        (a control message)
 *   events("end", id, reason)                                       (session over)
 *   events("released", {service, agent, kind, port})                (grace period over)
 */
#ifndef TNL_L_RELAY_H
#define TNL_L_RELAY_H

#include <stddef.h>

#include "relay/relay.h"
#include "tls/tls.h"

int tnl_lua_relay_session(struct tnl_relay *r, struct tnl_session *s, char *why, size_t cap);
void tnl_lua_relay_line(struct tnl_relay *r, struct tnl_session *s, const char *line, size_t len);
void tnl_lua_relay_end(struct tnl_relay *r, struct tnl_session *s, const char *why);
void tnl_lua_relay_released(struct tnl_relay *r, struct tnl_service *svc);

/* Push {name, role, fingerprint, expires, via} (shared with the agent side). */
void tnl_lua_push_identity(lua_State *L, const struct tnl_identity *id);

/* Register core.relay, core.session_*, core.expose, ... into the table on top. */
void tnl_lua_open_relay(lua_State *L);

#endif

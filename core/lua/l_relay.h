/*
 * l_relay.h — relay <-> Lua. The relay calls its cfg's Lua dispatcher
 * (lua/tunnel/relay.lua) for session events; the dispatcher speaks the
 * control protocol and calls the operator's hooks.
 *
 *   events("session", id, identity, src) -> true | false, reason   (authorize connect)
 *   events("line", id, line)                                        (a control message)
 *   events("end", id, reason)                                       (session over)
 *   events("released", {service, agent, kind, port})                (grace period over)
 *   events("enroll", {token_hash, name, key_type, key_bits, src})
 *                    -> 200, {role, ttl} | 401/403, reason            (enrollment request)
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
/* An enrollment request: the HTTP status to answer with (200 when granted:
 * role and ttl are filled in), or another status and err. */
int tnl_lua_relay_enroll(struct tnl_relay *r, const char *token_hash, const char *name, const char *key_type,
                         int key_bits, const char *src, char *role, size_t role_cap, double *ttl, char *err,
                         size_t err_cap);

/* Push {name, role, fingerprint, expires, via} (shared with the agent side). */
void tnl_lua_push_identity(lua_State *L, const struct tnl_identity *id);

/* Register core.relay, core.session_*, core.expose, ... into the table on top. */
void tnl_lua_open_relay(lua_State *L);

#endif

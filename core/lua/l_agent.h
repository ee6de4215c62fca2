/*
 * l_agent.h — agent <-> Lua. The agent calls its cfg's dispatcher
 * (lua/tunnel/agent.lua):
 *   events("connected", relay_identity, relay_addr)   say hello, expose
 *   events("line", line)                              a control message
 *   events("disconnected", reason)
 *   events("reconfigured")                            reload: expose the new set
 * and the operator's dial hook for each stream that carries a service:
 *   dial{service, proto, sni_or_host, src, dst} -> "host:port" | nil, reason
 */
#ifndef TNL_L_AGENT_H
#define TNL_L_AGENT_H

#include <stddef.h>
#include <lua.h>

#include "agent/agent.h"

void tnl_lua_agent_event(struct tnl_agent *a, const char *event, const char *why);
void tnl_lua_agent_line(struct tnl_agent *a, const char *line, size_t len);
/* Run the dial hook for d; answers through tnl_dial_target / tnl_dial_refuse. */
void tnl_lua_dial(struct tnl_agent *a, struct tnl_dial *d, const char *service, const char *proto,
                  const char *authority, const char *src, const char *dst);
void tnl_lua_dial_cancel(void *run);

void tnl_lua_open_agent(lua_State *L);

#endif

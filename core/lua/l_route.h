/*
 * l_route.h — the route hook: build the conn table, call route(conn), read
 * back one of its shapes (see docs/hooks.md):
 *   "host:port"            forward there (IPv4, [IPv6], or a name);
 *   nil | false [, reason] refuse, answering in the client's protocol.
 * Anything else is a hook failure: logged, connection refused.
 */
#ifndef TNL_L_ROUTE_H
#define TNL_L_ROUTE_H

struct tnl_conn;

/* Calls back tnl_conn_route_upstream or tnl_conn_route_reject, now or later. */
void tnl_route_call(struct tnl_conn *c);

#endif

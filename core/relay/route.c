/*
 * route.c — where a relay's public connection goes by default: to the
 * service whose exposed name matches the SNI (tls) or Host (http).
 */
#include <stdio.h>

#include "relay/relay.h"
#include "router/conn.h"

struct tnl_service *tnl_relay_default_service(struct tnl_relay *r, const struct tnl_conn *c)
{
    const struct tnl_slice *name = c->sr.sni.n ? &c->sr.sni : c->sr.host.n ? &c->sr.host : NULL;
    if (!r || !name || !c->proto)
        return NULL;
    return tnl_service_by_name(r, c->proto, (const char *)name->p, name->n);
}

void tnl_relay_route(struct tnl_conn *c)
{
    char why[300];
    struct tnl_relay *r = tnl_relay_of_entry(c->cfg->relay);
    struct tnl_service *svc = tnl_relay_default_service(r, c);
    if (svc) {
        tnl_conn_route_service(c, svc);
        return;
    }
    const struct tnl_slice *name = c->sr.sni.n ? &c->sr.sni : c->sr.host.n ? &c->sr.host : NULL;
    if (name)
        snprintf(why, sizeof why, "no agent exposes %s name '%.*s'", c->proto, (int)(name->n > 200 ? 200 : name->n),
                 (const char *)name->p);
    else
        snprintf(why, sizeof why, "no agent service for a %s connection without a name", c->proto);
    tnl_conn_route_reject(c, TNL_REJECT_NO_ROUTE, why);
}

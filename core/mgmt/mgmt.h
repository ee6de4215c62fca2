/*
 * mgmt.h — the management endpoint: a small HTTP server for operators.
 *
 *   GET /health    200 {"status":"ok"} (503 while draining)
 *   GET /status    JSON: uptime, listeners, connections, relays with their
 *                  sessions (identities, addresses, streams, bytes, last
 *                  activity) and services (ports, hosts), agents, limiter state
 *   GET /metrics   Prometheus text format with HELP and TYPE lines
 *
 * Default 127.0.0.1:7777 under `tunnel run`, off in a host unless configured.
 * Access: a source address outside the CIDR ACL (default loopback only) gets
 * 403 and is closed; with a token configured, requests need
 * "Authorization: Bearer <token>" (compared in constant time), else 401.
 */
#ifndef TNL_MGMT_H
#define TNL_MGMT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/addr.h"
#include "util/cidr.h"
#include "util/jsonw.h"

enum { TNL_MGMT_ACL_MAX = 32 };

struct tnl_mgmt_cfg {
    char addr[TNL_ADDR_HOST_MAX + 8];
    struct sockaddr_storage bind;
    socklen_t bindlen;
    struct tnl_cidr allow[TNL_MGMT_ACL_MAX];
    int nallow;
    uint8_t token[256];         /* wiped when replaced */
    size_t token_len;
};

/* Serve with cfg (a copy is kept; the socket is kept if the address is the
 * same), or stop serving with cfg == NULL. 0 or -errno with err. */
int tnl_mgmt_configure(const struct tnl_mgmt_cfg *cfg, char *err, size_t cap);
/* Bound address ("" when off). */
const char *tnl_mgmt_addr(void);

/* The documents (status.c, prom.c). */
void tnl_mgmt_status(struct tnl_jsonw *j);
void tnl_mgmt_metrics(struct tnl_jsonw *out);   /* plain text into the same growing buffer */

#endif

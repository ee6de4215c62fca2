/*
 * conn.h — one public connection through a router entry.
 *
 * States, in order:
 *   SNIFF    read into the peek buffer (PROXY header first if the listener
 *            expects one) until the bytes decide the protocol, the peek limit
 *            is reached, the client ends, or the sniff timeout fires;
 *   ROUTE    the route hook runs (it may park, e.g. in tunnel.sleep);
 *   CONNECT  the upstream is being resolved and connected;
 *   SPLICE   PROXY v2 header (send_proxy) and the peeked bytes are written to the
 *            upstream untouched, then bytes flow both ways (splice.h);
 *   LINGER   a rejection was written; the client's remaining bytes are read and
 *            dropped until it closes (so the answer is not lost to a TCP RST).
 */
#ifndef TNL_CONN_H
#define TNL_CONN_H

#include <stdint.h>
#include <sys/socket.h>

#include "lua/hook.h"
#include "net/connect.h"
#include "net/splice.h"
#include "router/entry.h"
#include "sniff/sniff.h"
#include "token/token.h"
#include "util/addr.h"

enum tnl_conn_state {
    TNL_CONN_SNIFF,
    TNL_CONN_ROUTE,
    TNL_CONN_CONNECT,
    TNL_CONN_SPLICE,
    TNL_CONN_LINGER,
};

/* Why a connection is refused; decides the answer in the client's protocol. */
enum tnl_reject {
    TNL_REJECT_NO_ROUTE,        /* route said no: TLS unrecognized_name, HTTP 404, ... */
    TNL_REJECT_UPSTREAM,        /* upstream unreachable or hook failed: HTTP 502, ... */
    TNL_REJECT_UNAUTHORIZED,    /* a token-authenticated listener without a valid token: HTTP 401 */
    TNL_REJECT_CLOSE,           /* no answer, just close */
};

enum { TNL_PEEK_HEADROOM = 1024 };  /* room to prepend a PROXY v2 header to the peek */

struct tnl_conn {
    struct tnl_conn *prev, *next;
    uint64_t id;
    struct tnl_entry_cfg *cfg;          /* referenced */
    enum tnl_conn_state state;
    struct tnl_io *client;              /* owned */
    struct sockaddr_storage src, dst;   /* src/dst from PROXY header if any */
    char src_str[TNL_ADDR_STR_MAX], dst_str[TNL_ADDR_STR_MAX];
    double t_start;

    /* SNIFF */
    struct tnl_buf *peek;               /* owned; data starts at TNL_PEEK_HEADROOM */
    uint8_t *scratch;                   /* owned; sniffers' reassembly space */
    size_t proxy_len;                   /* PROXY header bytes at the start of the peek */
    unsigned proxy_done : 1;
    unsigned client_eof : 1;
    unsigned sniff_final : 1;           /* no more bytes will come: decide now */
    unsigned pending : 1;               /* counted among the connections not yet spliced */
    ev_timer timer;                     /* sniff timeout, then linger timeout */
    struct tnl_sniff_result sr;
    const char *proto;                  /* static, or the Lua sniffer's name */
    char lua_proto[TNL_SNIFFER_NAME_MAX];
    int fields_ref;                     /* Lua sniffer's fields table, in cfg->ctx */
    uint64_t lua_ruled_out;             /* Lua sniffers that said false */

    /* ROUTE / CONNECT / SPLICE */
    struct tnl_hook_run *hook;          /* while the route hook is parked */
    struct tnl_hostport upstream;
    struct tnl_connect connect;
    struct tnl_io *up;                  /* owned */
    struct tnl_service *service;        /* relay: the agent service it goes to (referenced) */
    struct tnl_token identity;          /* a verified Bearer token (token listeners), id[0] == 0 if none */
    struct tnl_splice splice;
    size_t proxy_sent;                  /* bytes of our PROXY header in the a->b count */

    uint64_t earlier_in, earlier_out;   /* moved by the worker that had it before (move.h) */

    size_t lingered;                    /* bytes dropped while lingering */
    char reason[256];                   /* why it ended, for the close log */
};

/* A socket accepted on an entry (cfg is referenced by the connection) from
 * peer, on the listener's address `local` (NULL for a wildcard address: the
 * socket is then asked which one it was accepted on). */
void tnl_conn_accept(struct tnl_entry_cfg *cfg, int fd, const struct sockaddr *peer, socklen_t plen,
                     const struct sockaddr *local);

/* The route hook decided: an upstream, or a rejection with a reason. */
void tnl_conn_route_upstream(struct tnl_conn *c, const struct tnl_hostport *hp);
void tnl_conn_route_reject(struct tnl_conn *c, enum tnl_reject kind, const char *reason);
/* ... or the route hook failed (counted as reason "hook"; HTTP 502 etc.). */
void tnl_conn_route_failed(struct tnl_conn *c, const char *reason);
/* ... or an agent's service (relay): a stream to its agent, PROXY v2 first. */
void tnl_conn_route_service(struct tnl_conn *c, struct tnl_service *svc);

/* The bytes the route hook sees (after any PROXY header). */
const uint8_t *tnl_conn_bytes(const struct tnl_conn *c, size_t *len);

/* Live connections (status, drain). */
extern struct tnl_conn *tnl_conns;
unsigned tnl_conn_count(void);
/* Bytes moved so far by the open connections (of one service, or all: NULL);
 * closed ones are in tnl_metrics / the service's totals. */
struct tnl_service;
void tnl_conn_live_bytes(const struct tnl_service *svc, uint64_t *in, uint64_t *out);
void tnl_conns_abort_all(const char *reason);

#endif

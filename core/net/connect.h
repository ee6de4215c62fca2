/*
 * connect.h — outbound TCP connection to "host:port" with a deadline.
 *
 * A numeric host connects at once; a name is resolved off the loop (resolve.h)
 * and its addresses are tried in order until one answers, all within the one
 * deadline.
 */
#ifndef TNL_CONNECT_H
#define TNL_CONNECT_H

#include <stdint.h>
#include <sys/socket.h>

#include "loop/loop.h"
#include "net/resolve.h"
#include "util/addr.h"

struct tnl_connect;

/* fd >= 0 on success (connected, non-blocking, TCP_NODELAY; the callee owns it);
 * fd < 0 with errmsg describing the failure. On success c->early_sent says
 * how many of the early bytes have gone out already; it keeps saying so until
 * the next start, so an owner that embeds c counts them from there. */
typedef void (*tnl_connect_fn)(struct tnl_connect *c, int fd, const char *errmsg);

struct tnl_connect {
    ev_io w;
    ev_timer deadline;
    int fd;
    struct tnl_resolve *res;
    struct sockaddr_storage addrs[TNL_RESOLVE_MAX];
    int naddrs, next;
    char target[TNL_ADDR_HOST_MAX + 8];
    char err[160];
    tnl_connect_fn done;
    void *owner;
    int active;
    int starting;
    const void *early;          /* the caller's, untouched until done */
    size_t early_len, early_sent;
};

/* Start connecting; done is called exactly once, never before this returns.
 * early (may be NULL) is what the caller will send first: it is sent as the
 * connect is made, and when the socket takes it the connection is known to
 * be up without waiting for it to turn writable (on loopback and in a LAN
 * the handshake is often over by then). Nothing is sent to an address that
 * refused; the caller sends whatever early_sent leaves over. */
void tnl_connect_start(struct tnl_connect *c, const struct tnl_hostport *hp, double timeout,
                       const void *early, size_t early_len, tnl_connect_fn done, void *owner);
/* Stop without calling done. */
void tnl_connect_cancel(struct tnl_connect *c);

#endif

/*
 * resolve.h — name resolution that does not block the loop.
 *
 * getaddrinfo runs on one worker thread (started on first use); results come
 * back to the loop through an ev_async. A cancelled request is dropped when
 * its answer arrives, and its callback is never called.
 */
#ifndef TNL_RESOLVE_H
#define TNL_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>

enum { TNL_RESOLVE_MAX = 8 };

struct tnl_resolve;

/* n addresses (n > 0), or n = 0 and errmsg (static or from gai_strerror). */
typedef void (*tnl_resolve_fn)(void *arg, const struct sockaddr_storage *addrs, int n,
                               const char *errmsg);

/* NULL when out of memory. */
struct tnl_resolve *tnl_resolve_start(const char *host, uint16_t port, tnl_resolve_fn cb, void *arg);
void tnl_resolve_cancel(struct tnl_resolve *r);

#endif

/*
 * listener.h — a listening TCP socket that hands accepted sockets to its owner.
 *
 * Accepted sockets are non-blocking, close-on-exec, TCP_NODELAY (inherited
 * from the listening socket). When the
 * process runs out of descriptors the listener pauses for a moment instead of
 * spinning on a readable socket it cannot accept from.
 */
#ifndef TNL_LISTENER_H
#define TNL_LISTENER_H

#include <sys/socket.h>

#include "loop/loop.h"
#include "util/addr.h"

struct tnl_listener;

typedef void (*tnl_accept_fn)(struct tnl_listener *l, int fd, const struct sockaddr *peer,
                              socklen_t peerlen);

struct tnl_listener {
    int fd;
    ev_io w;
    ev_timer backoff;
    struct sockaddr_storage addr;   /* as bound (port filled in if 0 was asked) */
    socklen_t addrlen;
    char addr_str[TNL_ADDR_STR_MAX];
    tnl_accept_fn on_accept;
    void *owner;
    unsigned long long accepted;
};

/* Bind and start accepting. Returns 0 or -errno. */
int tnl_listener_open(struct tnl_listener *l, const struct sockaddr *sa, socklen_t len,
                      tnl_accept_fn on_accept, void *owner);
/* Stop accepting for now (drain) / again. */
void tnl_listener_pause(struct tnl_listener *l);
void tnl_listener_resume(struct tnl_listener *l);
/* Stop and close the socket. */
void tnl_listener_close(struct tnl_listener *l);

#endif

/*
 * sock.h — socket set-up shared by listeners and outbound connections.
 *
 * Every socket we own is non-blocking, close-on-exec and has TCP_NODELAY:
 * Nagle plus delayed ACK alone turns a forwarder's p99 from ~8 ms into ~45 ms.
 */
#ifndef TNL_SOCK_H
#define TNL_SOCK_H

#include <sys/socket.h>

enum { TNL_LISTEN_BACKLOG = 4096 };

/* Listeners share their port with other processes (SO_REUSEPORT): only for
 * tunnel run --workers, never by default (two unrelated processes on one
 * port should fail to bind, not split its traffic). */
extern int tnl_sock_reuseport;

/* Bound, listening, non-blocking socket; returns fd or -errno. */
int tnl_sock_listen(const struct sockaddr *sa, socklen_t len);

/* Start a non-blocking connect; returns fd (connect in progress or done) or -errno. */
int tnl_sock_connect(const struct sockaddr *sa, socklen_t len);

/* Result of a finished non-blocking connect: 0 or -errno (SO_ERROR). */
int tnl_sock_connect_result(int fd);

/* TCP_NODELAY on a socket (listening sockets pass it on to those they accept). */
void tnl_sock_nodelay(int fd);

#endif

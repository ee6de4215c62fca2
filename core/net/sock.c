/*
 * sock.c — socket set-up (see sock.h).
 */
#include "net/sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

int tnl_sock_reuseport;

void tnl_sock_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int tnl_sock_listen(const struct sockaddr *sa, socklen_t len)
{
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (tnl_sock_reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    /* "[::]:p" listens on IPv6 only, so that "0.0.0.0:p" can be declared beside it. */
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* Linux copies TCP_NODELAY into every socket accepted from this one:
     * set once here, not by a setsockopt per connection. */
    tnl_sock_nodelay(fd);
    if (bind(fd, sa, len) < 0 || listen(fd, TNL_LISTEN_BACKLOG) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int tnl_sock_connect(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    tnl_sock_nodelay(fd);
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int tnl_sock_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

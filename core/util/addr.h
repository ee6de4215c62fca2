/*
 * addr.h — "host:port" strings and socket addresses.
 *
 * Accepted forms: "1.2.3.4:80", "[::1]:80", "name.example:80". The host part of
 * a name is returned as-is for the resolver; numeric hosts parse to sockaddrs
 * without any lookup.
 */
#ifndef TNL_ADDR_H
#define TNL_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum { TNL_ADDR_HOST_MAX = 256, TNL_ADDR_STR_MAX = 64 };

struct tnl_hostport {
    char host[TNL_ADDR_HOST_MAX];   /* without brackets */
    uint16_t port;
    int bracketed;                  /* written as [v6] */
};

/* Split "host:port". Returns 0, or -EINVAL with *err a static message. */
int tnl_hostport_parse(const char *s, size_t n, struct tnl_hostport *hp, const char **err);

/* "host:port" again, "[v6]:port" when it was written so. */
void tnl_hostport_format(const struct tnl_hostport *hp, char *out, size_t cap);

/* Numeric host to sockaddr. Returns 0, or -EINVAL if the host is not an IP literal. */
int tnl_addr_numeric(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* "1.2.3.4:5", "[::1]:5" (v4-mapped IPv6 shown as IPv4). out must hold TNL_ADDR_STR_MAX. */
void tnl_addr_format(const struct sockaddr *sa, char *out, size_t cap);
/* The IP alone, without port or brackets. */
void tnl_addr_format_ip(const struct sockaddr *sa, char *out, size_t cap);

socklen_t tnl_addr_len(const struct sockaddr *sa);

#endif

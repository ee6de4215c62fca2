/*
 * cidr.h — address ranges ("127.0.0.0/8", "::1/128", "10.1.2.3") and
 * membership; IPv4-mapped IPv6 peers match IPv4 ranges.
 */
#ifndef TNL_CIDR_H
#define TNL_CIDR_H

#include <stdint.h>
#include <sys/socket.h>

struct tnl_cidr {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int bits;
};

/* 0, or -EINVAL with *why a static message. */
int tnl_cidr_parse(const char *s, struct tnl_cidr *out, const char **why);
int tnl_cidr_match(const struct tnl_cidr *c, const struct sockaddr *sa);

#endif

/*
 * cidr.c — address ranges (see cidr.h).
 */
#include "util/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

int tnl_cidr_parse(const char *s, struct tnl_cidr *out, const char **why)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    memset(out, 0, sizeof *out);
    if (hl == 0 || hl >= sizeof host) {
        *why = "not an address range (a.b.c.d/n or ipv6/n)";
        return -EINVAL;
    }
    memcpy(host, s, hl);
    host[hl] = 0;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = 128;
    } else {
        *why = "not an IP address before the '/'";
        return -EINVAL;
    }
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || b < 0 || b > out->bits) {
            *why = "prefix length out of range";
            return -EINVAL;
        }
        out->bits = (int)b;
    }
    return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

int tnl_cidr_match(const struct tnl_cidr *c, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        return c->family == AF_INET && prefix_equal(c->addr, (const uint8_t *)&a4->sin_addr, c->bits);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *ip = a6->sin6_addr.s6_addr;
        if (c->family == AF_INET6)
            return prefix_equal(c->addr, ip, c->bits);
        return IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && prefix_equal(c->addr, ip + 12, c->bits);
    }
    return 0;
}

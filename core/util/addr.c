/*
 * addr.c — host:port parsing and formatting (see addr.h).
 */
#include "util/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *p, size_t n, uint16_t *out)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int valid_name(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '*'))
            return 0;
    }
    return 1;
}

int tnl_hostport_parse(const char *s, size_t n, struct tnl_hostport *hp, const char **err)
{
    const char *host, *colon;
    size_t hn;
    memset(hp, 0, sizeof *hp);
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            *err = "missing ']' after IPv6 address";
            return -EINVAL;
        }
        host = s + 1;
        hn = (size_t)(close - host);
        colon = close + 1;
        if (colon >= s + n || *colon != ':') {
            *err = "missing ':port' after ']'";
            return -EINVAL;
        }
        hp->bracketed = 1;
    } else {
        colon = NULL;
        for (size_t i = n; i > 0; i--) {
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        }
        if (!colon) {
            *err = "missing ':port'";
            return -EINVAL;
        }
        host = s;
        hn = (size_t)(colon - s);
        if (memchr(host, ':', hn)) {
            *err = "IPv6 address must be written in brackets, as [::1]:port";
            return -EINVAL;
        }
    }
    if (hn == 0) {
        *err = "empty host";
        return -EINVAL;
    }
    if (hn >= sizeof hp->host || !valid_name(host, hn)) {
        *err = "host is not a valid name or address";
        return -EINVAL;
    }
    if (parse_port(colon + 1, (size_t)(s + n - (colon + 1)), &hp->port) < 0) {
        *err = "port must be a number from 0 to 65535";
        return -EINVAL;
    }
    memcpy(hp->host, host, hn);
    hp->host[hn] = 0;
    return 0;
}

int tnl_addr_numeric(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    return -EINVAL;
}

socklen_t tnl_addr_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int format_ip(const struct sockaddr *sa, char *ip, size_t cap, uint16_t *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a4->sin_addr, ip, (socklen_t)cap);
        *port = ntohs(a4->sin_port);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        *port = ntohs(a6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
            inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], ip, (socklen_t)cap);
            return 4;
        }
        inet_ntop(AF_INET6, &a6->sin6_addr, ip, (socklen_t)cap);
        return 6;
    }
    snprintf(ip, cap, "?");
    *port = 0;
    return 0;
}

void tnl_addr_format_ip(const struct sockaddr *sa, char *out, size_t cap)
{
    uint16_t port;
    format_ip(sa, out, cap, &port);
}

void tnl_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    int fam = format_ip(sa, ip, sizeof ip, &port);
    snprintf(out, cap, fam == 6 ? "[%s]:%u" : "%s:%u", ip, port);
}

void tnl_hostport_format(const struct tnl_hostport *hp, char *out, size_t cap)
{
    snprintf(out, cap, hp->bracketed ? "[%s]:%u" : "%s:%u", hp->host, hp->port);
}

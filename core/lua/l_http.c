/*
 * l_http.c — core.http_get(addr, path [, token]) -> status, body | nil, err
 * A blocking HTTP/1.1 GET over plain TCP with 5 s timeouts, for the CLI
 * (tunnel status talks to the management endpoint). Never call it from a
 * hook: it would stop the loop.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <lauxlib.h>

#include "http/request.h"
#include "lua/module.h"
#include "util/addr.h"

enum { RESP_MAX = 4 * 1024 * 1024 };

static int fail(lua_State *L, const char *fmt, const char *a, const char *b)
{
    lua_pushnil(L);
    lua_pushfstring(L, fmt, a, b);
    return 2;
}

static int dial(const struct tnl_hostport *hp)
{
    char port[8];
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
    struct timeval tv = { .tv_sec = 5 };
    snprintf(port, sizeof port, "%u", hp->port);
    if (getaddrinfo(hp->host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int l_http_get(lua_State *L)
{
    const char *addr = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const char *token = luaL_optstring(L, 3, NULL);
    struct tnl_hostport hp;
    const char *why;
    if (tnl_hostport_parse(addr, strlen(addr), &hp, &why) < 0)
        return fail(L, "bad address %s: %s", addr, why);
    int fd = dial(&hp);
    if (fd < 0)
        return fail(L, "cannot connect to %s: %s", addr, strerror(errno));
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n", path, addr,
                     token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    if (n <= 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return fail(L, "cannot send the request to %s%s", addr, "");
    }
    char *buf = malloc(RESP_MAX);
    size_t got = 0;
    ssize_t r;
    while (buf && got < RESP_MAX && (r = recv(fd, buf + got, RESP_MAX - got, 0)) > 0)
        got += (size_t)r;
    close(fd);
    int status = 0;
    struct tnl_slice body;
    if (!buf || tnl_http_parse_response((uint8_t *)buf, got, &status, &body, &why) != TNL_SNIFF_MATCH) {
        free(buf);
        return fail(L, "%s did not answer with a complete HTTP response%s", addr, "");
    }
    lua_pushinteger(L, status);
    lua_pushlstring(L, (const char *)body.p, body.n);
    free(buf);
    return 2;
}

void tnl_lua_open_http(lua_State *L)
{
    lua_pushcfunction(L, l_http_get);
    lua_setfield(L, -2, "http_get");
}

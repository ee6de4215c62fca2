/*
 * demo_http.c — the built-in demo HTTP service (see demo_http.h).
 */
#include "demo/demo_http.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/io.h"
#include "net/listener.h"
#include "sniff/proxy.h"
#include "util/addr.h"
#include "util/str.h"

enum { REQ_MAX = 16384, URL_MAX = 512 };

struct tnl_demo_http {
    struct tnl_listener l;
    char text[256];
    unsigned long long requests;
};

struct demo_conn {
    struct tnl_demo_http *d;
    struct tnl_io *io;
    http_parser p;
    char client[TNL_ADDR_STR_MAX];
    char url[URL_MAX];
    char in[REQ_MAX];
    size_t have;
    int proxy_checked;
    int done_msg;
};

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct demo_conn *c = p->data;
    size_t have = strlen(c->url);
    if (have + n >= sizeof c->url)
        n = sizeof c->url - 1 - have;
    memcpy(c->url + have, at, n);
    c->url[have + n] = 0;
    return 0;
}

static int on_complete(http_parser *p)
{
    struct demo_conn *c = p->data;
    char body[1024], resp[1400];
    int keep = http_should_keep_alive(p);
    int bl = snprintf(body, sizeof body, "%s\nrequest: %s %s\nclient: %s\n", c->d->text,
                      http_method_str((enum http_method)p->method), c->url, c->client);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: %s\r\n\r\n%s", bl, keep ? "keep-alive" : "close", body);
    (void)tnl_io_write(c->io, resp, (size_t)n);    /* small: fits the socket buffer */
    c->d->requests++;
    c->url[0] = 0;
    c->done_msg = keep ? 0 : 1;
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_message_complete = on_complete,
};

static void conn_close(struct demo_conn *c)
{
    tnl_io_close(c->io, 0);
    free(c);
}

/* A PROXY header first (from an agent with send_proxy) names the real client. */
static size_t strip_proxy(struct demo_conn *c)
{
    struct tnl_proxy_hdr h;
    const char *err;
    if (c->proxy_checked)
        return 0;
    enum tnl_sniff_status st = tnl_proxy_parse((uint8_t *)c->in, c->have, &h, &err);
    if (st == TNL_SNIFF_NEED_MORE)
        return SIZE_MAX;
    c->proxy_checked = 1;
    if (st != TNL_SNIFF_MATCH)
        return 0;
    if (!h.local)
        tnl_addr_format((struct sockaddr *)&h.src, c->client, sizeof c->client);
    return h.header_len;
}

static void ready(struct tnl_io *io, int events)
{
    struct demo_conn *c = io->owner;
    ssize_t r = tnl_io_read(io, c->in + c->have, sizeof c->in - c->have);
    if (r == -EAGAIN)
        return;
    if (r <= 0) {
        conn_close(c);
        return;
    }
    c->have += (size_t)r;
    size_t skip = strip_proxy(c);
    if (skip == SIZE_MAX)
        return;
    size_t parsed = http_parser_execute(&c->p, &settings, c->in + skip, c->have - skip);
    if (HTTP_PARSER_ERRNO(&c->p) != HPE_OK || parsed != c->have - skip || c->done_msg) {
        if (HTTP_PARSER_ERRNO(&c->p) != HPE_OK) {
            static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            (void)tnl_io_write(io, bad, sizeof bad - 1);
        }
        io->ops->shutdown(io);
        conn_close(c);
        return;
    }
    c->have = 0;    /* the parser keeps its own state between reads */
}

static void on_accept(struct tnl_listener *l, int fd, const struct sockaddr *peer, socklen_t plen)
{
    struct tnl_demo_http *d = l->owner;
    struct demo_conn *c = calloc(1, sizeof *c);
    struct tnl_io *io = c ? tnl_io_fd_new(fd) : NULL;
    if (!io) {
        if (!c)
            close(fd);
        free(c);
        return;
    }
    c->d = d;
    c->io = io;
    tnl_addr_format(peer, c->client, sizeof c->client);
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    io->owner = c;
    io->ready = ready;
    tnl_io_want(io, TNL_IO_READ);
}

struct tnl_demo_http *tnl_demo_http_start(const char *addr, const char *text, char *err, size_t cap)
{
    struct tnl_hostport hp;
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why;
    if (tnl_hostport_parse(addr, strlen(addr), &hp, &why) < 0 ||
        tnl_addr_numeric(hp.host, hp.port, &ss, &len) < 0) {
        snprintf(err, cap, "demo service: addr must be \"ip:port\", got \"%s\"", addr);
        return NULL;
    }
    struct tnl_demo_http *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    tnl_strlcpy(d->text, text ? text : "Hello from the tunnel demo service", sizeof d->text);
    int rc = tnl_listener_open(&d->l, (struct sockaddr *)&ss, len, on_accept, d);
    if (rc < 0) {
        snprintf(err, cap, "demo service: cannot listen on %s: %s", addr, strerror(-rc));
        free(d);
        return NULL;
    }
    return d;
}

const char *tnl_demo_http_addr(const struct tnl_demo_http *d)
{
    return d->l.addr_str;
}

unsigned long long tnl_demo_http_requests(const struct tnl_demo_http *d)
{
    return d->requests;
}

void tnl_demo_http_stop(struct tnl_demo_http *d)
{
    tnl_listener_close(&d->l);
    free(d);
}

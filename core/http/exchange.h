/*
 * exchange.h — one HTTP request, one response, then close: the connection
 * side of the runtime's own small endpoints (management, enrollment).
 *
 * The exchange reads into a buffer of buf_max bytes and, after every read,
 * shows the owner what it has (cbs.data). The owner parses; once it has a
 * request (or a hopeless one, or a full buffer) it answers with
 * tnl_http_exchange_send: the response is written, the write side shut down
 * and the exchange ends. A peer that closes, or sends no complete request
 * within `timeout` seconds, ends it too. The buffer is wiped at the end:
 * bearer and bootstrap tokens pass through it.
 */
#ifndef TNL_HTTP_EXCHANGE_H
#define TNL_HTTP_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop/loop.h"
#include "net/io.h"
#include "util/addr.h"

struct tnl_http_exchange;

struct tnl_http_exchange_cbs {
    /* The bytes read so far (full: the buffer has no room left). Return to
     * read on, or answer (tnl_http_exchange_send) or end the exchange; a full
     * buffer must be answered. */
    void (*data)(struct tnl_http_exchange *x, const uint8_t *buf, size_t len, int full);
    /* Optional: no complete request in time (the exchange then ends). */
    void (*timeout)(struct tnl_http_exchange *x);
    /* Optional: the exchange ends, whatever the reason. */
    void (*done)(struct tnl_http_exchange *x);
};

struct tnl_http_exchange {
    struct tnl_io *io;          /* owned; NULL until tnl_http_exchange_read */
    ev_timer timer;
    char src[TNL_ADDR_STR_MAX]; /* the peer, for logs */
    const struct tnl_http_exchange_cbs *cbs;
    void *owner;
    char *out;
    size_t out_len, out_off;
    size_t len, cap;
    uint8_t buf[];
};

/* The clock (timeout) starts now, before any transport exists: a TLS
 * handshake counts against it. NULL when out of memory. */
struct tnl_http_exchange *tnl_http_exchange_new(size_t buf_max, double timeout, const struct sockaddr *peer,
                                                const struct tnl_http_exchange_cbs *cbs, void *owner);
/* The transport (owned by the exchange from now on, also while a TLS
 * handshake runs on it) ... */
void tnl_http_exchange_attach(struct tnl_http_exchange *x, struct tnl_io *io);
/* ... and reading from it. */
void tnl_http_exchange_read(struct tnl_http_exchange *x);
/* Answer: `out` (malloc'ed, len bytes; taken over) is written, then the
 * exchange ends. out = NULL or len = 0 (out of memory) ends it at once. */
void tnl_http_exchange_send(struct tnl_http_exchange *x, char *out, size_t len);
void tnl_http_exchange_free(struct tnl_http_exchange *x);

#endif

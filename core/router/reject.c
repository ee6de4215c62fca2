/*
 * reject.c — protocol-appropriate refusals (see reject.h).
 */
#include "router/reject.h"

#include <stdio.h>
#include <string.h>

enum {
    TLS_ALERT_FATAL = 2,
    TLS_ALERT_INTERNAL_ERROR = 80,
    TLS_ALERT_UNRECOGNIZED_NAME = 112,
    H2_REFUSED_STREAM = 0x7,
    H2_INTERNAL_ERROR = 0x2,
};

static size_t tls_alert(uint8_t desc, uint8_t *out, size_t cap)
{
    /* RFC 8446 5.1/6: a plaintext alert record, legacy record version 3.3. */
    const uint8_t rec[] = { 0x15, 0x03, 0x03, 0x00, 0x02, TLS_ALERT_FATAL, desc };
    if (cap < sizeof rec)
        return 0;
    memcpy(out, rec, sizeof rec);
    return sizeof rec;
}

static size_t http_status(enum tnl_reject kind, uint8_t *out, size_t cap)
{
    const char *status = kind == TNL_REJECT_NO_ROUTE ? "404 Not Found" :
                         kind == TNL_REJECT_UNAUTHORIZED ? "401 Unauthorized" : "502 Bad Gateway";
    const char *why = kind == TNL_REJECT_NO_ROUTE ? "no route for this host" :
                      kind == TNL_REJECT_UNAUTHORIZED ? "a valid Bearer token is required" : "upstream unavailable";
    const char *extra = kind == TNL_REJECT_UNAUTHORIZED ? "WWW-Authenticate: Bearer realm=\"tunnel\"\r\n" : "";
    char body[96];
    int bl = snprintf(body, sizeof body, "%s: %s\n", status, why);
    int n = snprintf((char *)out, cap,
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s"
                     "Connection: close\r\n\r\n%s", status, bl, extra, body);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t h2_goaway(enum tnl_reject kind, uint8_t *out, size_t cap)
{
    /* RFC 9113 3.4: the server preface is a SETTINGS frame; then GOAWAY (6.8)
     * with last-stream-id 0. */
    static const uint8_t settings[9] = { 0, 0, 0, 0x04, 0, 0, 0, 0, 0 };
    uint8_t goaway[9 + 8] = { 0, 0, 8, 0x07, 0, 0, 0, 0, 0 };
    put32(goaway + 9, 0);
    put32(goaway + 13, kind == TNL_REJECT_NO_ROUTE ? H2_REFUSED_STREAM : H2_INTERNAL_ERROR);
    if (cap < sizeof settings + sizeof goaway)
        return 0;
    memcpy(out, settings, sizeof settings);
    memcpy(out + sizeof settings, goaway, sizeof goaway);
    return sizeof settings + sizeof goaway;
}

static size_t pg_field(uint8_t *out, size_t cap, size_t at, char type, const char *val)
{
    size_t n = strlen(val) + 1;
    if (at + 1 + n > cap)
        return 0;
    out[at] = (uint8_t)type;
    memcpy(out + at + 1, val, n);
    return at + 1 + n;
}

static size_t pg_error(enum tnl_reject kind, const struct tnl_sniff_result *sr, uint8_t *out, size_t cap)
{
    /* ErrorResponse ('E', int32 length, fields, terminating NUL). libpq reads
     * it also as the answer to an SSLRequest or GSSENCRequest. */
    if (sr->pg.cancel)
        return 0;
    const char *code = kind == TNL_REJECT_NO_ROUTE ? "08004" : "08006";
    const char *msg = kind == TNL_REJECT_NO_ROUTE ? "tunnel: no route for this connection"
                                                  : "tunnel: upstream unavailable";
    size_t at = 5;
    if (!(at = pg_field(out, cap, at, 'S', "FATAL")) || !(at = pg_field(out, cap, at, 'V', "FATAL")) ||
        !(at = pg_field(out, cap, at, 'C', code)) || !(at = pg_field(out, cap, at, 'M', msg)) ||
        at + 1 > cap)
        return 0;
    out[at++] = 0;
    out[0] = 'E';
    put32(out + 1, (uint32_t)(at - 1));
    return at;
}

size_t tnl_reject_answer(const char *proto, const struct tnl_sniff_result *sr, enum tnl_reject kind,
                         uint8_t *out, size_t cap)
{
    if (!proto || kind == TNL_REJECT_CLOSE)
        return 0;
    if (kind == TNL_REJECT_UNAUTHORIZED)
        return strcmp(proto, "http") == 0 ? http_status(kind, out, cap) : 0;
    if (strcmp(proto, "tls") == 0)
        return tls_alert(kind == TNL_REJECT_NO_ROUTE ? TLS_ALERT_UNRECOGNIZED_NAME
                                                     : TLS_ALERT_INTERNAL_ERROR, out, cap);
    if (strcmp(proto, "http") == 0)
        return http_status(kind, out, cap);
    if (strcmp(proto, "http2") == 0)
        return h2_goaway(kind, out, cap);
    if (strcmp(proto, "postgresql") == 0)
        return pg_error(kind, sr, out, cap);
    return 0;
}

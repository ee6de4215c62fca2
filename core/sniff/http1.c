/*
 * http1.c — HTTP/1.0 and HTTP/1.1 request sniffer: method, request-target, Host.
 *
 *   request-line      RFC 9112 §3 (method SP request-target SP HTTP-version CRLF)
 *   field lines       RFC 9112 §5 (name ":" OWS value OWS), §2.2 (bare LF accepted)
 *   Host              RFC 9110 §7.2 (more than one Host field: reject)
 *   Authorization     RFC 9110 §11.6.2 (kept for token-authenticated listeners;
 *                     more than one: reject)
 *
 * Decides NO_MATCH as soon as the first bytes cannot be "METHOD SP" and when the
 * request line is not HTTP/1.0 or HTTP/1.1 (so other line protocols, "PRI *
 * HTTP/2.0" and HTTP/0.9 do not match); MATCH at the empty line ending the
 * header block; INVALID for a malformed or ambiguous header block.
 */
#include <string.h>
#include <strings.h>

#include "sniff/sniff.h"

enum {
    HTTP_METHOD_MAX = 16,
};

struct http_req {
    struct tnl_slice method;
    struct tnl_slice path;
    struct tnl_slice host;
    struct tnl_slice authorization;
    uint8_t minor;
};

static int http_method_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* request-target: any visible byte (obs-text allowed), no SP and no control. */
static int http_target_char(uint8_t c)
{
    return c > 0x20 && c != 0x7f;
}

/* RFC 9110 §5.6.2 tchar. */
static int http_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Scan a run of bytes accepted by ok() from *i, at most max; NEED_MORE when the
 * peek ends inside it, NO_MATCH unless it is non-empty and followed by SP. */
static enum tnl_sniff_status http_word(const uint8_t *b, size_t n, size_t *i, size_t max,
                                       int (*ok)(uint8_t), struct tnl_slice *out)
{
    size_t start = *i, j = *i;

    while (j < n && j - start < max && ok(b[j]))
        j++;
    if (j == n)
        return TNL_SNIFF_NEED_MORE;
    if (b[j] != ' ' || j == start)
        return TNL_SNIFF_NO_MATCH;
    out->p = b + start;
    out->n = j - start;
    *i = j + 1;
    return TNL_SNIFF_MATCH;
}

/* "HTTP/1." DIGIT (CR) LF, where DIGIT is 0 or 1. */
static enum tnl_sniff_status http_version(const uint8_t *b, size_t n, size_t *i, uint8_t *minor)
{
    static const char v[] = "HTTP/1.";
    size_t j = *i;

    for (size_t k = 0; k < sizeof(v) - 1; k++, j++) {
        if (j == n)
            return TNL_SNIFF_NEED_MORE;
        if (b[j] != (uint8_t)v[k])
            return TNL_SNIFF_NO_MATCH;
    }
    if (j == n)
        return TNL_SNIFF_NEED_MORE;
    if (b[j] != '0' && b[j] != '1')
        return TNL_SNIFF_NO_MATCH;
    *minor = (uint8_t)(b[j++] - '0');
    if (j < n && b[j] == '\r')
        j++;
    if (j == n)
        return TNL_SNIFF_NEED_MORE;
    if (b[j] != '\n')
        return TNL_SNIFF_NO_MATCH;
    *i = j + 1;
    return TNL_SNIFF_MATCH;
}

static enum tnl_sniff_status http_request_line(const uint8_t *b, size_t n, size_t *i, struct http_req *q)
{
    enum tnl_sniff_status st;

    st = http_word(b, n, i, HTTP_METHOD_MAX, http_method_char, &q->method);
    if (st != TNL_SNIFF_MATCH)
        return st;
    st = http_word(b, n, i, SIZE_MAX, http_target_char, &q->path);
    if (st != TNL_SNIFF_MATCH)
        return st;
    return http_version(b, n, i, &q->minor);
}

static struct tnl_slice http_trim(const uint8_t *p, size_t n)
{
    while (n > 0 && (p[0] == ' ' || p[0] == '\t'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return (struct tnl_slice){ .p = p, .n = n };
}

/* One field line, without its line ending. Returns NULL or a static error. */
static const char *http_field(const uint8_t *p, size_t n, struct http_req *q, int *seen_host)
{
    const uint8_t *colon = memchr(p, ':', n);

    if (p[0] == ' ' || p[0] == '\t')
        return "http: obsolete line folding in header";
    if (!colon)
        return "http: header line without ':'";
    size_t name = (size_t)(colon - p);
    if (name == 0)
        return "http: empty header name";
    for (size_t k = 0; k < name; k++)
        if (!http_tchar(p[k]))
            return "http: invalid character in header name";
    for (size_t k = name + 1; k < n; k++)
        if ((p[k] < 0x20 && p[k] != '\t') || p[k] == 0x7f)
            return "http: control character in header value";
    if (name == 4 && strncasecmp((const char *)p, "host", 4) == 0) {
        if ((*seen_host)++)
            return "http: duplicate Host header";
        q->host = http_trim(colon + 1, n - name - 1);
    } else if (name == 13 && strncasecmp((const char *)p, "authorization", 13) == 0) {
        if (q->authorization.p)
            return "http: duplicate Authorization header";
        q->authorization = http_trim(colon + 1, n - name - 1);
    }
    return NULL;
}

/* Field lines from *i up to and including the empty line. */
static enum tnl_sniff_status http_fields(const uint8_t *b, size_t n, size_t i, struct http_req *q,
                                         const char **err)
{
    int seen_host = 0;

    for (;;) {
        const uint8_t *lf = memchr(b + i, '\n', n - i);
        if (!lf)
            return TNL_SNIFF_NEED_MORE;
        size_t end = (size_t)(lf - b), next = end + 1;
        if (end > i && b[end - 1] == '\r')
            end--;
        if (end == i)
            return TNL_SNIFF_MATCH;
        *err = http_field(b + i, end - i, q, &seen_host);
        if (*err)
            return TNL_SNIFF_INVALID;
        i = next;
    }
}

enum tnl_sniff_status tnl_sniff_http1(const uint8_t *buf, size_t len, struct tnl_sniff_result *r)
{
    struct http_req q = { 0 };
    const char *err = NULL;
    size_t i = 0;

    enum tnl_sniff_status st = http_request_line(buf, len, &i, &q);
    if (st != TNL_SNIFF_MATCH)
        return st;
    st = http_fields(buf, len, i, &q, &err);
    if (st == TNL_SNIFF_INVALID) {
        r->proto = "http";
        r->error = err;
    } else if (st == TNL_SNIFF_MATCH) {
        r->proto = "http";
        r->method = q.method;
        r->path = q.path;
        r->host = q.host;
        r->authorization = q.authorization;
        r->http_minor = q.minor;
    }
    return st;
}

/*
 * request.c — enrollment requests and responses over http-parser (see request.h).
 */
#include "enroll/request.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct pstate {
    struct tnl_enroll_req *req;
    struct tnl_slice body;
    int in_auth;                /* the header being read is Authorization */
    int auth_seen;
    int done;
    int too_big;
    const char *bad;
};

/* http-parser may hand an element over in pieces; they are contiguous here
 * because the whole buffer is parsed in one call. */
static void extend(struct tnl_slice *s, const char *at, size_t n)
{
    if (!s->p)
        s->p = (const uint8_t *)at;
    s->n = (size_t)((const uint8_t *)at + n - s->p);
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct pstate *st = p->data;
    extend(&st->req->path, at, n);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct pstate *st = p->data;
    st->in_auth = n == 13 && strncasecmp(at, "Authorization", 13) == 0;
    if (st->in_auth && st->auth_seen++) {
        st->bad = "two Authorization headers";
        return 1;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct pstate *st = p->data;
    if (st->in_auth)
        extend(&st->req->token, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct pstate *st = p->data;
    if (p->content_length == ULLONG_MAX || p->content_length == 0) {
        st->bad = "a body with Content-Length is required";
        return 1;
    }
    if (p->content_length > TNL_ENROLL_BODY_MAX) {
        st->bad = "request body larger than 16 KiB";
        return 1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct pstate *st = p->data;
    extend(&st->body, at, n);
    return 0;
}

static int on_complete(http_parser *p)
{
    struct pstate *st = p->data;
    st->done = 1;
    return 1;       /* stop: one request per connection */
}

static const http_parser_settings req_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* "Bearer <token>" -> <token>; 0 or -1. */
static int bearer(struct tnl_slice *t)
{
    if (t->n < 8 || strncasecmp((const char *)t->p, "Bearer ", 7) != 0)
        return -1;
    t->p += 7;
    t->n -= 7;
    while (t->n && (*t->p == ' ' || *t->p == '\t')) {
        t->p++;
        t->n--;
    }
    while (t->n && (t->p[t->n - 1] == ' ' || t->p[t->n - 1] == '\t'))
        t->n--;
    return t->n ? 0 : -1;
}

enum tnl_sniff_status tnl_enroll_parse(const uint8_t *buf, size_t len, struct tnl_enroll_req *req, const char **why)
{
    http_parser p;
    struct pstate st = { .req = req };
    memset(req, 0, sizeof *req);
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &st;
    size_t used = http_parser_execute(&p, &req_settings, (const char *)buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    if (st.bad || (e != HPE_OK && e != HPE_PAUSED && !(e == HPE_CB_message_complete && st.done))) {
        *why = st.bad ? st.bad : http_errno_description(e);
        return TNL_SNIFF_INVALID;
    }
    if (!st.done) {
        if (len > TNL_ENROLL_HEAD_MAX + TNL_ENROLL_BODY_MAX) {
            *why = "request too large";
            return TNL_SNIFF_INVALID;
        }
        *why = NULL;
        return TNL_SNIFF_NEED_MORE;
    }
    (void)used;
    req->method = (int)p.method;
    req->body = st.body;
    if (req->method != HTTP_POST) {
        *why = "only POST is served";
        return TNL_SNIFF_INVALID;
    }
    if (!st.auth_seen || bearer(&req->token) < 0) {
        *why = "missing 'Authorization: Bearer <bootstrap token>'";
        return TNL_SNIFF_INVALID;
    }
    return TNL_SNIFF_MATCH;
}

size_t tnl_enroll_response(char *out, size_t cap, int status, const char *content_type, const char *body,
                           size_t body_len)
{
    const char *text = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 401 ? "Unauthorized"
                     : status == 403 ? "Forbidden" : status == 404 ? "Not Found" : "Internal Server Error";
    int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, text, content_type, body_len);
    if (n < 0 || (size_t)n + body_len > cap)
        return 0;
    memcpy(out + n, body, body_len);
    return (size_t)n + body_len;
}

struct rstate {
    struct tnl_slice body;
    int done;
};

static int r_body(http_parser *p, const char *at, size_t n)
{
    struct rstate *st = p->data;
    extend(&st->body, at, n);
    return 0;
}

static int r_complete(http_parser *p)
{
    struct rstate *st = p->data;
    st->done = 1;
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_body = r_body,
    .on_message_complete = r_complete,
};

enum tnl_sniff_status tnl_enroll_parse_response(const uint8_t *buf, size_t len, int *status,
                                                struct tnl_slice *body, const char **why)
{
    http_parser p;
    struct rstate st = { 0 };
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &st;
    http_parser_execute(&p, &resp_settings, (const char *)buf, len);
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK) {
        *why = http_errno_description(HTTP_PARSER_ERRNO(&p));
        return TNL_SNIFF_INVALID;
    }
    if (!st.done)
        return TNL_SNIFF_NEED_MORE;
    *status = (int)p.status_code;
    *body = st.body;
    return TNL_SNIFF_MATCH;
}

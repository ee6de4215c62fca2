/*
 * request.c — HTTP/1.x requests and responses over http-parser (see request.h).
 */
#include "http/request.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct pstate {
    struct tnl_http_req *req;
    size_t body_max;
    int in_auth;
    int auth_seen;
    int done;
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
        extend(&st->req->authorization, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct pstate *st = p->data;
    st->req->has_length = p->content_length != ULLONG_MAX;
    if (st->req->has_length && p->content_length > st->body_max) {
        st->bad = "request body too large";
        return 1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct pstate *st = p->data;
    extend(&st->req->body, at, n);
    return 0;
}

static int on_complete(http_parser *p)
{
    struct pstate *st = p->data;
    st->done = 1;
    return 1;       /* stop after one request */
}

static const http_parser_settings req_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

enum tnl_sniff_status tnl_http_parse_request(const uint8_t *buf, size_t len, size_t body_max,
                                             struct tnl_http_req *req, const char **why)
{
    http_parser p;
    struct pstate st = { .req = req, .body_max = body_max };
    memset(req, 0, sizeof *req);
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &st;
    http_parser_execute(&p, &req_settings, (const char *)buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    if (st.bad || (e != HPE_OK && !(e == HPE_CB_message_complete && st.done))) {
        *why = st.bad ? st.bad : http_errno_description(e);
        return TNL_SNIFF_INVALID;
    }
    if (!st.done) {
        *why = NULL;
        if (len > TNL_HTTP_HEAD_MAX + body_max) {
            *why = "request too large";
            return TNL_SNIFF_INVALID;
        }
        return TNL_SNIFF_NEED_MORE;
    }
    req->method = (int)p.method;
    req->method_name = http_method_str((enum http_method)p.method);
    /* trim the Authorization value */
    struct tnl_slice *a = &req->authorization;
    while (a->n && (a->p[0] == ' ' || a->p[0] == '\t')) {
        a->p++;
        a->n--;
    }
    while (a->n && (a->p[a->n - 1] == ' ' || a->p[a->n - 1] == '\t'))
        a->n--;
    return TNL_SNIFF_MATCH;
}

int tnl_http_bearer(struct tnl_slice v, struct tnl_slice *token)
{
    if (v.n < 8 || strncasecmp((const char *)v.p, "Bearer ", 7) != 0)
        return -1;
    token->p = v.p + 7;
    token->n = v.n - 7;
    while (token->n && (*token->p == ' ' || *token->p == '\t')) {
        token->p++;
        token->n--;
    }
    return token->n ? 0 : -1;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

size_t tnl_http_response(char *out, size_t cap, int status, const char *content_type, const char *extra_headers,
                         const char *body, size_t body_len)
{
    int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                     status, reason(status), content_type, body_len, extra_headers ? extra_headers : "");
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

enum tnl_sniff_status tnl_http_parse_response(const uint8_t *buf, size_t len, int *status, struct tnl_slice *body,
                                              const char **why)
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

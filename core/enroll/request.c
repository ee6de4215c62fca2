/*
 * request.c — the enrollment request on top of the shared HTTP parser
 * (see request.h and http/request.h).
 */
#include "enroll/request.h"

#include <http_parser.h>
#include <string.h>

#include "http/request.h"

enum tnl_sniff_status tnl_enroll_parse(const uint8_t *buf, size_t len, struct tnl_enroll_req *req, const char **why)
{
    struct tnl_http_req h;
    enum tnl_sniff_status st = tnl_http_parse_request(buf, len, TNL_ENROLL_BODY_MAX, &h, why);
    memset(req, 0, sizeof *req);
    if (st != TNL_SNIFF_MATCH)
        return st;
    req->method = h.method;
    req->path = h.path;
    req->body = h.body;
    if (h.method != HTTP_POST) {
        *why = "only POST is served";
        return TNL_SNIFF_INVALID;
    }
    if (!h.has_length || h.body.n == 0) {
        *why = "a body with Content-Length is required";
        return TNL_SNIFF_INVALID;
    }
    if (tnl_http_bearer(h.authorization, &req->token) < 0) {
        *why = "missing 'Authorization: Bearer <bootstrap token>'";
        return TNL_SNIFF_INVALID;
    }
    return TNL_SNIFF_MATCH;
}

size_t tnl_enroll_response(char *out, size_t cap, int status, const char *content_type, const char *body,
                           size_t body_len)
{
    return tnl_http_response(out, cap, status, content_type, NULL, body, body_len);
}

enum tnl_sniff_status tnl_enroll_parse_response(const uint8_t *buf, size_t len, int *status,
                                                struct tnl_slice *body, const char **why)
{
    return tnl_http_parse_response(buf, len, status, body, why);
}

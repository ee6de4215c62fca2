/*
 * request.h — one HTTP/1.x request, parsed with http-parser (Debian's
 * libhttp-parser), for the runtime's own small endpoints (enrollment,
 * management). Public traffic is never parsed this way: it is sniffed and
 * replayed untouched (sniff/http1.c).
 *
 * The whole request must be in the buffer (call again with more bytes on
 * NEED_MORE); slices point into it. Limits: 8 KiB of head, body_max of body,
 * one Authorization header.
 */
#ifndef TNL_HTTP_REQUEST_H
#define TNL_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "sniff/sniff.h"

enum { TNL_HTTP_HEAD_MAX = 8192 };

struct tnl_http_req {
    int method;                 /* http_parser's enum http_method */
    const char *method_name;    /* static: "GET", "POST", ... */
    struct tnl_slice path;      /* request-target as sent */
    struct tnl_slice authorization;     /* value, or n = 0 */
    struct tnl_slice body;
    int has_length;             /* a Content-Length was given */
};

/* MATCH (complete), NEED_MORE, or INVALID (*why is a static message). */
enum tnl_sniff_status tnl_http_parse_request(const uint8_t *buf, size_t len, size_t body_max,
                                             struct tnl_http_req *req, const char **why);

/* "Bearer <token>" -> the token (trimmed); 0, or -1 if not a Bearer value. */
int tnl_http_bearer(struct tnl_slice value, struct tnl_slice *token);

/* A complete response with a body; returns its length, 0 if cap is too small. */
size_t tnl_http_response(char *out, size_t cap, int status, const char *content_type, const char *extra_headers,
                         const char *body, size_t body_len);

/* Parse a response (clients): MATCH with *status and *body, NEED_MORE, INVALID. */
enum tnl_sniff_status tnl_http_parse_response(const uint8_t *buf, size_t len, int *status, struct tnl_slice *body,
                                              const char **why);

#endif

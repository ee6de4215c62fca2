/*
 * request.h — the enrollment request, an HTTP/1.1 request parsed with
 * http-parser (Debian's libhttp-parser):
 *
 *   POST /v1/enroll HTTP/1.1
 *   Authorization: Bearer tnlb1.<bootstrap token>
 *   Content-Type: application/pkcs10
 *   Content-Length: N
 *
 *   -----BEGIN CERTIFICATE REQUEST----- ...
 *
 * The name is the CSR's CN (it must equal the token's). Limits: 8 KiB of
 * head, 16 KiB of body, Content-Length required.
 */
#ifndef TNL_ENROLL_REQUEST_H
#define TNL_ENROLL_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "sniff/sniff.h"

enum { TNL_ENROLL_HEAD_MAX = 8192, TNL_ENROLL_BODY_MAX = 16384 };

struct tnl_enroll_req {
    int method;                 /* http_parser's enum http_method */
    struct tnl_slice path;
    struct tnl_slice token;     /* after "Bearer " */
    struct tnl_slice body;
};

/* MATCH (complete, fields set), NEED_MORE, or INVALID (*why names the problem). */
enum tnl_sniff_status tnl_enroll_parse(const uint8_t *buf, size_t len, struct tnl_enroll_req *req, const char **why);

/* A response: status line, text/plain or PEM body. Returns its length. */
size_t tnl_enroll_response(char *out, size_t cap, int status, const char *content_type, const char *body,
                           size_t body_len);

/* Parse a response (client side): MATCH with *status and *body set, NEED_MORE, INVALID. */
enum tnl_sniff_status tnl_enroll_parse_response(const uint8_t *buf, size_t len, int *status,
                                                struct tnl_slice *body, const char **why);

#endif

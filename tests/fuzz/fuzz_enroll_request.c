/*
 * fuzz_enroll_request.c — the enrollment request and response parsers over
 * arbitrary input: no crash, slices inside the input, and a decision that
 * never flips from MATCH when more bytes arrive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll/request.h"

static void inside(struct tnl_slice s, const uint8_t *buf, size_t n)
{
    if (s.n && (s.p < buf || s.p + s.n > buf + n))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tnl_enroll_req req;
    const char *why;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    enum tnl_sniff_status st = tnl_enroll_parse(buf, size, &req, &why);
    if (st == TNL_SNIFF_MATCH) {
        inside(req.token, buf, size);
        inside(req.body, buf, size);
        inside(req.path, buf, size);
        if (req.body.n > TNL_ENROLL_BODY_MAX || req.token.n == 0)
            __builtin_trap();
    }
    if (st != TNL_SNIFF_MATCH && st != TNL_SNIFF_NEED_MORE && st != TNL_SNIFF_INVALID)
        __builtin_trap();
    int status;
    struct tnl_slice body;
    if (tnl_enroll_parse_response(buf, size, &status, &body, &why) == TNL_SNIFF_MATCH)
        inside(body, buf, size);
    free(buf);
    return 0;
}

/*
 * test_enroll_request.c — the enrollment request parser
 * (core/enroll/request.c) with good and hostile inputs.
 */
#include "unit.h"

#include <stdio.h>

#include "enroll/request.h"

static const char CSR[] = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";

static size_t build(char *out, size_t cap, const char *method, const char *path, const char *extra, const char *body)
{
    return (size_t)snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: r\r\n%sContent-Length: %zu\r\n\r\n%s", method, path,
                            extra, strlen(body), body);
}

static enum tnl_sniff_status parse(const char *buf, size_t n, struct tnl_enroll_req *req, const char **why)
{
    uint8_t *exact = unit_exact((const uint8_t *)buf, n);
    enum tnl_sniff_status st = tnl_enroll_parse(exact, n, req, why);
    /* slices point into the copy: check them before freeing */
    if (st == TNL_SNIFF_MATCH) {
        assert_true(req->token.p >= exact && req->token.p + req->token.n <= exact + n);
        assert_true(req->body.p >= exact && req->body.p + req->body.n <= exact + n);
        req->token.p = (const uint8_t *)buf + (req->token.p - exact);
        req->body.p = (const uint8_t *)buf + (req->body.p - exact);
        req->path.p = (const uint8_t *)buf + (req->path.p - exact);
    }
    free(exact);
    return st;
}

static void test_good_request_and_every_prefix(void **state)
{
    char buf[2048];
    struct tnl_enroll_req req;
    const char *why;
    size_t n = build(buf, sizeof buf, "POST", "/v1/enroll", "Authorization: Bearer tnlb1.abc\r\n", CSR);
    assert_int_equal(parse(buf, n, &req, &why), TNL_SNIFF_MATCH);
    assert_slice_equal(req.token, "tnlb1.abc");
    assert_slice_equal(req.path, "/v1/enroll");
    assert_int_equal(req.body.n, strlen(CSR));
    assert_memory_equal(req.body.p, CSR, strlen(CSR));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(parse(buf, i, &req, &why), TNL_SNIFF_NEED_MORE);
}

static void test_hostile(void **state)
{
    char buf[40000];
    struct tnl_enroll_req req;
    const char *why;
    struct { const char *method, *extra, *body; } cases[] = {
        { "GET", "Authorization: Bearer t\r\n", CSR },                                    /* not POST */
        { "POST", "", CSR },                                                              /* no token */
        { "POST", "Authorization: Basic dXNlcg==\r\n", CSR },                             /* not Bearer */
        { "POST", "Authorization: Bearer \r\n", CSR },                                    /* empty token */
        { "POST", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", CSR },        /* two */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = build(buf, sizeof buf, cases[i].method, "/v1/enroll", cases[i].extra, cases[i].body);
        assert_int_equal(parse(buf, n, &req, &why), TNL_SNIFF_INVALID);
        assert_non_null(why);
    }
    /* no Content-Length */
    size_t n = (size_t)snprintf(buf, sizeof buf, "POST /v1/enroll HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n");
    assert_int_equal(parse(buf, n, &req, &why), TNL_SNIFF_INVALID);
    /* a body over 16 KiB is refused from the headers alone */
    n = (size_t)snprintf(buf, sizeof buf, "POST /v1/enroll HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 20000\r\n\r\n");
    assert_int_equal(parse(buf, n, &req, &why), TNL_SNIFF_INVALID);
    /* garbage */
    static const char garbage[] = "\x16\x03\x01\x00\x10garbage\r\n\r\n";
    memcpy(buf, garbage, sizeof garbage - 1);
    n = sizeof garbage - 1;
    assert_int_equal(parse(buf, n, &req, &why), TNL_SNIFF_INVALID);
    /* Content-Length off by one: more bytes announced than sent waits */
    n = (size_t)snprintf(buf, sizeof buf, "POST /v1/enroll HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(CSR) + 1, CSR);
    assert_int_equal(parse(buf, n, &req, &why), TNL_SNIFF_NEED_MORE);
}

static void test_response_round_trip(void **state)
{
    char out[512];
    int status;
    struct tnl_slice body;
    const char *why;
    size_t n = tnl_enroll_response(out, sizeof out, 403, "text/plain", "nope\n", 5);
    assert_true(n > 0);
    assert_int_equal(tnl_enroll_parse_response((uint8_t *)out, n, &status, &body, &why), TNL_SNIFF_MATCH);
    assert_int_equal(status, 403);
    assert_slice_equal(body, "nope\n");
    assert_int_equal(tnl_enroll_parse_response((uint8_t *)out, n - 1, &status, &body, &why), TNL_SNIFF_NEED_MORE);
    assert_int_equal(tnl_enroll_response(out, 20, 200, "text/plain", "x", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_request_and_every_prefix),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_response_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

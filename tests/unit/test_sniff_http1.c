/*
 * test_sniff_http1.c — the HTTP/1.x request sniffer (core/sniff/http1.c): a curl
 * request, every prefix of it, early NO_MATCH for the other captures' first
 * bytes, and the header-block rules (Host, duplicates, bare LF, no colon).
 */
#include "unit.h"
#include "vectors.h"

#include "sniff/sniff.h"

struct run {
    uint8_t *buf;
    struct tnl_sniff_result r;
    enum tnl_sniff_status st;
};

static void run_http(struct run *x, const void *p, size_t n)
{
    x->buf = unit_exact(p, n);
    tnl_sniff_result_init(&x->r, NULL, 0);
    x->st = tnl_sniff_http1(x->buf, n, &x->r);
}

static enum tnl_sniff_status sniff_str(const char *s, struct run *x)
{
    run_http(x, s, strlen(s));
    return x->st;
}

/* What curl 7.88.1 sends for `curl http://app.example:8080/api/v1?x=1`. */
static const char curl_get[] =
    "GET /api/v1?x=1 HTTP/1.1\r\n"
    "Host: app.example:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";

static void test_curl_request(void **state)
{
    struct run x;
    assert_int_equal(sniff_str(curl_get, &x), TNL_SNIFF_MATCH);
    assert_string_equal(x.r.proto, "http");
    assert_slice_equal(x.r.method, "GET");
    assert_slice_equal(x.r.path, "/api/v1?x=1");
    assert_slice_equal(x.r.host, "app.example:8080");
    assert_int_equal(x.r.http_minor, 1);
    assert_true(x.r.host.p > x.buf && x.r.host.p < x.buf + sizeof(curl_get));
    free(x.buf);
}

static void test_every_prefix_needs_more(void **state)
{
    size_t n = strlen(curl_get);
    for (size_t k = 0; k < n; k++) {
        struct run x;
        run_http(&x, curl_get, k);
        if (x.st != TNL_SNIFF_NEED_MORE)
            fail_msg("prefix %zu: %s", k, tnl_sniff_status_name(x.st));
        assert_null(x.r.proto);
        free(x.buf);
    }
    /* a body after the header block does not change anything */
    char withbody[256];
    snprintf(withbody, sizeof(withbody), "%sPOSTDATA", curl_get);
    struct run x;
    assert_int_equal(sniff_str(withbody, &x), TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.host, "app.example:8080");
    free(x.buf);
}

static void test_short_get_matches_at_once(void **state)
{
    struct run x;
    assert_int_equal(sniff_str("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &x), TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.method, "GET");
    assert_slice_equal(x.r.path, "/");
    assert_slice_equal(x.r.host, "a");
    free(x.buf);
}

static void test_http10_without_host(void **state)
{
    struct run x;
    assert_int_equal(sniff_str("HEAD /index.html HTTP/1.0\r\n\r\n", &x), TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.method, "HEAD");
    assert_slice_equal(x.r.path, "/index.html");
    assert_int_equal(x.r.host.n, 0);
    assert_int_equal(x.r.http_minor, 0);
    free(x.buf);
}

static void test_bare_lf_and_trimming(void **state)
{
    struct run x;
    assert_int_equal(sniff_str("POST /x HTTP/1.1\nhOsT:\t  b.example \t\nX: y\n\n", &x),
                     TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.method, "POST");
    assert_slice_equal(x.r.host, "b.example");
    free(x.buf);
    /* mixed endings; empty Host value */
    assert_int_equal(sniff_str("OPTIONS * HTTP/1.1\r\nHost:\n\r\n", &x), TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.path, "*");
    assert_int_equal(x.r.host.n, 0);
    free(x.buf);
    /* CONNECT with authority-form, methods with '-' and '_' */
    assert_int_equal(sniff_str("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n", &x),
                     TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.path, "db.internal:5432");
    free(x.buf);
    assert_int_equal(sniff_str("VERSION-CONTROL / HTTP/1.1\r\n\r\n", &x), TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.method, "VERSION-CONTROL");
    free(x.buf);
}

static void test_invalid_header_blocks(void **state)
{
    static const struct {
        const char *req, *err;
    } cases[] = {
        { "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "http: duplicate Host header" },
        { "GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", "http: header line without ':'" },
        { "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "http: invalid character in header name" },
        { "GET / HTTP/1.1\r\n: a\r\n\r\n", "http: empty header name" },
        { "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "http: obsolete line folding in header" },
        { "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "http: control character in header value" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run x;
        if (sniff_str(cases[i].req, &x) != TNL_SNIFF_INVALID)
            fail_msg("case %zu: %s", i, tnl_sniff_status_name(x.st));
        assert_string_equal(x.r.error, cases[i].err);
        assert_string_equal(x.r.proto, "http");
        free(x.buf);
    }
    /* The duplicate is decided as soon as its line is complete. */
    struct run x;
    assert_int_equal(sniff_str("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n", &x), TNL_SNIFF_INVALID);
    free(x.buf);
}

/* Decided NO_MATCH as early as the bytes allow. */
static void test_no_match_early(void **state)
{
    static const struct {
        const char *bytes;
        size_t n;
    } cases[] = {
        { "\x16", 1 },
        { "\x00", 1 },
        { "SSH-", 4 },                          /* '-' is a method char: not yet... */
        { "SSH-2", 5 },                         /* ...but '2' is not */
        { "PRI * HTTP/2", 12 },
        { "PRI * HTTP/2.0\r\n", 16 },
        { "get / HTTP/1.1\r\n", 16 },
        { " GET", 4 },
        { "GET  / HTTP/1.1", 15 },              /* empty request-target */
        { "PING\r\n", 6 },
        { "GET key\r\n", 9 },                   /* memcached/redis style */
        { "GET /\r\n", 7 },                     /* HTTP/0.9 */
        { "GET / HTTP/1.2\r\n", 16 },
        { "GET / HTTP/1.10\r\n", 17 },
        { "GET / HTTP/1.1\rX", 16 },
        { "GET / http/1.1\r\n", 16 },
        { "ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n", 30 },   /* 17-char method */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run x;
        run_http(&x, cases[i].bytes, cases[i].n);
        enum tnl_sniff_status want = i == 2 ? TNL_SNIFF_NEED_MORE : TNL_SNIFF_NO_MATCH;
        if (x.st != want)
            fail_msg("case %zu: %s", i, tnl_sniff_status_name(x.st));
        free(x.buf);
    }
    /* 16 chars is still a method */
    struct run x;
    assert_int_equal(sniff_str("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", &x), TNL_SNIFF_MATCH);
    assert_int_equal(x.r.method.n, 16);
    free(x.buf);
}

/* The other protocols' captures: NO_MATCH at the latest once a few bytes are in. */
static void test_other_captures_no_match(void **state)
{
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        const struct vec_first_bytes_captures *c = &vec_first_bytes_captures[i];
        struct run x;
        run_http(&x, c->bytes, c->bytes_len);
        if (x.st != TNL_SNIFF_NO_MATCH)
            fail_msg("%s: %s", c->name, tnl_sniff_status_name(x.st));
        free(x.buf);
        /* decided within the first 16 bytes already */
        run_http(&x, c->bytes, 16);
        assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
        free(x.buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl_request),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_short_get_matches_at_once),
        cmocka_unit_test(test_http10_without_host),
        cmocka_unit_test(test_bare_lf_and_trimming),
        cmocka_unit_test(test_invalid_header_blocks),
        cmocka_unit_test(test_no_match_early),
        cmocka_unit_test(test_other_captures_no_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

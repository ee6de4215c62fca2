/*
 * test_sniff_http2.c — the HTTP/2 prior-knowledge preface sniffer
 * (core/sniff/http2.c) against curl's --http2-prior-knowledge capture.
 */
#include "unit.h"
#include "vectors.h"

#include "sniff/sniff.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static const struct vec_first_bytes_captures *capture(const char *needle)
{
    const struct vec_first_bytes_captures *found = NULL;
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        if (strstr(vec_first_bytes_captures[i].name, needle)) {
            assert_null(found);
            found = &vec_first_bytes_captures[i];
        }
    }
    assert_non_null(found);
    return found;
}

static enum tnl_sniff_status sniff(const uint8_t *p, size_t n, struct tnl_sniff_result *r)
{
    uint8_t *b = unit_exact(p, n);
    tnl_sniff_result_init(r, NULL, 0);
    enum tnl_sniff_status st = tnl_sniff_http2(b, n, r);
    free(b);
    return st;
}

static void test_capture(void **state)
{
    const struct vec_first_bytes_captures *c = capture("HTTP/2 prior knowledge");
    struct tnl_sniff_result r;
    assert_true(c->bytes_len > 24);
    assert_memory_equal(c->bytes, preface, 24);
    /* every prefix shorter than the preface: need more; 24 bytes and on: match */
    for (size_t k = 0; k <= c->bytes_len; k++) {
        enum tnl_sniff_status st = sniff(c->bytes, k, &r);
        if (k < 24) {
            assert_int_equal(st, TNL_SNIFF_NEED_MORE);
            assert_null(r.proto);
        } else {
            assert_int_equal(st, TNL_SNIFF_MATCH);
            assert_string_equal(r.proto, "http2");
        }
    }
}

static void test_differs_at_each_byte(void **state)
{
    struct tnl_sniff_result r;
    for (size_t i = 0; i < 24; i++) {
        uint8_t b[24];
        memcpy(b, preface, 24);
        b[i] ^= 0x20;
        /* NO_MATCH as soon as the differing byte is in */
        assert_int_equal(sniff(b, i + 1, &r), TNL_SNIFF_NO_MATCH);
        assert_int_equal(sniff(b, 24, &r), TNL_SNIFF_NO_MATCH);
        if (i > 0)
            assert_int_equal(sniff(b, i, &r), TNL_SNIFF_NEED_MORE);
    }
}

static void test_other_captures(void **state)
{
    struct tnl_sniff_result r;
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        const struct vec_first_bytes_captures *c = &vec_first_bytes_captures[i];
        if (strstr(c->name, "HTTP/2"))
            continue;
        assert_int_equal(sniff(c->bytes, c->bytes_len, &r), TNL_SNIFF_NO_MATCH);
        assert_int_equal(sniff(c->bytes, 1, &r), TNL_SNIFF_NO_MATCH);
    }
    /* an HTTP/1.1 request that starts like the preface's method */
    const char *h1 = "PRIVATE / HTTP/1.1\r\n\r\n";
    assert_int_equal(sniff((const uint8_t *)h1, strlen(h1), &r), TNL_SNIFF_NO_MATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture),
        cmocka_unit_test(test_differs_at_each_byte),
        cmocka_unit_test(test_other_captures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_sniff.c — the dispatcher over the built-in sniffers (core/sniff/sniff.c):
 * each capture is recognised by exactly the right built-in while the others say
 * NO_MATCH; prefixes never match the wrong protocol; the table, the opaque
 * fallback, the ALPN iterator and the status names.
 */
#include "unit.h"
#include "vectors.h"

#include "sniff/sniff.h"

/* Which built-in each first-bytes capture belongs to. */
static const char *expected_proto(const char *name)
{
    static const struct {
        const char *needle, *proto;
    } map[] = {
        { "TLS ClientHello", "tls" },
        { "HTTP/2 prior knowledge", "http2" },
        { "SSH client banner", "ssh" },
        { "psql", "postgresql" },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strstr(name, map[i].needle))
            return map[i].proto;
    fail_msg("capture not mapped: %s", name);
    return NULL;
}

struct run {
    uint8_t *buf, *scratch;
    struct tnl_sniff_result r;
    enum tnl_sniff_status st;
};

static void run_builtin(struct run *x, const void *p, size_t n)
{
    x->buf = unit_exact(p, n);
    x->scratch = malloc(n ? n : 1);
    tnl_sniff_result_init(&x->r, x->scratch, n);
    x->st = tnl_sniff_builtin(x->buf, n, &x->r);
}

static void run_free(struct run *x)
{
    free(x->buf);
    free(x->scratch);
}

static void test_table(void **state)
{
    static const char *const names[] = { "tls", "http", "http2", "postgresql", "ssh" };
    size_t i = 0;
    for (; tnl_sniffers_builtin[i].parse; i++) {
        assert_true(i < 5);
        assert_string_equal(tnl_sniffers_builtin[i].name, names[i]);
    }
    assert_int_equal(i, 5);
    assert_null(tnl_sniffers_builtin[i].name);
}

static void test_each_capture_one_sniffer(void **state)
{
    assert_int_equal(vec_first_bytes_captures_count, 6);
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        const struct vec_first_bytes_captures *c = &vec_first_bytes_captures[i];
        const char *want = expected_proto(c->name);
        struct run x;
        run_builtin(&x, c->bytes, c->bytes_len);
        if (x.st != TNL_SNIFF_MATCH)
            fail_msg("%s: %s", c->name, tnl_sniff_status_name(x.st));
        assert_string_equal(x.r.proto, want);
        run_free(&x);
        /* each built-in on its own: only the right one matches */
        size_t matched = 0;
        for (const struct tnl_sniffer *s = tnl_sniffers_builtin; s->parse; s++) {
            uint8_t *b = unit_exact(c->bytes, c->bytes_len), *scr = malloc(c->bytes_len);
            struct tnl_sniff_result r;
            tnl_sniff_result_init(&r, scr, c->bytes_len);
            enum tnl_sniff_status st = s->parse(b, c->bytes_len, &r);
            if (strcmp(s->name, want) == 0) {
                assert_int_equal(st, TNL_SNIFF_MATCH);
                assert_string_equal(r.proto, s->name);
                matched++;
            } else if (st != TNL_SNIFF_NO_MATCH) {
                fail_msg("%s: sniffer %s said %s", c->name, s->name, tnl_sniff_status_name(st));
            }
            free(b);
            free(scr);
        }
        assert_int_equal(matched, 1);
    }
}

/* Fields the dispatcher hands back for each capture. */
static void test_fields_through_dispatcher(void **state)
{
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        const struct vec_first_bytes_captures *c = &vec_first_bytes_captures[i];
        struct run x;
        run_builtin(&x, c->bytes, c->bytes_len);
        assert_int_equal(x.st, TNL_SNIFF_MATCH);
        if (strstr(c->name, "SNI=tunnel.example.com")) {
            assert_slice_equal(x.r.sni, "tunnel.example.com");
            assert_int_equal(x.r.alpn.n, 12);
        } else if (strstr(c->name, "SNI=legacy.example.org")) {
            assert_slice_equal(x.r.sni, "legacy.example.org");
            assert_int_equal(x.r.alpn.n, 0);
        } else if (strstr(c->name, "noservername")) {
            assert_int_equal(x.r.sni.n, 0);
        } else if (strstr(c->name, "psql")) {
            assert_int_equal(x.r.pg.ssl, 1);
        } else if (strstr(c->name, "SSH")) {
            assert_slice_equal(x.r.ssh_version, c->ascii_prefix);
        }
        assert_ptr_equal(x.r.scratch, x.scratch);
        run_free(&x);
    }
}

/* Every prefix: NEED_MORE, or MATCH of the right protocol, never anything else. */
static void test_prefixes_never_wrong(void **state)
{
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        const struct vec_first_bytes_captures *c = &vec_first_bytes_captures[i];
        const char *want = expected_proto(c->name);
        size_t first_match = 0;
        for (size_t k = 0; k <= c->bytes_len; k++) {
            struct run x;
            run_builtin(&x, c->bytes, k);
            if (x.st == TNL_SNIFF_MATCH) {
                assert_string_equal(x.r.proto, want);
                if (!first_match)
                    first_match = k;
            } else if (x.st != TNL_SNIFF_NEED_MORE || first_match) {
                fail_msg("%s: prefix %zu: %s", c->name, k, tnl_sniff_status_name(x.st));
            }
            run_free(&x);
        }
        /* decided exactly when the message is whole */
        if (!strcmp(want, "http2"))
            assert_int_equal(first_match, 24);
        else if (!strcmp(want, "postgresql"))
            assert_int_equal(first_match, 8);
        else if (!strcmp(want, "ssh"))
            assert_int_equal(first_match, strlen(c->ascii_prefix) + 2);
        else
            assert_int_equal(first_match, c->bytes_len);
    }
}

static void test_hand_made(void **state)
{
    struct run x;
    run_builtin(&x, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_string_equal(x.r.proto, "http");
    assert_slice_equal(x.r.host, "a");
    run_free(&x);

    run_builtin(&x, "", 0);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    assert_null(x.r.proto);
    run_free(&x);

    /* TLS application data, a redis PING, a binary blob: nobody's */
    run_builtin(&x, "\x17\x03\x03\x00\x10", 5);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    assert_null(x.r.proto);
    run_free(&x);
    run_builtin(&x, "PING\r\n", 6);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    run_free(&x);
    run_builtin(&x, "\xff\xfe", 2);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    run_free(&x);

    /* INVALID names the protocol and says why */
    run_builtin(&x, "SSH-1.5-x\r\n", 11);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.r.proto, "ssh");
    assert_non_null(x.r.error);
    run_free(&x);
    run_builtin(&x, "\x16\x03\x01\x00\x00", 5);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.r.proto, "tls");
    run_free(&x);

    /* "P" could still be HTTP ("PUT") or HTTP/2 */
    run_builtin(&x, "P", 1);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    run_free(&x);
}

static void test_opaque(void **state)
{
    struct tnl_sniff_result r;
    tnl_sniff_result_init(&r, NULL, 0);
    assert_int_equal(tnl_sniff_opaque(NULL, 0, &r), TNL_SNIFF_MATCH);
    assert_string_equal(r.proto, "opaque");
    uint8_t *b = unit_exact((const uint8_t *)"\x00\x01", 2);
    tnl_sniff_result_init(&r, NULL, 0);
    assert_int_equal(tnl_sniff_opaque(b, 2, &r), TNL_SNIFF_MATCH);
    assert_string_equal(r.proto, "opaque");
    free(b);
}

static void test_result_init(void **state)
{
    struct tnl_sniff_result r;
    uint8_t scratch[4];
    memset(&r, 0xAB, sizeof(r));
    tnl_sniff_result_init(&r, scratch, sizeof(scratch));
    assert_null(r.proto);
    assert_null(r.error);
    assert_null(r.sni.p);
    assert_int_equal(r.pg.ssl, 0);
    assert_ptr_equal(r.scratch, scratch);
    assert_int_equal(r.scratch_cap, 4);
}

static void test_alpn_next(void **state)
{
    static const uint8_t list[] = "\x02h2\x08http/1.1\x03" "abc";
    struct tnl_slice l = { list, sizeof(list) - 1 }, out;
    size_t off = 0;
    assert_int_equal(tnl_sniff_alpn_next(l, &off, &out), 1);
    assert_slice_equal(out, "h2");
    assert_int_equal(tnl_sniff_alpn_next(l, &off, &out), 1);
    assert_slice_equal(out, "http/1.1");
    assert_int_equal(tnl_sniff_alpn_next(l, &off, &out), 1);
    assert_slice_equal(out, "abc");
    assert_int_equal(tnl_sniff_alpn_next(l, &off, &out), 0);
    assert_int_equal(off, l.n);
    /* empty list; and a list that lies (never read past it) */
    off = 0;
    assert_int_equal(tnl_sniff_alpn_next((struct tnl_slice){ NULL, 0 }, &off, &out), 0);
    uint8_t *bad = unit_exact((const uint8_t *)"\x05h2", 3);
    off = 0;
    assert_int_equal(tnl_sniff_alpn_next((struct tnl_slice){ bad, 3 }, &off, &out), 0);
    free(bad);
}

static void test_status_names(void **state)
{
    assert_string_equal(tnl_sniff_status_name(TNL_SNIFF_NEED_MORE), "need_more");
    assert_string_equal(tnl_sniff_status_name(TNL_SNIFF_MATCH), "match");
    assert_string_equal(tnl_sniff_status_name(TNL_SNIFF_NO_MATCH), "no_match");
    assert_string_equal(tnl_sniff_status_name(TNL_SNIFF_INVALID), "invalid");
    assert_string_equal(tnl_sniff_status_name((enum tnl_sniff_status)42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_each_capture_one_sniffer),
        cmocka_unit_test(test_fields_through_dispatcher),
        cmocka_unit_test(test_prefixes_never_wrong),
        cmocka_unit_test(test_hand_made),
        cmocka_unit_test(test_opaque),
        cmocka_unit_test(test_result_init),
        cmocka_unit_test(test_alpn_next),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

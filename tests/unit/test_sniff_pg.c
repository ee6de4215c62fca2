/*
 * test_sniff_pg.c — the PostgreSQL first-message sniffer (core/sniff/pg.c):
 * psql 15's SSLRequest and StartupMessage from the capture, every prefix, the
 * length fields off by one, and hand-made Startup/Cancel/GSSENC messages.
 *
 * A first message claiming a length above 10000 (e.g. 20000) is NO_MATCH, not
 * INVALID: PostgreSQL itself refuses such a startup packet, so those bytes are
 * taken to be some other protocol; it is decided by the third byte.
 */
#include "unit.h"
#include "vectors.h"

#include "sniff/sniff.h"

struct run {
    uint8_t *buf;
    size_t len;
    struct tnl_sniff_result r;
    enum tnl_sniff_status st;
};

static void run_pg(struct run *x, const void *p, size_t n)
{
    x->buf = unit_exact(p, n);
    x->len = n;
    tnl_sniff_result_init(&x->r, NULL, 0);
    x->st = tnl_sniff_pg(x->buf, n, &x->r);
}

static const struct vec_first_bytes_captures *psql_capture(void)
{
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++)
        if (strstr(vec_first_bytes_captures[i].name, "psql"))
            return &vec_first_bytes_captures[i];
    fail_msg("no psql capture");
    return NULL;
}

/* A message: u32 length (counting itself) then body. */
static size_t pg_msg(uint8_t *out, const void *body, size_t n)
{
    size_t len = n + 4;
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    memcpy(out + 4, body, n);
    return len;
}

static void test_capture_ssl_request(void **state)
{
    const struct vec_first_bytes_captures *c = psql_capture();
    for (size_t k = 0; k <= c->bytes_len; k++) {
        struct run x;
        run_pg(&x, c->bytes, k);
        if (k < 8) {
            if (x.st != TNL_SNIFF_NEED_MORE)
                fail_msg("prefix %zu: %s", k, tnl_sniff_status_name(x.st));
        } else {
            assert_int_equal(x.st, TNL_SNIFF_MATCH);
            assert_string_equal(x.r.proto, "postgresql");
            assert_int_equal(x.r.pg.ssl, 1);
            assert_int_equal(x.r.pg.gssenc, 0);
            assert_int_equal(x.r.pg.cancel, 0);
            assert_int_equal(x.r.pg.user.n, 0);
        }
        free(x.buf);
    }
}

/* The StartupMessage psql sent after the server's 'N'. */
static void test_capture_startup(void **state)
{
    const struct vec_first_bytes_captures *c = psql_capture();
    const uint8_t *m = c->bytes + 8;
    size_t n = c->bytes_len - 8;
    assert_int_equal(n, 0x39);
    for (size_t k = 0; k < n; k++) {
        struct run x;
        run_pg(&x, m, k);
        if (x.st != TNL_SNIFF_NEED_MORE)
            fail_msg("prefix %zu: %s", k, tnl_sniff_status_name(x.st));
        free(x.buf);
    }
    struct run x;
    run_pg(&x, m, n);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.pg.user, "alice");
    assert_slice_equal(x.r.pg.database, "appdb");
    assert_int_equal(x.r.pg.ssl, 0);
    assert_true(x.r.pg.user.p > x.buf && x.r.pg.user.p < x.buf + n);
    free(x.buf);
}

/* Message length off by one, for both messages of the capture. */
static void test_length_off_by_one(void **state)
{
    const struct vec_first_bytes_captures *c = psql_capture();
    uint8_t m[128];
    struct run x;

    /* SSLRequest with length 7 or 9: not a first message PostgreSQL knows */
    memcpy(m, c->bytes, 8);
    m[3] = 7;
    run_pg(&x, m, 8);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    m[3] = 9;
    run_pg(&x, m, 8);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);

    /* StartupMessage 0x39 + 1: waits for a byte that is not there */
    size_t n = c->bytes_len - 8;
    memcpy(m, c->bytes + 8, n);
    m[3] = 0x3a;
    run_pg(&x, m, n);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    free(x.buf);
    /* ... and with one more byte that is not the terminator */
    m[n] = 'x';
    run_pg(&x, m, n + 1);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.r.error, "pg: bytes after the StartupMessage terminator");
    free(x.buf);
    /* 0x39 - 1: the terminator falls outside */
    m[3] = 0x38;
    run_pg(&x, m, n);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.r.error, "pg: StartupMessage parameter list has no terminator");
    assert_int_equal(x.r.pg.user.n, 0);
    free(x.buf);
}

static void test_hand_made_startup(void **state)
{
    static const char body[] = "\x00\x03\x00\x00" "database\0shop\0user\0bob\0options\0-c x=1\0";
    uint8_t m[128];
    size_t n = pg_msg(m, body, sizeof(body));   /* sizeof includes the final NUL */
    struct run x;
    run_pg(&x, m, n);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.pg.user, "bob");
    assert_slice_equal(x.r.pg.database, "shop");
    free(x.buf);

    /* no database: left empty; protocol 3.2 accepted */
    static const char body2[] = "\x00\x03\x00\x02" "user\0carol\0";
    n = pg_msg(m, body2, sizeof(body2));
    run_pg(&x, m, n);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.pg.user, "carol");
    assert_int_equal(x.r.pg.database.n, 0);
    free(x.buf);

    /* protocol 2.0: not matched */
    static const char body3[] = "\x00\x02\x00\x00" "user\0carol\0";
    n = pg_msg(m, body3, sizeof(body3));
    run_pg(&x, m, 6);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
}

static void test_malformed_startup(void **state)
{
    static const struct {
        const char *body;
        size_t n;
        const char *err;
    } cases[] = {
        { "\x00\x03\x00\x00" "user\0bob\0", 13, "pg: StartupMessage parameter list has no terminator" },
        { "\x00\x03\x00\x00" "user\0bob", 12, "pg: StartupMessage parameter without a value" },
        { "\x00\x03\x00\x00" "user\0", 9, "pg: StartupMessage parameter without a value" },
        { "\x00\x03\x00\x00" "user", 8, "pg: StartupMessage parameter name not terminated" },
        { "\x00\x03\x00\x00" "\0\0", 6, "pg: bytes after the StartupMessage terminator" },
        { "\x00\x03\x00\x00" "user\0a\0user\0b\0\0", 19, "pg: duplicate user parameter" },
        { "\x00\x03\x00\x00" "database\0a\0database\0b\0\0", 27, "pg: duplicate database parameter" },
        { "\x00\x03\x00\x00", 4, "pg: StartupMessage parameter list has no terminator" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t m[64];
        size_t n = pg_msg(m, cases[i].body, cases[i].n);
        struct run x;
        run_pg(&x, m, n);
        if (x.st != TNL_SNIFF_INVALID)
            fail_msg("case %zu: %s", i, tnl_sniff_status_name(x.st));
        assert_string_equal(x.r.error, cases[i].err);
        assert_string_equal(x.r.proto, "postgresql");
        free(x.buf);
    }
    /* the minimal valid one: just the terminator */
    uint8_t m[16];
    size_t n = pg_msg(m, "\x00\x03\x00\x00\x00", 5);
    struct run x;
    run_pg(&x, m, n);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.r.pg.user.n, 0);
    free(x.buf);
}

static void test_cancel_and_gssenc(void **state)
{
    static const uint8_t cancel[16] = { 0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e,
                                        0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef };
    for (size_t k = 0; k < 16; k++) {
        struct run x;
        run_pg(&x, cancel, k);
        assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
        free(x.buf);
    }
    struct run x;
    run_pg(&x, cancel, 16);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.r.pg.cancel, 1);
    assert_int_equal(x.r.pg.ssl, 0);
    free(x.buf);

    static const uint8_t gss[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30 };
    run_pg(&x, gss, 7);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    free(x.buf);
    run_pg(&x, gss, 8);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.r.pg.gssenc, 1);
    assert_int_equal(x.r.pg.ssl, 0);
    free(x.buf);

    /* a cancel code with length 8, an SSL code with length 16: neither */
    static const uint8_t bad1[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2e };
    run_pg(&x, bad1, 8);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    static const uint8_t bad2[8] = { 0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2f };
    run_pg(&x, bad2, 8);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
}

static void test_no_match_early(void **state)
{
    struct run x;
    /* length 20000: NO_MATCH with three bytes in */
    static const uint8_t big[8] = { 0, 0, 0x4e, 0x20, 0, 3, 0, 0 };
    run_pg(&x, big, 2);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    free(x.buf);
    run_pg(&x, big, 3);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    run_pg(&x, big, 8);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    /* 10001 also out; 10000 is still a candidate */
    static const uint8_t edge[6] = { 0, 0, 0x27, 0x11, 0, 3 };
    run_pg(&x, edge, 4);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    static const uint8_t edge2[6] = { 0, 0, 0x27, 0x10, 0, 3 };
    run_pg(&x, edge2, 6);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    free(x.buf);
    /* length below 8 */
    static const uint8_t tiny[4] = { 0, 0, 0, 7 };
    run_pg(&x, tiny, 4);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    /* a first byte other than 0 */
    run_pg(&x, "\x01", 1);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    /* unknown code with a plausible length: NO_MATCH by the 5th byte */
    static const uint8_t other[5] = { 0, 0, 0, 8, 0x12 };
    run_pg(&x, other, 5);
    assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
    free(x.buf);
    /* the other captures: NO_MATCH on their first byte */
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        const struct vec_first_bytes_captures *c = &vec_first_bytes_captures[i];
        if (strstr(c->name, "psql"))
            continue;
        run_pg(&x, c->bytes, 1);
        assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
        free(x.buf);
        run_pg(&x, c->bytes, c->bytes_len);
        assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
        free(x.buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_ssl_request),
        cmocka_unit_test(test_capture_startup),
        cmocka_unit_test(test_length_off_by_one),
        cmocka_unit_test(test_hand_made_startup),
        cmocka_unit_test(test_malformed_startup),
        cmocka_unit_test(test_cancel_and_gssenc),
        cmocka_unit_test(test_no_match_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

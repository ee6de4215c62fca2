/*
 * test_sniff_tls.c — the TLS ClientHello sniffer (core/sniff/tls.c) against the
 * openssl s_client captures in tests/vectors/first-bytes-captures.json: whole
 * captures, every prefix, the same ClientHello re-framed into several records,
 * every length field off by one, and hand-made malformed hellos.
 */
#include "unit.h"
#include "vectors.h"

#include "sniff/sniff.h"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

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

/* One sniff over an exactly-sized copy, with a scratch buffer of exactly len. */
struct run {
    uint8_t *buf, *scratch;
    size_t len;
    struct tnl_sniff_result r;
    enum tnl_sniff_status st;
};

static void run_tls(struct run *x, const uint8_t *p, size_t n)
{
    x->buf = unit_exact(p, n);
    x->scratch = malloc(n ? n : 1);
    assert_non_null(x->scratch);
    x->len = n;
    tnl_sniff_result_init(&x->r, x->scratch, n);
    x->st = tnl_sniff_tls(x->buf, n, &x->r);
}

static void run_free(struct run *x)
{
    free(x->buf);
    free(x->scratch);
}

static int inside(struct tnl_slice s, const uint8_t *base, size_t n)
{
    return s.p >= base && s.n <= n && (size_t)(s.p - base) <= n - s.n;
}

/* What a capture must yield. */
struct want {
    const char *sni;            /* NULL: no SNI */
    const char *alpn[4];        /* NULL-terminated */
};

static void check_fields(const struct run *x, const struct want *w)
{
    assert_int_equal(x->st, TNL_SNIFF_MATCH);
    assert_string_equal(x->r.proto, "tls");
    assert_null(x->r.error);
    assert_int_equal(x->r.tls_version, 0x0303);
    if (w->sni) {
        assert_slice_equal(x->r.sni, w->sni);
        assert_true(inside(x->r.sni, x->buf, x->len) || inside(x->r.sni, x->scratch, x->len));
    } else {
        assert_int_equal(x->r.sni.n, 0);
    }
    size_t off = 0, k = 0;
    struct tnl_slice name;
    while (tnl_sniff_alpn_next(x->r.alpn, &off, &name)) {
        assert_non_null(w->alpn[k]);
        assert_slice_equal(name, w->alpn[k]);
        k++;
    }
    assert_null(w->alpn[k]);
    assert_int_equal(off, x->r.alpn.n);
}

static const struct {
    const char *needle;
    struct want want;
} tls_caps[] = {
    { "SNI=tunnel.example.com", { "tunnel.example.com", { "h2", "http/1.1", NULL } } },
    { "SNI=legacy.example.org", { "legacy.example.org", { NULL } } },
    { "-noservername", { NULL, { NULL } } },
};
enum { N_TLS_CAPS = sizeof(tls_caps) / sizeof(tls_caps[0]) };

/* A byte builder for re-framed and hand-made hellos. */
struct bb {
    uint8_t b[8192];
    size_t n;
};

static void put(struct bb *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof(b->b));
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void put_be(struct bb *b, size_t v, size_t width)
{
    for (size_t i = 0; i < width; i++) {
        uint8_t c = (uint8_t)(v >> (8 * (width - 1 - i)));
        put(b, &c, 1);
    }
}

/* Start a length field of `width` bytes; end_len() patches it. */
static size_t begin_len(struct bb *b, size_t width)
{
    put_be(b, 0, width);
    return b->n;
}

static void end_len(struct bb *b, size_t mark, size_t width)
{
    size_t v = b->n - mark;
    for (size_t i = 0; i < width; i++)
        b->b[mark - width + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

/* Re-frame the handshake message hs[0..n) into records of at most `chunk` bytes;
 * sizes[] (if non-NULL) gives explicit record sizes instead, summing to n. */
static void reframe(struct bb *out, const uint8_t *hs, size_t n, size_t chunk,
                    const size_t *sizes, size_t nsizes)
{
    size_t off = 0, i = 0;
    out->n = 0;
    while (off < n) {
        size_t k = sizes ? sizes[i++] : (n - off < chunk ? n - off : chunk);
        assert_true(!sizes || i <= nsizes);
        put(out, "\x16\x03\x01", 3);
        put_be(out, k, 2);
        put(out, hs + off, k);
        off += k;
    }
}

/* ------------------------------------------------------------------------ */
/* captures                                                                 */

static void test_captures_match(void **state)
{
    for (size_t i = 0; i < N_TLS_CAPS; i++) {
        const struct vec_first_bytes_captures *c = capture(tls_caps[i].needle);
        struct run x;
        run_tls(&x, c->bytes, c->bytes_len);
        check_fields(&x, &tls_caps[i].want);
        /* one record: the slices point into the peek itself */
        if (x.r.sni.n)
            assert_true(inside(x.r.sni, x.buf, x.len));
        if (x.r.alpn.n)
            assert_true(inside(x.r.alpn, x.buf, x.len));
        run_free(&x);
    }
}

static void test_capture_alpn_raw(void **state)
{
    const struct vec_first_bytes_captures *c = capture("SNI=tunnel.example.com");
    struct run x;
    run_tls(&x, c->bytes, c->bytes_len);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    /* raw ProtocolNameList without its u16 length: 02 "h2" 08 "http/1.1" */
    assert_int_equal(x.r.alpn.n, 12);
    assert_memory_equal(x.r.alpn.p, "\x02h2\x08http/1.1", 12);
    run_free(&x);
}

static void test_every_prefix_needs_more(void **state)
{
    for (size_t i = 0; i < N_TLS_CAPS; i++) {
        const struct vec_first_bytes_captures *c = capture(tls_caps[i].needle);
        for (size_t k = 0; k < c->bytes_len; k++) {
            struct run x;
            run_tls(&x, c->bytes, k);
            if (x.st != TNL_SNIFF_NEED_MORE)
                fail_msg("%s: prefix %zu of %zu: %s", tls_caps[i].needle, k, c->bytes_len,
                         tnl_sniff_status_name(x.st));
            assert_int_equal(x.r.sni.n, 0);
            run_free(&x);
        }
    }
}

/* Followed by more bytes (the client does not wait): MATCH all the same. */
static void test_trailing_bytes_still_match(void **state)
{
    const struct vec_first_bytes_captures *c = capture("SNI=tunnel.example.com");
    struct bb b = { .n = 0 };
    put(&b, c->bytes, c->bytes_len);
    put(&b, "\x14\x03\x03\x00\x01\x01", 6);      /* ChangeCipherSpec */
    struct run x;
    run_tls(&x, b.b, b.n);
    check_fields(&x, &tls_caps[0].want);
    run_free(&x);
}

/* ------------------------------------------------------------------------ */
/* re-framing: the handshake message spread over several records             */

static void check_reframed(const struct bb *b, const struct want *w, int all_prefixes)
{
    struct run x;
    run_tls(&x, b->b, b->n);
    check_fields(&x, w);
    run_free(&x);
    for (size_t k = 0; all_prefixes && k < b->n; k++) {
        run_tls(&x, b->b, k);
        if (x.st != TNL_SNIFF_NEED_MORE)
            fail_msg("reframed prefix %zu of %zu: %s (%s)", k, b->n, tnl_sniff_status_name(x.st),
                     x.r.error ? x.r.error : "");
        run_free(&x);
    }
}

static void test_reframed_chunks(void **state)
{
    static const size_t chunks[] = { 1, 7, 100 };
    for (size_t i = 0; i < N_TLS_CAPS; i++) {
        const struct vec_first_bytes_captures *c = capture(tls_caps[i].needle);
        for (size_t j = 0; j < sizeof(chunks) / sizeof(chunks[0]); j++) {
            struct bb b;
            reframe(&b, c->bytes + 5, c->bytes_len - 5, chunks[j], NULL, 0);
            assert_int_equal(b.n, c->bytes_len - 5 + 5 * ((c->bytes_len - 5 + chunks[j] - 1) / chunks[j]));
            check_reframed(&b, &tls_caps[i].want, 1);
        }
    }
}

static void test_two_records_every_split(void **state)
{
    for (size_t i = 0; i < N_TLS_CAPS; i++) {
        const struct vec_first_bytes_captures *c = capture(tls_caps[i].needle);
        size_t n = c->bytes_len - 5;
        for (size_t s = 1; s < n; s++) {
            size_t sizes[2] = { s, n - s };
            struct bb b;
            reframe(&b, c->bytes + 5, n, 0, sizes, 2);
            check_reframed(&b, &tls_caps[i].want, s % 37 == 0);
        }
    }
}

static void test_sni_straddles_records(void **state)
{
    const struct vec_first_bytes_captures *c = capture("SNI=tunnel.example.com");
    const uint8_t *hs = c->bytes + 5;
    size_t n = c->bytes_len - 5;
    const uint8_t *sni = memmem(hs, n, "tunnel.example.com", 18);
    assert_non_null(sni);
    size_t s = (size_t)(sni - hs) + 6;          /* "tunnel" | ".example.com" */
    size_t sizes[2] = { s, n - s };
    struct bb b;
    reframe(&b, hs, n, 0, sizes, 2);
    struct run x;
    run_tls(&x, b.b, b.n);
    check_fields(&x, &tls_caps[0].want);
    /* reassembled: the name lives in scratch, whole */
    assert_true(inside(x.r.sni, x.scratch, x.len));
    assert_true(inside(x.r.alpn, x.scratch, x.len));
    run_free(&x);
}

/* ------------------------------------------------------------------------ */
/* every length field off by one                                            */

struct lenfield {
    char name[48];
    size_t off, width;
};

static size_t be(const uint8_t *p, size_t w)
{
    size_t v = 0;
    for (size_t i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

static void add_field(struct lenfield *f, size_t *nf, const char *name, unsigned num, size_t off, size_t w)
{
    assert_true(*nf < 64);
    snprintf(f[*nf].name, sizeof(f[*nf].name), "%s %u", name, num);
    f[*nf].off = off;
    f[*nf].width = w;
    (*nf)++;
}

/* Walk a known-good single-record capture and list every length field in it. */
static size_t tls_length_fields(const uint8_t *c, size_t n, struct lenfield *f)
{
    size_t nf = 0, p = 9 + 2 + 32;
    add_field(f, &nf, "record length", 0, 3, 2);
    add_field(f, &nf, "handshake length", 0, 6, 3);
    add_field(f, &nf, "session_id length", 0, p, 1);
    p += 1 + c[p];
    add_field(f, &nf, "cipher_suites length", 0, p, 2);
    p += 2 + be(c + p, 2);
    add_field(f, &nf, "compression_methods length", 0, p, 1);
    p += 1 + c[p];
    add_field(f, &nf, "extensions length", 0, p, 2);
    p += 2;
    while (p < n) {
        unsigned type = (unsigned)be(c + p, 2);
        size_t elen = be(c + p + 2, 2), e = p + 4;
        add_field(f, &nf, "length of extension", type, p + 2, 2);
        if (type == 0) {
            add_field(f, &nf, "server_name list length", 0, e, 2);
            add_field(f, &nf, "host_name length", 0, e + 3, 2);
        } else if (type == 16) {
            add_field(f, &nf, "ALPN list length", 0, e, 2);
            for (size_t q = e + 2; q < e + elen; q += 1 + c[q])
                add_field(f, &nf, "ALPN entry length at", (unsigned)q, q, 1);
        }
        p = e + elen;
    }
    assert_int_equal(p, n);
    return nf;
}

static void set_be(uint8_t *p, size_t w, size_t v)
{
    for (size_t i = 0; i < w; i++)
        p[i] = (uint8_t)(v >> (8 * (w - 1 - i)));
}

static void test_length_fields_off_by_one(void **state)
{
    for (size_t i = 0; i < N_TLS_CAPS; i++) {
        const struct vec_first_bytes_captures *c = capture(tls_caps[i].needle);
        struct lenfield f[64];
        size_t nf = tls_length_fields(c->bytes, c->bytes_len, f);
        assert_true(nf >= 12);
        for (size_t j = 0; j < nf; j++) {
            for (int d = -1; d <= 1; d += 2) {
                uint8_t *m = unit_exact(c->bytes, c->bytes_len);
                size_t v = be(m + f[j].off, f[j].width);
                set_be(m + f[j].off, f[j].width, v + (size_t)(ptrdiff_t)d);
                struct run x;
                run_tls(&x, m, c->bytes_len);
                free(m);
                int record_plus = f[j].off == 3 && d == 1;
                if (record_plus) {
                    /* the ClientHello is whole before the record ends: decided now */
                    check_fields(&x, &tls_caps[i].want);
                } else if (f[j].off == 3 || (f[j].off == 6 && d == 1)) {
                    /* the message now waits for (or runs into) another record */
                    if (x.st != TNL_SNIFF_NEED_MORE && x.st != TNL_SNIFF_INVALID)
                        fail_msg("%s: %s %+d: %s", tls_caps[i].needle, f[j].name, d,
                                 tnl_sniff_status_name(x.st));
                } else if (x.st != TNL_SNIFF_INVALID) {
                    fail_msg("%s: %s %+d: %s, want invalid", tls_caps[i].needle, f[j].name, d,
                             tnl_sniff_status_name(x.st));
                }
                if (x.st == TNL_SNIFF_INVALID) {
                    assert_non_null(x.r.error);
                    assert_string_equal(x.r.proto, "tls");
                    assert_int_equal(strncmp(x.r.error, "tls: ", 5), 0);
                }
                run_free(&x);
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* hand-made hellos                                                         */

/* A ClientHello handshake message with optional SNI / raw ALPN list / raw ext. */
static void make_hello(struct bb *hs, const char *sni, const char *alpn_raw, size_t alpn_len,
                       const void *ext_raw, size_t ext_len, int with_extensions)
{
    hs->n = 0;
    put_be(hs, 1, 1);
    size_t m = begin_len(hs, 3);
    put_be(hs, 0x0303, 2);
    for (int i = 0; i < 32; i++)
        put_be(hs, (size_t)i, 1);
    put_be(hs, 0, 1);                                   /* session_id */
    put(hs, "\x00\x02\x13\x01", 4);                     /* cipher_suites */
    put(hs, "\x01\x00", 2);                             /* compression */
    if (with_extensions) {
        size_t e = begin_len(hs, 2);
        if (sni) {
            put_be(hs, 0, 2);
            size_t el = begin_len(hs, 2);
            size_t l = begin_len(hs, 2);
            put_be(hs, 0, 1);
            put_be(hs, strlen(sni), 2);
            put(hs, sni, strlen(sni));
            end_len(hs, l, 2);
            end_len(hs, el, 2);
        }
        if (alpn_raw) {
            put_be(hs, 16, 2);
            put_be(hs, alpn_len + 2, 2);
            put_be(hs, alpn_len, 2);
            put(hs, alpn_raw, alpn_len);
        }
        if (ext_raw)
            put(hs, ext_raw, ext_len);
        end_len(hs, e, 2);
    }
    end_len(hs, m, 3);
}

static enum tnl_sniff_status sniff_hello(const struct bb *hs, const char **err)
{
    struct bb rec;
    reframe(&rec, hs->b, hs->n, 16384, NULL, 0);
    struct run x;
    run_tls(&x, rec.b, rec.n);
    enum tnl_sniff_status st = x.st;
    *err = x.r.error;
    run_free(&x);
    return st;
}

static void test_no_extensions(void **state)
{
    struct bb hs, rec;
    make_hello(&hs, NULL, NULL, 0, NULL, 0, 0);
    reframe(&rec, hs.b, hs.n, 16384, NULL, 0);
    struct run x;
    run_tls(&x, rec.b, rec.n);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.r.sni.n, 0);
    assert_int_equal(x.r.alpn.n, 0);
    assert_int_equal(x.r.tls_version, 0x0303);
    run_free(&x);
}

static void test_hand_made_sni_alpn(void **state)
{
    struct bb hs;
    const char *err;
    make_hello(&hs, "a.b", "\x02h2", 3, NULL, 0, 1);
    struct bb rec;
    reframe(&rec, hs.b, hs.n, 16384, NULL, 0);
    struct run x;
    run_tls(&x, rec.b, rec.n);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_slice_equal(x.r.sni, "a.b");
    run_free(&x);

    make_hello(&hs, "", NULL, 0, NULL, 0, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: empty host_name");

    make_hello(&hs, "bad\x01name", NULL, 0, NULL, 0, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_non_null(strstr(err, "host_name contains"));

    make_hello(&hs, "x.y", "\x02h2\x00", 4, NULL, 0, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: empty ALPN protocol name");

    make_hello(&hs, "x.y", "\x05h2", 3, NULL, 0, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: ALPN protocol name length exceeds list");

    /* a second server_name extension */
    make_hello(&hs, "x.y", NULL, 0, "\x00\x00\x00\x06\x00\x04\x00\x00\x01z", 10, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: duplicate server_name extension");

    /* a non-host_name entry is skipped */
    make_hello(&hs, NULL, NULL, 0, "\x00\x00\x00\x06\x00\x04\x07\x00\x01z", 10, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_MATCH);

    /* ALPN list shorter than its extension (a byte left over) */
    make_hello(&hs, "x.y", NULL, 0, "\x00\x10\x00\x05\x00\x02\x01h\x00", 9, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: ALPN list length shorter than extension");

    /* server_name list shorter than its extension */
    make_hello(&hs, NULL, NULL, 0, "\x00\x00\x00\x07\x00\x04\x00\x00\x01z\x00", 11, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: server_name list length shorter than extension");

    /* an extension running past the block */
    make_hello(&hs, "x.y", NULL, 0, "\x00\x17\x00\x05\x00", 5, 1);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: extension length exceeds extensions block");
}

/* Fixed-layout fields of the ClientHello, each wrong in a well-framed message. */
static void test_fixed_fields(void **state)
{
    struct bb hs;
    const char *err;
    hs.n = 0;
    put_be(&hs, 1, 1);
    size_t m = begin_len(&hs, 3);
    put_be(&hs, 0x0303, 2);
    for (int i = 0; i < 32; i++)
        put_be(&hs, 0xAA, 1);
    put_be(&hs, 33, 1);
    for (int i = 0; i < 33; i++)
        put_be(&hs, 0xBB, 1);
    put(&hs, "\x00\x02\x13\x01\x01\x00", 6);
    end_len(&hs, m, 3);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: session_id longer than 32 bytes");

    /* and an odd cipher_suites length */
    hs.n = 0;
    put_be(&hs, 1, 1);
    m = begin_len(&hs, 3);
    put_be(&hs, 0x0303, 2);
    for (int i = 0; i < 32; i++)
        put_be(&hs, 0xAA, 1);
    put(&hs, "\x00\x00\x03\x13\x01\x13\x01\x00", 8);
    end_len(&hs, m, 3);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: cipher_suites length is odd or zero");

    /* no compression method at all (and no extensions) */
    hs.n = 0;
    put_be(&hs, 1, 1);
    m = begin_len(&hs, 3);
    put_be(&hs, 0x0303, 2);
    for (int i = 0; i < 32; i++)
        put_be(&hs, 0xAA, 1);
    put(&hs, "\x00\x00\x02\x13\x01\x00", 6);
    end_len(&hs, m, 3);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: compression_methods is empty");

    /* a single byte where the extensions length should be */
    hs.b[hs.n - 1] = 1;
    put(&hs, "\x00\x00", 2);
    end_len(&hs, m, 3);
    assert_int_equal(sniff_hello(&hs, &err), TNL_SNIFF_INVALID);
    assert_string_equal(err, "tls: ClientHello truncated in extensions length");
}

static void test_record_layer(void **state)
{
    static const struct {
        const char *hex;
        enum tnl_sniff_status want;
    } cases[] = {
        { "", TNL_SNIFF_NEED_MORE },
        { "16", TNL_SNIFF_NEED_MORE },
        { "1603", TNL_SNIFF_NEED_MORE },
        { "16030100", TNL_SNIFF_NEED_MORE },
        { "1602", TNL_SNIFF_INVALID },              /* major version 2 */
        { "17030300100000", TNL_SNIFF_NO_MATCH },   /* application data */
        { "15030300020228", TNL_SNIFF_NO_MATCH },   /* alert */
        { "4745", TNL_SNIFF_NO_MATCH },
        { "1603014001", TNL_SNIFF_INVALID },        /* record length 16385 */
        { "1603010000", TNL_SNIFF_INVALID },        /* record length 0 */
        { "160301000402000000", TNL_SNIFF_INVALID },/* ServerHello first */
        { "1603010004010000", TNL_SNIFF_NEED_MORE },
        { "16030100040101", TNL_SNIFF_NEED_MORE },  /* handshake header split */
        { "160301000401010001", TNL_SNIFF_INVALID },     /* ClientHello length 65537 */
        { "160301000101" "160301000100" "16030100", TNL_SNIFF_NEED_MORE },
        { "160301000101" "170301000100", TNL_SNIFF_INVALID },  /* interrupted */
        { "16030100040100002a" "1503", TNL_SNIFF_INVALID },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n;
        uint8_t *b = unit_unhex(cases[i].hex, &n);
        struct run x;
        run_tls(&x, b, n);
        if (x.st != cases[i].want)
            fail_msg("case %zu (%s): %s", i, cases[i].hex, tnl_sniff_status_name(x.st));
        if (x.st == TNL_SNIFF_INVALID)
            assert_non_null(x.r.error);
        run_free(&x);
        free(b);
    }
}

/* The handshake header itself split over 1-byte records, then a truncated body. */
static void test_tiny_records_then_short_body(void **state)
{
    struct bb hs, rec;
    make_hello(&hs, "split.example", NULL, 0, NULL, 0, 1);
    hs.n -= 1;                                  /* drop the last byte: never whole */
    reframe(&rec, hs.b, hs.n, 1, NULL, 0);
    struct run x;
    run_tls(&x, rec.b, rec.n);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    run_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_match),
        cmocka_unit_test(test_capture_alpn_raw),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_trailing_bytes_still_match),
        cmocka_unit_test(test_reframed_chunks),
        cmocka_unit_test(test_two_records_every_split),
        cmocka_unit_test(test_sni_straddles_records),
        cmocka_unit_test(test_length_fields_off_by_one),
        cmocka_unit_test(test_no_extensions),
        cmocka_unit_test(test_hand_made_sni_alpn),
        cmocka_unit_test(test_fixed_fields),
        cmocka_unit_test(test_record_layer),
        cmocka_unit_test(test_tiny_records_then_short_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_proxy.c — PROXY protocol v1/v2 parser and v2 writer (core/sniff/proxy.c)
 * against haproxy 2.6's send-proxy / send-proxy-v2 captures: whole headers with
 * the payload that followed them, every prefix, v2 length and TLV lengths off
 * by one, the CRC32c TLV, hand-made v1/v2 headers, and writer round trips.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "unit.h"
#include "vectors.h"

#include "sniff/proxy.h"

typedef struct vec_proxy_protocol_haproxy_captures pcap_t;

static const pcap_t *pcap(const char *name)
{
    for (size_t i = 0; i < vec_proxy_protocol_haproxy_captures_count; i++)
        if (strcmp(vec_proxy_protocol_haproxy_captures[i].name, name) == 0)
            return &vec_proxy_protocol_haproxy_captures[i];
    fail_msg("no capture %s", name);
    return NULL;
}

struct run {
    uint8_t *buf;
    struct tnl_proxy_hdr h;
    const char *err;
    enum tnl_sniff_status st;
};

static void run_proxy(struct run *x, const void *p, size_t n)
{
    x->buf = unit_exact(p, n);
    x->err = NULL;
    x->st = tnl_proxy_parse(x->buf, n, &x->h, &x->err);
}

static enum tnl_sniff_status parse_str(const char *s, struct run *x)
{
    run_proxy(x, s, strlen(s));
    return x->st;
}

/* "addr" and port of a parsed sockaddr. */
static void check_addr(const struct sockaddr_storage *ss, const char *addr, long port)
{
    char text[INET6_ADDRSTRLEN];
    if (strchr(addr, ':')) {
        struct sockaddr_in6 sin6;
        assert_int_equal(ss->ss_family, AF_INET6);
        memcpy(&sin6, ss, sizeof(sin6));
        assert_non_null(inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text)));
        assert_int_equal(ntohs(sin6.sin6_port), port);
    } else {
        struct sockaddr_in sin;
        assert_int_equal(ss->ss_family, AF_INET);
        memcpy(&sin, ss, sizeof(sin));
        assert_non_null(inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text)));
        assert_int_equal(ntohs(sin.sin_port), port);
    }
    assert_string_equal(text, addr);
}

static void make_sa(struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
        memcpy(ss, &sin6, sizeof(sin6));
    } else {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
        assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
        memcpy(ss, &sin, sizeof(sin));
    }
}

/* CRC32c written here independently of proxy.c: table-less, reflected. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

/* ------------------------------------------------------------------------ */
/* the captures                                                             */

static void test_captures(void **state)
{
    assert_int_equal(vec_proxy_protocol_haproxy_captures_count, 4);
    for (size_t i = 0; i < vec_proxy_protocol_haproxy_captures_count; i++) {
        const pcap_t *c = &vec_proxy_protocol_haproxy_captures[i];
        uint8_t wire[256];
        size_t fl = strlen(c->followed_by);
        assert_int_equal(c->bytes_len, c->header_len);
        memcpy(wire, c->bytes, c->bytes_len);
        memcpy(wire + c->bytes_len, c->followed_by, fl);
        /* with and without the payload that followed */
        for (int with = 0; with <= 1; with++) {
            struct run x;
            run_proxy(&x, wire, c->bytes_len + (with ? fl : 0));
            if (x.st != TNL_SNIFF_MATCH)
                fail_msg("%s: %s (%s)", c->name, tnl_sniff_status_name(x.st), x.err ? x.err : "");
            assert_int_equal(x.h.header_len, c->header_len);
            assert_int_equal(x.h.version, c->name[1] - '0');
            assert_int_equal(x.h.local, 0);
            check_addr(&x.h.src, c->src_addr, c->src_port);
            check_addr(&x.h.dst, c->dst_addr, c->dst_port);
            if (x.h.version == 1)
                assert_int_equal(x.h.tlvs.n, 0);
            else
                assert_true(x.h.tlvs.p == x.buf + 16 + (strchr(c->src_addr, ':') ? 36 : 12));
            if (with)
                assert_memory_equal(x.buf + x.h.header_len, "HELLO", 5);
            free(x.buf);
        }
    }
}

static void test_every_prefix_needs_more(void **state)
{
    for (size_t i = 0; i < vec_proxy_protocol_haproxy_captures_count; i++) {
        const pcap_t *c = &vec_proxy_protocol_haproxy_captures[i];
        for (size_t k = 0; k < c->bytes_len; k++) {
            struct run x;
            run_proxy(&x, c->bytes, k);
            if (x.st != TNL_SNIFF_NEED_MORE)
                fail_msg("%s: prefix %zu: %s", c->name, k, tnl_sniff_status_name(x.st));
            assert_int_equal(x.h.header_len, 0);
            free(x.buf);
        }
    }
}

static void test_tlvs_and_crc32c(void **state)
{
    const pcap_t *c = pcap("v2 TCP4 + TLV unique-id + crc32c");
    struct run x;
    run_proxy(&x, c->bytes, c->bytes_len);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.h.tlvs.n, 7 + 19);
    size_t off = 0;
    uint8_t type;
    struct tnl_slice v;
    assert_int_equal(tnl_proxy_tlv_next(x.h.tlvs, &off, &type, &v), 1);
    assert_int_equal(type, TNL_PP2_TYPE_CRC32C);
    assert_int_equal(v.n, 4);
    uint32_t stored = (uint32_t)v.p[0] << 24 | (uint32_t)v.p[1] << 16 | (uint32_t)v.p[2] << 8 | v.p[3];
    assert_int_equal(stored, 0x94fae86f);
    /* the capture note: CRC32c over the header with the value zeroed */
    uint8_t copy[64];
    memcpy(copy, c->bytes, c->bytes_len);
    memset(copy + (v.p - x.buf), 0, 4);
    assert_int_equal(crc32c(copy, c->bytes_len), stored);
    assert_int_equal(tnl_proxy_tlv_next(x.h.tlvs, &off, &type, &v), 1);
    assert_int_equal(type, TNL_PP2_TYPE_UNIQUE_ID);
    assert_slice_equal(v, "abcdef0123456789");
    assert_int_equal(tnl_proxy_tlv_next(x.h.tlvs, &off, &type, &v), 0);
    free(x.buf);

    /* one flipped byte in the unique id: the checksum no longer agrees */
    copy[c->bytes_len - 1] ^= 1;
    memcpy(copy + 28 + 3, c->bytes + 28 + 3, 4);
    run_proxy(&x, copy, c->bytes_len);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.err, "proxy: v2 CRC32c mismatch");
    free(x.buf);
}

/* The v2 length field and each TLV length, off by one both ways. */
static void test_v2_lengths_off_by_one(void **state)
{
    for (size_t i = 0; i < vec_proxy_protocol_haproxy_captures_count; i++) {
        const pcap_t *c = &vec_proxy_protocol_haproxy_captures[i];
        if (c->bytes[0] != '\r')
            continue;
        size_t fields[8], nf = 0;
        fields[nf++] = 14;                              /* the header length */
        size_t alen = c->bytes[13] == 0x21 ? 36 : 12;
        for (size_t off = 16 + alen; off < c->bytes_len; off += 3 + ((size_t)c->bytes[off + 1] << 8 | c->bytes[off + 2]))
            fields[nf++] = off + 1;                     /* a TLV length */
        for (size_t j = 0; j < nf; j++) {
            for (int d = -1; d <= 1; d += 2) {
                for (int with = 0; with <= 1; with++) {
                    uint8_t m[128];
                    memcpy(m, c->bytes, c->bytes_len);
                    memcpy(m + c->bytes_len, "HELLO", 5);
                    unsigned v = (unsigned)(m[fields[j]] << 8 | m[fields[j] + 1]) + (unsigned)d;
                    m[fields[j]] = (uint8_t)(v >> 8);
                    m[fields[j] + 1] = (uint8_t)v;
                    struct run x;
                    run_proxy(&x, m, c->bytes_len + (with ? 5 : 0));
                    int ok = x.st == TNL_SNIFF_INVALID ||
                             (x.st == TNL_SNIFF_NEED_MORE && fields[j] == 14 && d == 1 && !with);
                    if (!ok)
                        fail_msg("%s: length at %zu %+d (%s): %s %s", c->name, fields[j], d,
                                 with ? "+HELLO" : "alone", tnl_sniff_status_name(x.st), x.err ? x.err : "");
                    if (x.st == TNL_SNIFF_INVALID)
                        assert_int_equal(strncmp(x.err, "proxy: v2 ", 10), 0);
                    free(x.buf);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* v1 by hand                                                               */

static void test_v1_hand_made(void **state)
{
    struct run x;
    assert_int_equal(parse_str("PROXY TCP6 2001:db8::1 ::1 65535 0\r\nGET", &x), TNL_SNIFF_MATCH);
    assert_int_equal(x.h.header_len, 36);
    check_addr(&x.h.src, "2001:db8::1", 65535);
    check_addr(&x.h.dst, "::1", 0);
    free(x.buf);

    assert_int_equal(parse_str("PROXY TCP4 10.0.0.1 192.168.1.2 1 443\r\n", &x), TNL_SNIFF_MATCH);
    check_addr(&x.h.src, "10.0.0.1", 1);
    check_addr(&x.h.dst, "192.168.1.2", 443);
    free(x.buf);

    assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &x), TNL_SNIFF_MATCH);
    assert_int_equal(x.h.local, 1);
    assert_int_equal(x.h.version, 1);
    assert_int_equal(x.h.header_len, 15);
    free(x.buf);
    assert_int_equal(parse_str("PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n", &x), TNL_SNIFF_MATCH);
    assert_int_equal(x.h.local, 1);
    free(x.buf);

    /* the longest possible TCP6 line is 104 bytes; a 107-byte line is the limit */
    char line[200];
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    run_proxy(&x, line, 107);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.h.header_len, 107);
    free(x.buf);
    memcpy(line + 105, "x\r\n", 3);
    run_proxy(&x, line, 106);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    free(x.buf);
    run_proxy(&x, line, 107);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.err, "proxy: v1 line not terminated by CRLF within 107 bytes");
    free(x.buf);
    memset(line, '1', sizeof(line));
    memcpy(line, "PROXY TCP4 ", 11);
    run_proxy(&x, line, 150);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    free(x.buf);
}

static void test_v1_malformed(void **state)
{
    static const char *const bad[] = {
        "PROXY TCP4 127.0.0.1 127.0.0.1 65536 80\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 80 65536\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 080 80\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 99999 80\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 8a 80\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 80\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 80 80 80\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1  80 80\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 80 80 \r\n",
        "PROXY TCP4 127.0.0.256 127.0.0.1 80 80\r\n",
        "PROXY TCP4 127.1 127.0.0.1 80 80\r\n",
        "PROXY TCP4 ::1 ::1 80 80\r\n",
        "PROXY TCP6 127.0.0.1 127.0.0.1 80 80\r\n",
        "PROXY TCP5 127.0.0.1 127.0.0.1 80 80\r\n",
        "PROXY tcp4 127.0.0.1 127.0.0.1 80 80\r\n",
        "PROXY \r\n",
        "PROXY TCP4\r\n",
        "PROXY TCP4 127.0.0.1 127.0.0.1 80 80\rX",
        "PROXY TCP4 127.0.0.1 127.0.0.1 80 80\n",
        "PROXY TCP4 127.0.0.1\t127.0.0.1 80 80\r\n",
        "PROXY TCP4 -1.0.0.1 127.0.0.1 80 80\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct run x;
        if (parse_str(bad[i], &x) != TNL_SNIFF_INVALID)
            fail_msg("case %zu (%s): %s", i, bad[i], tnl_sniff_status_name(x.st));
        assert_non_null(x.err);
        assert_int_equal(strncmp(x.err, "proxy: v1 ", 10), 0);
        assert_int_equal(x.h.header_len, 0);
        free(x.buf);
    }
}

static void test_decides_early(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        enum tnl_sniff_status want;
    } cases[] = {
        { "", 0, TNL_SNIFF_NEED_MORE },
        { "G", 1, TNL_SNIFF_NO_MATCH },
        { "\x16", 1, TNL_SNIFF_NO_MATCH },
        { "\x00", 1, TNL_SNIFF_NO_MATCH },
        { "P", 1, TNL_SNIFF_NEED_MORE },
        { "PO", 2, TNL_SNIFF_NO_MATCH },               /* POST */
        { "PROX", 4, TNL_SNIFF_NEED_MORE },
        { "PROXY", 5, TNL_SNIFF_NEED_MORE },
        { "PROXYZ", 6, TNL_SNIFF_NO_MATCH },
        { "PROXY TCP4 1.2", 14, TNL_SNIFF_NEED_MORE },
        { "PROXY TCP4 1.2\x00", 15, TNL_SNIFF_INVALID },
        { "\r", 1, TNL_SNIFF_NEED_MORE },
        { "\r\n\r\n", 4, TNL_SNIFF_NEED_MORE },
        { "\r\n\r\n\x00\r\nQUIT", 11, TNL_SNIFF_NEED_MORE },
        { "\r\nX", 3, TNL_SNIFF_NO_MATCH },
        { "\r\n\r\n\x00\r\nQUIT\n", 12, TNL_SNIFF_NEED_MORE },
        { "\r\n\r\n\x00\r\nQUIT\n\x11", 13, TNL_SNIFF_INVALID },   /* version 1 */
        { "\r\n\r\n\x00\r\nQUIT\n\x22", 13, TNL_SNIFF_INVALID },   /* command 2 */
        { "\r\n\r\n\x00\r\nQUIT\n\x21\x12", 14, TNL_SNIFF_INVALID },   /* UDP */
        { "\r\n\r\n\x00\r\nQUIT\n\x21\x31", 14, TNL_SNIFF_INVALID },   /* unix */
        { "\r\n\r\n\x00\r\nQUIT\n\x21\x41", 14, TNL_SNIFF_INVALID },   /* unknown family */
        { "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0b", 16, TNL_SNIFF_INVALID },   /* < 12 */
        { "\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x23", 16, TNL_SNIFF_INVALID },   /* < 36 */
        { "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c", 16, TNL_SNIFF_NEED_MORE },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run x;
        run_proxy(&x, cases[i].s, cases[i].n);
        if (x.st != cases[i].want)
            fail_msg("case %zu: %s (%s)", i, tnl_sniff_status_name(x.st), x.err ? x.err : "");
        free(x.buf);
    }
}

static void test_v2_local_and_unspec(void **state)
{
    struct run x;
    /* LOCAL, UNSPEC, no address: health checks from the balancer */
    run_proxy(&x, "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00" "DATA", 20);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.h.local, 1);
    assert_int_equal(x.h.version, 2);
    assert_int_equal(x.h.header_len, 16);
    assert_int_equal(x.h.tlvs.n, 0);
    free(x.buf);
    /* LOCAL with an IPv4 block: addresses ignored */
    run_proxy(&x, "\r\n\r\n\x00\r\nQUIT\n\x20\x11\x00\x0c" "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02", 28);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.h.local, 1);
    assert_int_equal(x.h.header_len, 28);
    assert_int_equal(x.h.src.ss_family, 0);
    free(x.buf);
    /* PROXY with UNSPEC: accepted, the socket's own addresses are kept */
    run_proxy(&x, "\r\n\r\n\x00\r\nQUIT\n\x21\x00\x00\x03" "\x04\x00\x00", 19);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.h.local, 1);
    assert_int_equal(x.h.tlvs.n, 3);
    free(x.buf);
    /* LOCAL over unix sockets: the 216-byte block must be there */
    run_proxy(&x, "\r\n\r\n\x00\r\nQUIT\n\x20\x31\x00\x10", 16);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    free(x.buf);
}

/* A TLV without checksum whose length runs past the header by 1..3 bytes. */
static void test_v2_tlv_bounds(void **state)
{
    uint8_t h[40];
    memcpy(h, "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x11", 16);
    memcpy(h + 16, "\x7f\x00\x00\x01\x7f\x00\x00\x02\x00\x50\x01\xbb", 12);
    memcpy(h + 28, "\xe0\x00\x02" "ab" "HELLO", 10);
    struct run x;
    run_proxy(&x, h, 38);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.h.header_len, 33);
    size_t off = 0;
    uint8_t type;
    struct tnl_slice v;
    assert_int_equal(tnl_proxy_tlv_next(x.h.tlvs, &off, &type, &v), 1);
    assert_int_equal(type, TNL_PP2_TYPE_TNL_SERVICE);
    assert_slice_equal(v, "ab");
    assert_int_equal(tnl_proxy_tlv_next(x.h.tlvs, &off, &type, &v), 0);
    free(x.buf);
    for (uint8_t len = 3; len <= 5; len++) {
        h[30] = len;
        run_proxy(&x, h, 38);
        assert_int_equal(x.st, TNL_SNIFF_INVALID);
        assert_string_equal(x.err, "proxy: v2 TLV length exceeds the header length");
        free(x.buf);
    }
    h[30] = 1;                                  /* one byte left over: a cut TLV header */
    run_proxy(&x, h, 38);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.err, "proxy: v2 TLV header truncated by the header length");
    free(x.buf);
    /* tlv_next never walks past a lying area either */
    uint8_t *lie = unit_exact((const uint8_t *)"\xe0\x00\x05" "ab", 5);
    off = 0;
    assert_int_equal(tnl_proxy_tlv_next((struct tnl_slice){ lie, 5 }, &off, &type, &v), 0);
    free(lie);
}

/* ------------------------------------------------------------------------ */
/* writer                                                                   */

static void test_write_equals_haproxy(void **state)
{
    const pcap_t *c = pcap("v2 TCP4 (send-proxy-v2)");
    struct sockaddr_storage s, d;
    make_sa(&s, c->src_addr, (uint16_t)c->src_port);
    make_sa(&d, c->dst_addr, (uint16_t)c->dst_port);
    uint8_t out[64];
    int n = tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d, NULL, 0);
    assert_int_equal(n, c->bytes_len);
    assert_memory_equal(out, c->bytes, c->bytes_len);

    /* with the CRC32c and unique-id TLVs in haproxy's order: byte-identical too */
    const pcap_t *c3 = pcap("v2 TCP4 + TLV unique-id + crc32c");
    make_sa(&s, c3->src_addr, (uint16_t)c3->src_port);
    make_sa(&d, c3->dst_addr, (uint16_t)c3->dst_port);
    struct tnl_proxy_tlv t[2] = {
        { TNL_PP2_TYPE_CRC32C, NULL, 4 },
        { TNL_PP2_TYPE_UNIQUE_ID, "abcdef0123456789", 16 },
    };
    n = tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d, t, 2);
    assert_int_equal(n, c3->bytes_len);
    assert_memory_equal(out, c3->bytes, c3->bytes_len);

    const pcap_t *c6 = pcap("v2 TCP6 (send-proxy-v2 from ::1)");
    make_sa(&s, c6->src_addr, (uint16_t)c6->src_port);
    make_sa(&d, c6->dst_addr, (uint16_t)c6->dst_port);
    n = tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d, NULL, 0);
    assert_int_equal(n, c6->bytes_len);
    assert_memory_equal(out, c6->bytes, c6->bytes_len);
}

static void round_trip(const char *src, uint16_t sport, const char *dst, uint16_t dport,
                       const char *want_src, const char *want_dst)
{
    struct sockaddr_storage s, d;
    make_sa(&s, src, sport);
    make_sa(&d, dst, dport);
    struct tnl_proxy_tlv t[3] = {
        { TNL_PP2_TYPE_AUTHORITY, "app.example.com", 15 },
        { TNL_PP2_TYPE_TNL_SERVICE, "web", 3 },
        { TNL_PP2_TYPE_CRC32C, NULL, 4 },
    };
    uint8_t out[256];
    int n = tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d, t, 3);
    size_t alen = strchr(want_src, ':') ? 36 : 12;
    assert_int_equal(n, 16 + alen + 18 + 6 + 7);
    struct run x;
    run_proxy(&x, out, (size_t)n);
    if (x.st != TNL_SNIFF_MATCH)
        fail_msg("%s: %s", tnl_sniff_status_name(x.st), x.err ? x.err : "");
    assert_int_equal(x.h.header_len, n);
    check_addr(&x.h.src, want_src, sport);
    check_addr(&x.h.dst, want_dst, dport);
    size_t off = 0, k = 0;
    uint8_t type;
    struct tnl_slice v;
    while (tnl_proxy_tlv_next(x.h.tlvs, &off, &type, &v)) {
        assert_true(k < 3);
        assert_int_equal(type, t[k].type);
        assert_int_equal(v.n, t[k].len);
        if (t[k].value)
            assert_memory_equal(v.p, t[k].value, t[k].len);
        k++;
    }
    assert_int_equal(k, 3);
    free(x.buf);
    /* too small by one byte */
    assert_int_equal(tnl_proxy_v2_write(out, (size_t)n - 1, (struct sockaddr *)&s, (struct sockaddr *)&d, t, 3),
                     -ENOSPC);
}

static void test_write_round_trip(void **state)
{
    round_trip("192.0.2.10", 51000, "198.51.100.7", 443, "192.0.2.10", "198.51.100.7");
    round_trip("2001:db8::10", 1, "2001:db8::7", 65535, "2001:db8::10", "2001:db8::7");
    /* mixed families: IPv6 with a v4-mapped address */
    round_trip("192.0.2.10", 8080, "2001:db8::7", 80, "::ffff:192.0.2.10", "2001:db8::7");
}

static void test_write_errors(void **state)
{
    struct sockaddr_storage s, d, u;
    make_sa(&s, "127.0.0.1", 1);
    make_sa(&d, "127.0.0.1", 2);
    memset(&u, 0, sizeof(u));
    u.ss_family = AF_UNIX;
    uint8_t out[128];
    assert_int_equal(tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&u, (struct sockaddr *)&d, NULL, 0),
                     -EINVAL);
    assert_int_equal(tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&u, NULL, 0),
                     -EINVAL);
    assert_int_equal(tnl_proxy_v2_write(out, 27, (struct sockaddr *)&s, (struct sockaddr *)&d, NULL, 0), -ENOSPC);
    assert_int_equal(tnl_proxy_v2_write(out, 28, (struct sockaddr *)&s, (struct sockaddr *)&d, NULL, 0), 28);
    /* TLV area over 65535 bytes */
    static uint8_t big[65535];
    struct tnl_proxy_tlv t[2] = { { 0xE1, big, 65535 }, { 0xE2, big, 10 } };
    assert_int_equal(tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d, t, 2),
                     -EINVAL);
    /* the largest that fits: 12 + 3 + 65520 = 65535 */
    uint8_t *huge = malloc(16 + 65535);
    assert_non_null(huge);
    t[0].len = 65520;
    int n = tnl_proxy_v2_write(huge, 16 + 65535, (struct sockaddr *)&s, (struct sockaddr *)&d, t, 1);
    assert_int_equal(n, 16 + 65535);
    struct run x;
    run_proxy(&x, huge, (size_t)n);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.h.header_len, TNL_PROXY_V2_MAX);
    free(x.buf);
    free(huge);
    /* a CRC32C TLV must be 4 bytes */
    struct tnl_proxy_tlv crc = { TNL_PP2_TYPE_CRC32C, NULL, 3 };
    assert_int_equal(tnl_proxy_v2_write(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d, &crc, 1),
                     -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_tlvs_and_crc32c),
        cmocka_unit_test(test_v2_lengths_off_by_one),
        cmocka_unit_test(test_v1_hand_made),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_decides_early),
        cmocka_unit_test(test_v2_local_and_unspec),
        cmocka_unit_test(test_v2_tlv_bounds),
        cmocka_unit_test(test_write_equals_haproxy),
        cmocka_unit_test(test_write_round_trip),
        cmocka_unit_test(test_write_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_proxy.c — libFuzzer harness for tnl_proxy_parse, tnl_proxy_tlv_next and
 * tnl_proxy_v2_write (core/sniff/proxy.c).
 *
 * Exactly-sized copies of the input. Invariants: a valid status; on MATCH
 * header_len <= len (v1: <= 107 and ends in CR LF; v2: 16 + the length field),
 * the TLV area lies inside the header and walks to its exact end, addresses are
 * AF_INET/AF_INET6 unless local; INVALID sets a "proxy: " message; a decision on
 * a prefix stands with more bytes; and a v2 PROXY header re-written by
 * tnl_proxy_v2_write from what was parsed parses back to the same addresses
 * and TLVs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sniff/proxy.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } } while (0)

static size_t tlv_walk(struct tnl_slice tlvs, struct tnl_proxy_tlv *out, size_t max)
{
    size_t off = 0, n = 0;
    uint8_t type;
    struct tnl_slice v;

    while (tnl_proxy_tlv_next(tlvs, &off, &type, &v)) {
        CHECK(v.p >= tlvs.p && v.p + v.n <= tlvs.p + tlvs.n);
        if (out && n < max)
            out[n] = (struct tnl_proxy_tlv){ type, v.p, (uint16_t)v.n };
        n++;
    }
    CHECK(off == tlvs.n);
    return n;
}

static void check_match(const uint8_t *buf, size_t size, const struct tnl_proxy_hdr *h)
{
    CHECK(h->header_len <= size);
    CHECK(h->version == 1 || h->version == 2);
    if (h->version == 1) {
        CHECK(h->header_len >= 8 && h->header_len <= 107);
        CHECK(buf[h->header_len - 2] == '\r' && buf[h->header_len - 1] == '\n');
        CHECK(h->tlvs.n == 0);
    } else {
        CHECK(h->header_len == 16 + ((size_t)buf[14] << 8 | buf[15]));
        CHECK(h->tlvs.n == 0 || (h->tlvs.p >= buf + 16 && h->tlvs.p + h->tlvs.n == buf + h->header_len));
        tlv_walk(h->tlvs, NULL, 0);
    }
    if (!h->local) {
        CHECK(h->src.ss_family == AF_INET || h->src.ss_family == AF_INET6);
        CHECK(h->dst.ss_family == h->src.ss_family);
    }
}

/* Write back what was parsed; it must parse to the same thing. */
static void check_rewrite(const struct tnl_proxy_hdr *h)
{
    size_t max = h->tlvs.n / 3 + 1;
    struct tnl_proxy_tlv *t = calloc(max, sizeof(*t));
    size_t n = tlv_walk(h->tlvs, t, max);
    uint8_t *out = malloc(TNL_PROXY_V2_MAX);
    int w = tnl_proxy_v2_write(out, TNL_PROXY_V2_MAX, (const struct sockaddr *)&h->src,
                               (const struct sockaddr *)&h->dst, t, n);
    CHECK(w > 0);
    CHECK((size_t)w == h->header_len);
    struct tnl_proxy_hdr h2;
    const char *err = NULL;
    CHECK(tnl_proxy_parse(out, (size_t)w, &h2, &err) == TNL_SNIFF_MATCH);
    CHECK(h2.header_len == h->header_len && h2.local == 0);
    CHECK(memcmp(&h2.src, &h->src, sizeof(h->src)) == 0);
    CHECK(memcmp(&h2.dst, &h->dst, sizeof(h->dst)) == 0);
    CHECK(h2.tlvs.n == h->tlvs.n);
    free(out);
    free(t);
}

static enum tnl_sniff_status parse(const uint8_t *data, size_t size, struct tnl_proxy_hdr *h,
                                   uint8_t **keep)
{
    uint8_t *buf = malloc(size ? size : 1);
    const char *err = NULL;

    if (size)
        memcpy(buf, data, size);
    enum tnl_sniff_status st = tnl_proxy_parse(buf, size, h, &err);
    CHECK(st <= TNL_SNIFF_INVALID);
    if (st == TNL_SNIFF_INVALID)
        CHECK(err && strncmp(err, "proxy: ", 7) == 0);
    else if (st == TNL_SNIFF_MATCH)
        check_match(buf, size, h);
    else
        CHECK(h->header_len == 0);
    *keep = buf;
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tnl_proxy_hdr h, hp;
    uint8_t *buf, *pbuf;

    enum tnl_sniff_status st = parse(data, size, &h, &buf);
    if (st == TNL_SNIFF_MATCH && h.version == 2 && !h.local)
        check_rewrite(&h);
    if (size > 0) {
        enum tnl_sniff_status pst = parse(data, size - 1, &hp, &pbuf);
        if (pst != TNL_SNIFF_NEED_MORE)
            CHECK(pst == st);
        if (pst == TNL_SNIFF_MATCH)
            CHECK(hp.header_len == h.header_len && memcmp(&hp.src, &h.src, sizeof(h.src)) == 0);
        free(pbuf);
    }
    free(buf);
    return 0;
}

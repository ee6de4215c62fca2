/*
 * fuzz_sniff_tls.c — libFuzzer harness for tnl_sniff_tls (core/sniff/tls.c).
 *
 * The input is the peek: copied into an exactly-sized heap buffer, with a scratch
 * buffer of exactly the same size. Invariants: the status is one of the four;
 * on MATCH every slice lies in the peek or in scratch, the SNI is printable and
 * the ALPN list walks to its exact end; INVALID carries a "tls: " message;
 * NEED_MORE/NO_MATCH fill nothing; and a decision taken on a prefix stands when
 * more bytes arrive (the sniffer is monotonic).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sniff/sniff.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } } while (0)

struct outcome {
    enum tnl_sniff_status st;
    struct tnl_sniff_result r;
    uint8_t *buf, *scratch;
};

static int inside(struct tnl_slice s, const uint8_t *base, size_t n)
{
    if (s.n == 0)
        return 1;
    return s.p >= base && s.n <= n && (size_t)(s.p - base) <= n - s.n;
}

static void sniff(struct outcome *o, const uint8_t *data, size_t size)
{
    o->buf = malloc(size ? size : 1);
    o->scratch = malloc(size ? size : 1);
    if (size)
        memcpy(o->buf, data, size);
    tnl_sniff_result_init(&o->r, o->scratch, size);
    o->st = tnl_sniff_tls(o->buf, size, &o->r);
}

static void check(const struct outcome *o, size_t size)
{
    const struct tnl_sniff_result *r = &o->r;

    CHECK(o->st == TNL_SNIFF_NEED_MORE || o->st == TNL_SNIFF_MATCH ||
          o->st == TNL_SNIFF_NO_MATCH || o->st == TNL_SNIFF_INVALID);
    if (o->st == TNL_SNIFF_MATCH) {
        CHECK(r->proto && strcmp(r->proto, "tls") == 0);
        CHECK(inside(r->sni, o->buf, size) || inside(r->sni, o->scratch, size));
        CHECK(inside(r->alpn, o->buf, size) || inside(r->alpn, o->scratch, size));
        for (size_t i = 0; i < r->sni.n; i++)
            CHECK(r->sni.p[i] > 0x20 && r->sni.p[i] < 0x7f);
        size_t off = 0, names = 0;
        struct tnl_slice name;
        while (tnl_sniff_alpn_next(r->alpn, &off, &name)) {
            CHECK(name.n > 0);
            names++;
        }
        CHECK(off == r->alpn.n);
        CHECK(r->alpn.n == 0 || names > 0);
        CHECK(size >= 5 && o->buf[0] == 0x16);
    } else if (o->st == TNL_SNIFF_INVALID) {
        CHECK(r->error && strncmp(r->error, "tls: ", 5) == 0);
    } else {
        CHECK(r->proto == NULL && r->sni.n == 0 && r->alpn.n == 0);
    }
}

static int same_slice(struct tnl_slice a, struct tnl_slice b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void release(struct outcome *o)
{
    free(o->buf);
    free(o->scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome full, part;

    sniff(&full, data, size);
    check(&full, size);
    if (size > 0) {
        sniff(&part, data, size - 1);
        check(&part, size - 1);
        if (part.st != TNL_SNIFF_NEED_MORE) {
            CHECK(part.st == full.st);
            if (full.st == TNL_SNIFF_MATCH) {
                CHECK(same_slice(part.r.sni, full.r.sni));
                CHECK(same_slice(part.r.alpn, full.r.alpn));
                CHECK(part.r.tls_version == full.r.tls_version);
            }
        }
        release(&part);
    }
    release(&full);
    return 0;
}

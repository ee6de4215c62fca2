/*
 * fuzz_sniff_pg.c — libFuzzer harness for tnl_sniff_pg (core/sniff/pg.c).
 *
 * Exactly-sized copies of the input; invariants: a valid status; on MATCH at most
 * one of ssl/gssenc/cancel is set, the whole message is in the peek and its
 * length is 8..10000, user/database lie in the peek and hold no NUL; INVALID
 * carries a "pg: " message; a decision on a prefix stands with more bytes.
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
    o->st = tnl_sniff_pg(o->buf, size, &o->r);
}

static void check(const struct outcome *o, size_t size)
{
    const struct tnl_sniff_result *r = &o->r;

    CHECK(o->st == TNL_SNIFF_NEED_MORE || o->st == TNL_SNIFF_MATCH ||
          o->st == TNL_SNIFF_NO_MATCH || o->st == TNL_SNIFF_INVALID);
    if (o->st == TNL_SNIFF_MATCH) {
        CHECK(r->proto && strcmp(r->proto, "postgresql") == 0);
        CHECK(r->pg.ssl + r->pg.gssenc + r->pg.cancel <= 1);
        CHECK(size >= 8);
        size_t mlen = (size_t)o->buf[0] << 24 | (size_t)o->buf[1] << 16 | (size_t)o->buf[2] << 8 | o->buf[3];
        CHECK(mlen >= 8 && mlen <= 10000 && mlen <= size);
        CHECK(inside(r->pg.user, o->buf, mlen) && inside(r->pg.database, o->buf, mlen));
        CHECK(r->pg.user.n == 0 || memchr(r->pg.user.p, 0, r->pg.user.n) == NULL);
        CHECK(r->pg.database.n == 0 || memchr(r->pg.database.p, 0, r->pg.database.n) == NULL);
        if (r->pg.ssl || r->pg.gssenc || r->pg.cancel)
            CHECK(r->pg.user.n == 0 && r->pg.database.n == 0);
    } else if (o->st == TNL_SNIFF_INVALID) {
        CHECK(r->error && strncmp(r->error, "pg: ", 4) == 0);
        CHECK(r->pg.user.n == 0 && r->pg.database.n == 0);
    } else {
        CHECK(r->proto == NULL && r->pg.ssl == 0 && r->pg.user.n == 0);
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
                CHECK(same_slice(part.r.pg.user, full.r.pg.user));
                CHECK(same_slice(part.r.pg.database, full.r.pg.database));
                CHECK(part.r.pg.ssl == full.r.pg.ssl && part.r.pg.gssenc == full.r.pg.gssenc &&
                      part.r.pg.cancel == full.r.pg.cancel);
            }
        }
        release(&part);
    }
    release(&full);
    return 0;
}

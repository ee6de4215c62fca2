/*
 * fuzz_sniff_http1.c — libFuzzer harness for tnl_sniff_http1 (core/sniff/http1.c).
 *
 * Exactly-sized copies of the input; invariants: a valid status; on MATCH the
 * method is 1..16 of [A-Z_-], path/host lie in the peek, http_minor is 0 or 1 and
 * the peek holds an empty line; INVALID carries an "http: " message; a decision
 * taken on a prefix stands when more bytes arrive.
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
    o->st = tnl_sniff_http1(o->buf, size, &o->r);
}

static void check(const struct outcome *o, size_t size)
{
    const struct tnl_sniff_result *r = &o->r;

    CHECK(o->st == TNL_SNIFF_NEED_MORE || o->st == TNL_SNIFF_MATCH ||
          o->st == TNL_SNIFF_NO_MATCH || o->st == TNL_SNIFF_INVALID);
    if (o->st == TNL_SNIFF_MATCH) {
        CHECK(r->proto && strcmp(r->proto, "http") == 0);
        CHECK(r->method.n >= 1 && r->method.n <= 16 && r->method.p == o->buf);
        for (size_t i = 0; i < r->method.n; i++)
            CHECK((r->method.p[i] >= 'A' && r->method.p[i] <= 'Z') || r->method.p[i] == '-' ||
                  r->method.p[i] == '_');
        CHECK(r->path.n >= 1 && inside(r->path, o->buf, size));
        CHECK(inside(r->host, o->buf, size));
        CHECK(memchr(r->path.p, ' ', r->path.n) == NULL);
        CHECK(r->http_minor <= 1);
        CHECK(memchr(o->buf, '\n', size) != NULL);
    } else if (o->st == TNL_SNIFF_INVALID) {
        CHECK(r->error && strncmp(r->error, "http: ", 6) == 0);
    } else {
        CHECK(r->proto == NULL && r->method.n == 0 && r->host.n == 0);
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
                CHECK(same_slice(part.r.method, full.r.method));
                CHECK(same_slice(part.r.path, full.r.path));
                CHECK(same_slice(part.r.host, full.r.host));
                CHECK(part.r.http_minor == full.r.http_minor);
            }
        }
        release(&part);
    }
    release(&full);
    return 0;
}

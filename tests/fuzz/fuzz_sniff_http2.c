/*
 * fuzz_sniff_http2.c — libFuzzer harness for tnl_sniff_http2 (core/sniff/http2.c).
 *
 * Exactly-sized copies of the input; the answer is checked against a direct
 * comparison with the 24-byte preface, and a decision on a prefix must stand.
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

static void sniff(struct outcome *o, const uint8_t *data, size_t size)
{
    o->buf = malloc(size ? size : 1);
    o->scratch = malloc(size ? size : 1);
    if (size)
        memcpy(o->buf, data, size);
    tnl_sniff_result_init(&o->r, o->scratch, size);
    o->st = tnl_sniff_http2(o->buf, size, &o->r);
}

static void check(const struct outcome *o, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t n = size < 24 ? size : 24;
    int agree = n == 0 || memcmp(o->buf, preface, n) == 0;

    if (!agree)
        CHECK(o->st == TNL_SNIFF_NO_MATCH);
    else if (size < 24)
        CHECK(o->st == TNL_SNIFF_NEED_MORE);
    else
        CHECK(o->st == TNL_SNIFF_MATCH && o->r.proto && strcmp(o->r.proto, "http2") == 0);
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
        if (part.st != TNL_SNIFF_NEED_MORE)
            CHECK(part.st == full.st);
        release(&part);
    }
    release(&full);
    return 0;
}

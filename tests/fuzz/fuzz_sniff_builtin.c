/*
 * fuzz_sniff_builtin.c — libFuzzer harness for the dispatcher tnl_sniff_builtin
 * (core/sniff/sniff.c) over all the built-in sniffers.
 *
 * Exactly-sized copies of the input and an exactly-sized scratch buffer. The
 * dispatcher's answer must be what walking the table by hand gives: the first
 * MATCH or INVALID wins (with that sniffer's name as proto), otherwise NEED_MORE
 * if anyone needs more, otherwise NO_MATCH. At most one built-in may MATCH any
 * input (they are disjoint by their first bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sniff/sniff.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1), *scratch = malloc(size ? size : 1);
    struct tnl_sniff_result r, one;
    const char *first = NULL;
    enum tnl_sniff_status want = TNL_SNIFF_NO_MATCH;
    int matches = 0;

    if (size)
        memcpy(buf, data, size);
    for (const struct tnl_sniffer *s = tnl_sniffers_builtin; s->parse; s++) {
        tnl_sniff_result_init(&one, scratch, size);
        enum tnl_sniff_status st = s->parse(buf, size, &one);
        CHECK(st <= TNL_SNIFF_INVALID);
        matches += st == TNL_SNIFF_MATCH;
        if (!first && (st == TNL_SNIFF_MATCH || st == TNL_SNIFF_INVALID)) {
            first = s->name;
            want = st;
        } else if (!first && st == TNL_SNIFF_NEED_MORE) {
            want = TNL_SNIFF_NEED_MORE;
        }
    }
    CHECK(matches <= 1);

    tnl_sniff_result_init(&r, scratch, size);
    enum tnl_sniff_status got = tnl_sniff_builtin(buf, size, &r);
    CHECK(got == want);
    CHECK(r.scratch == scratch && r.scratch_cap == size);
    if (first)
        CHECK(r.proto && strcmp(r.proto, first) == 0);
    else
        CHECK(r.proto == NULL);
    if (got == TNL_SNIFF_INVALID)
        CHECK(r.error != NULL);
    free(buf);
    free(scratch);
    return 0;
}

/*
 * fuzz_mux_frame.c — libFuzzer harness for tnl_mux_frame_decode / _encode
 * (core/mux/frame.c).
 *
 * Exactly-sized copies of the input, decoded at every offset (a stream of
 * headers back to back). Invariants: a known status; NEED_MORE exactly when
 * fewer than 12 bytes; an error message exactly for non-OK statuses; an OK
 * header obeys every rule (version 0, type 0..3, known flags, stream 0 only
 * for Ping/GoAway, Ping flags SYN or ACK, Data length <= max) and re-encodes to
 * the same 12 bytes; the max bound only ever changes OK into TOO_LONG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mux/frame.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } } while (0)

static void check_one(const uint8_t *p, size_t n)
{
    struct tnl_mux_frame f, g;
    const char *err = NULL, *err2 = NULL;
    enum tnl_mux_frame_status st = tnl_mux_frame_decode(p, n, 1u << 24, &f, &err);
    CHECK((unsigned)st < TNL_MUX_FRAME_STATUS_COUNT);
    CHECK((st == TNL_MUX_FRAME_NEED_MORE) == (n < TNL_MUX_HDR_LEN));
    CHECK((st == TNL_MUX_FRAME_OK) == (err == NULL));
    if (st == TNL_MUX_FRAME_OK) {
        uint8_t out[TNL_MUX_HDR_LEN];
        CHECK(f.version == 0 && f.type <= TNL_MUX_GO_AWAY);
        CHECK((f.flags & ~TNL_MUX_FLAGS_KNOWN) == 0);
        if (f.type == TNL_MUX_PING || f.type == TNL_MUX_GO_AWAY)
            CHECK(f.stream_id == 0);
        else
            CHECK(f.stream_id != 0);
        if (f.type == TNL_MUX_PING)
            CHECK(f.flags == TNL_MUX_SYN || f.flags == TNL_MUX_ACK);
        if (f.type == TNL_MUX_DATA)
            CHECK(f.length <= 1u << 24);
        tnl_mux_frame_encode(out, (enum tnl_mux_type)f.type, f.flags, f.stream_id, f.length);
        CHECK(memcmp(out, p, TNL_MUX_HDR_LEN) == 0);
    }
    /* A tighter bound: the same answer, or OK turned into TOO_LONG. */
    enum tnl_mux_frame_status st2 = tnl_mux_frame_decode(p, n, 16, &g, &err2);
    CHECK(st2 == st || (st == TNL_MUX_FRAME_OK && st2 == TNL_MUX_FRAME_TOO_LONG && g.length > 16));
    if (st2 == TNL_MUX_FRAME_TOO_LONG)
        CHECK(g.type == TNL_MUX_DATA);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    for (size_t off = 0; off <= size; off += TNL_MUX_HDR_LEN) {
        size_t n = size - off;
        uint8_t *exact = malloc(n ? n : 1);
        if (n)
            memcpy(exact, buf + off, n);
        check_one(exact, n);
        free(exact);
    }
    free(buf);
    return 0;
}

/*
 * fuzz_sniff_ssh.c — libFuzzer harness for tnl_sniff_ssh (core/sniff/ssh.c).
 *
 * Exactly-sized copies of the input; invariants: a valid status; on MATCH the
 * version line starts the peek, begins "SSH-2.0-" or "SSH-1.99-", is printable,
 * at most 253 bytes and is followed by LF or CR LF; INVALID carries an "ssh: "
 * message; a decision on a prefix stands with more bytes.
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
    o->st = tnl_sniff_ssh(o->buf, size, &o->r);
}

static void check(const struct outcome *o, size_t size)
{
    const struct tnl_sniff_result *r = &o->r;

    CHECK(o->st == TNL_SNIFF_NEED_MORE || o->st == TNL_SNIFF_MATCH ||
          o->st == TNL_SNIFF_NO_MATCH || o->st == TNL_SNIFF_INVALID);
    if (o->st == TNL_SNIFF_MATCH) {
        const struct tnl_slice v = r->ssh_version;
        CHECK(r->proto && strcmp(r->proto, "ssh") == 0);
        CHECK(v.p == o->buf && v.n <= 254 && v.n < size);
        CHECK((v.n >= 8 && memcmp(v.p, "SSH-2.0-", 8) == 0) || (v.n >= 9 && memcmp(v.p, "SSH-1.99-", 9) == 0));
        for (size_t i = 0; i < v.n; i++)
            CHECK(v.p[i] >= 0x20 && v.p[i] <= 0x7e);
        CHECK(o->buf[v.n] == '\n' || (o->buf[v.n] == '\r' && v.n + 1 < size && o->buf[v.n + 1] == '\n'));
    } else if (o->st == TNL_SNIFF_INVALID) {
        CHECK(r->error && strncmp(r->error, "ssh: ", 5) == 0);
    } else {
        CHECK(r->proto == NULL && r->ssh_version.n == 0);
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
                CHECK(same_slice(part.r.ssh_version, full.r.ssh_version));
            }
        }
        release(&part);
    }
    release(&full);
    return 0;
}

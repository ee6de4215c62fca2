/*
 * pg.c — PostgreSQL first frontend message (protocol docs, "Message Formats" and
 * "Start-up", §55.2.1 / §55.7 in PostgreSQL 15+):
 *
 *   SSLRequest      Int32(8)  Int32(80877103)
 *   GSSENCRequest   Int32(8)  Int32(80877104)
 *   CancelRequest   Int32(16) Int32(80877102) Int32 pid, key (4 bytes; protocol
 *                   3.2 allows up to 256, so 16..268 is accepted)
 *   StartupMessage  Int32(len) Int32(3 << 16 | minor) { String key, String value }* 0
 *
 * The first message has no type byte: it opens with its length (which counts
 * itself), then a code. Lengths above 10000 are refused by the server itself
 * (MAX_STARTUP_PACKET_LENGTH), so most foreign first bytes decide NO_MATCH at
 * once: the length's known bytes already put it outside 8..10000.
 */
#include <string.h>

#include "sniff/sniff.h"

enum {
    PG_HDR = 8,
    PG_LEN_MIN = 8,
    PG_LEN_MAX = 10000,
    PG_CANCEL_MIN = 16,
    PG_CANCEL_MAX = 12 + 256,
    PG_CODE_CANCEL = 80877102,
    PG_CODE_SSL = 80877103,
    PG_CODE_GSSENC = 80877104,
    PG_PROTO_3 = 3,                 /* StartupMessage: major version in the code's high 16 bits */
};

enum pg_kind { PG_NONE, PG_SSL, PG_GSSENC, PG_CANCEL, PG_STARTUP };

static uint32_t pg_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Could a big-endian u32 whose first n (< 4) bytes are b lie in [lo, hi]? */
static int pg_prefix_in_range(const uint8_t *b, size_t n, uint32_t lo, uint32_t hi)
{
    uint32_t min = 0, max = 0;

    for (size_t i = 0; i < 4; i++) {
        min = min << 8 | (i < n ? b[i] : 0x00);
        max = max << 8 | (i < n ? b[i] : 0xff);
    }
    return max >= lo && min <= hi;
}

/* Do the first n (<= 4) code bytes agree with the expected code? mask: which
 * bytes are fixed (StartupMessage fixes only the major version). */
static int pg_code_prefix(const uint8_t *b, size_t n, uint32_t code, size_t fixed)
{
    for (size_t i = 0; i < n && i < fixed; i++)
        if (b[i] != (uint8_t)(code >> (24 - 8 * i)))
            return 0;
    return 1;
}

/* Which first messages are still possible given the first len (< 8 or more) bytes. */
static enum pg_kind pg_candidate(const uint8_t *buf, size_t len)
{
    size_t nc = len < PG_HDR ? len - 4 : 4;
    uint32_t mlen = pg_be32(buf);
    const uint8_t *c = buf + 4;

    if (mlen == 8 && pg_code_prefix(c, nc, PG_CODE_SSL, 4))
        return PG_SSL;
    if (mlen == 8 && pg_code_prefix(c, nc, PG_CODE_GSSENC, 4))
        return PG_GSSENC;
    if (mlen >= PG_CANCEL_MIN && mlen <= PG_CANCEL_MAX && pg_code_prefix(c, nc, PG_CODE_CANCEL, 4))
        return PG_CANCEL;
    if (pg_code_prefix(c, nc, (uint32_t)PG_PROTO_3 << 16, 2))
        return PG_STARTUP;
    return PG_NONE;
}

/* Key/value pairs of a StartupMessage body (after length and code). */
static const char *pg_params(const uint8_t *p, size_t n, struct tnl_sniff_result *r)
{
    size_t i = 0;
    int seen_user = 0, seen_db = 0;

    for (;;) {
        if (i >= n)
            return "pg: StartupMessage parameter list has no terminator";
        if (p[i] == 0)
            return i + 1 == n ? NULL : "pg: bytes after the StartupMessage terminator";
        const uint8_t *kend = memchr(p + i, 0, n - i);
        if (!kend)
            return "pg: StartupMessage parameter name not terminated";
        size_t k = (size_t)(kend - p), klen = k - i, v = k + 1;
        const uint8_t *vend = v < n ? memchr(p + v, 0, n - v) : NULL;
        if (!vend)
            return "pg: StartupMessage parameter without a value";
        struct tnl_slice val = { p + v, (size_t)(vend - p) - v };
        if (klen == 4 && memcmp(p + i, "user", 4) == 0) {
            if (seen_user++)
                return "pg: duplicate user parameter";
            r->pg.user = val;
        } else if (klen == 8 && memcmp(p + i, "database", 8) == 0) {
            if (seen_db++)
                return "pg: duplicate database parameter";
            r->pg.database = val;
        }
        i = (size_t)(vend - p) + 1;
    }
}

static enum tnl_sniff_status pg_whole(size_t len, uint32_t mlen, enum pg_kind kind,
                                      const uint8_t *buf, struct tnl_sniff_result *r)
{
    if (len < mlen)
        return TNL_SNIFF_NEED_MORE;
    r->proto = "postgresql";
    if (kind == PG_CANCEL) {
        r->pg.cancel = 1;
        return TNL_SNIFF_MATCH;
    }
    r->error = pg_params(buf + PG_HDR, mlen - PG_HDR, r);
    if (r->error) {
        r->pg.user = r->pg.database = (struct tnl_slice){ 0 };
        return TNL_SNIFF_INVALID;
    }
    return TNL_SNIFF_MATCH;
}

enum tnl_sniff_status tnl_sniff_pg(const uint8_t *buf, size_t len, struct tnl_sniff_result *r)
{
    if (!pg_prefix_in_range(buf, len < 4 ? len : 4, PG_LEN_MIN, PG_LEN_MAX))
        return TNL_SNIFF_NO_MATCH;
    if (len < 4)
        return TNL_SNIFF_NEED_MORE;
    enum pg_kind kind = pg_candidate(buf, len);
    if (kind == PG_NONE)
        return TNL_SNIFF_NO_MATCH;
    if (len < PG_HDR)
        return TNL_SNIFF_NEED_MORE;
    switch (kind) {
    case PG_SSL:
        r->proto = "postgresql";
        r->pg.ssl = 1;
        return TNL_SNIFF_MATCH;
    case PG_GSSENC:
        r->proto = "postgresql";
        r->pg.gssenc = 1;
        return TNL_SNIFF_MATCH;
    default:
        return pg_whole(len, pg_be32(buf), kind, buf, r);
    }
}

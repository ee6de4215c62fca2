/*
 * sniff.c — the built-in sniffer table and the dispatcher over it.
 *
 * The built-ins are disjoint by their first bytes (TLS 0x16, HTTP/1 an uppercase
 * method, HTTP/2 "PRI *", PostgreSQL 0x00, SSH "SSH-"), so walking them in order
 * and taking the first MATCH or INVALID is unambiguous. See docs/sniffers.md.
 */
#include <string.h>

#include "sniff/sniff.h"

const struct tnl_sniffer tnl_sniffers_builtin[] = {
    { "tls", tnl_sniff_tls },
    { "http", tnl_sniff_http1 },
    { "http2", tnl_sniff_http2 },
    { "postgresql", tnl_sniff_pg },
    { "ssh", tnl_sniff_ssh },
    { NULL, NULL },
};

void tnl_sniff_result_init(struct tnl_sniff_result *r, uint8_t *scratch, size_t scratch_cap)
{
    memset(r, 0, sizeof(*r));
    r->scratch = scratch;
    r->scratch_cap = scratch_cap;
}

/*
 * Each sniffer gets a fresh result, so that a sniffer that said NO_MATCH can
 * leave nothing behind for the next one; only the scratch buffer is kept.
 */
enum tnl_sniff_status tnl_sniff_builtin(const uint8_t *buf, size_t len, struct tnl_sniff_result *r)
{
    uint8_t *scratch = r->scratch;
    size_t cap = r->scratch_cap;
    int need_more = 0;

    for (const struct tnl_sniffer *s = tnl_sniffers_builtin; s->parse; s++) {
        tnl_sniff_result_init(r, scratch, cap);
        enum tnl_sniff_status st = s->parse(buf, len, r);
        if (st == TNL_SNIFF_MATCH || st == TNL_SNIFF_INVALID) {
            r->proto = s->name;
            return st;
        }
        if (st == TNL_SNIFF_NEED_MORE)
            need_more = 1;
    }
    tnl_sniff_result_init(r, scratch, cap);
    return need_more ? TNL_SNIFF_NEED_MORE : TNL_SNIFF_NO_MATCH;
}

int tnl_sniff_alpn_next(struct tnl_slice list, size_t *off, struct tnl_slice *out)
{
    if (*off >= list.n)
        return 0;
    size_t n = list.p[*off];
    /* The list was validated by the TLS sniffer; stay in bounds regardless. */
    if (n == 0 || n > list.n - *off - 1)
        return 0;
    out->p = list.p + *off + 1;
    out->n = n;
    *off += 1 + n;
    return 1;
}

const char *tnl_sniff_status_name(enum tnl_sniff_status s)
{
    switch (s) {
    case TNL_SNIFF_NEED_MORE: return "need_more";
    case TNL_SNIFF_MATCH: return "match";
    case TNL_SNIFF_NO_MATCH: return "no_match";
    case TNL_SNIFF_INVALID: return "invalid";
    }
    return "unknown";
}

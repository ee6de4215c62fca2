/*
 * tls.c — TLS ClientHello sniffer: legacy_version, SNI host_name and ALPN.
 *
 *   record layer      RFC 8446 §5.1 (TLSPlaintext; a handshake message may be
 *                     fragmented over several records)
 *   ClientHello       RFC 8446 §4.1.2 (also the TLS 1.2 layout, RFC 5246 §7.4.1.2)
 *   server_name       RFC 6066 §3
 *   ALPN              RFC 7301 §3.1
 *
 * The handshake message is gathered from consecutive handshake records; when it
 * fits in the first record the slices point into the peek, otherwise it is copied
 * into r->scratch and the slices point there. Nothing is parsed until the whole
 * ClientHello is present; the record and handshake headers are checked as soon as
 * their bytes arrive. Every length is checked against its enclosing length.
 */
#include <string.h>

#include "sniff/sniff.h"

enum {
    TLS_REC_HDR = 5,
    TLS_REC_MAX = 16384,            /* TLSPlaintext.length limit, 2^14 */
    TLS_HS_HDR = 4,
    TLS_HS_MAX = 65536,             /* our cap on a ClientHello body */
    TLS_CT_HANDSHAKE = 0x16,
    TLS_MAJOR = 3,
    TLS_HS_CLIENT_HELLO = 1,
    TLS_RANDOM_LEN = 32,
    TLS_SESSION_ID_MAX = 32,
    TLS_EXT_SERVER_NAME = 0,
    TLS_EXT_ALPN = 16,
    TLS_NAME_TYPE_HOST = 0,
};

/* A bounded reader over [p, p + n). */
struct rd {
    const uint8_t *p;
    size_t n;
};

static int rd_take(struct rd *r, size_t k, struct rd *sub)
{
    if (k > r->n)
        return -1;
    sub->p = r->p;
    sub->n = k;
    r->p += k;
    r->n -= k;
    return 0;
}

/* Read a big-endian unsigned integer of w (1..3) bytes. */
static int rd_uint(struct rd *r, size_t w, size_t *v)
{
    if (w > r->n)
        return -1;
    *v = 0;
    for (size_t i = 0; i < w; i++)
        *v = (*v << 8) | r->p[i];
    r->p += w;
    r->n -= w;
    return 0;
}

struct tls_hello {
    struct tnl_slice sni;
    struct tnl_slice alpn;
    uint16_t version;
    int seen_sni;
    int seen_alpn;
};

/* ------------------------------------------------------------------------ */
/* Record layer and handshake header                                        */

/*
 * Check the (possibly partial) record header at b: type, major version and
 * length, as far as the bytes go. MATCH when all 5 bytes are present and valid.
 */
static enum tnl_sniff_status tls_record(const uint8_t *b, size_t n, size_t *reclen, const char **err)
{
    if (n >= 1 && b[0] != TLS_CT_HANDSHAKE) {
        *err = "tls: ClientHello interrupted by a non-handshake record";
        return TNL_SNIFF_INVALID;
    }
    if (n >= 2 && b[1] != TLS_MAJOR) {
        *err = "tls: record version major is not 3";
        return TNL_SNIFF_INVALID;
    }
    if (n < TLS_REC_HDR)
        return TNL_SNIFF_NEED_MORE;
    *reclen = ((size_t)b[3] << 8) | b[4];
    if (*reclen == 0 || *reclen > TLS_REC_MAX) {
        *err = "tls: record length out of range 1..16384";
        return TNL_SNIFF_INVALID;
    }
    return TNL_SNIFF_MATCH;
}

/*
 * Copy up to `want` handshake bytes out of the records at buf into out, checking
 * each record header on the way. *got is how many were copied. MATCH when all
 * `want` bytes were copied, NEED_MORE when the peek ends first.
 */
static enum tnl_sniff_status tls_collect(const uint8_t *buf, size_t len, uint8_t *out, size_t want,
                                         size_t *got, const char **err)
{
    size_t off = 0;

    *got = 0;
    while (*got < want) {
        size_t reclen = 0;
        enum tnl_sniff_status st = tls_record(buf + off, len - off, &reclen, err);
        if (st != TNL_SNIFF_MATCH)
            return st;
        size_t avail = len - off - TLS_REC_HDR;
        if (avail > reclen)
            avail = reclen;
        size_t take = want - *got < avail ? want - *got : avail;
        memcpy(out + *got, buf + off + TLS_REC_HDR, take);
        *got += take;
        if (*got == want)
            break;
        if (avail < reclen)
            return TNL_SNIFF_NEED_MORE;
        off += TLS_REC_HDR + reclen;
    }
    return TNL_SNIFF_MATCH;
}

/* Check the handshake header bytes gathered so far (got of 4); set *need. */
static enum tnl_sniff_status tls_hs_header(const uint8_t *h, size_t got, size_t *need, const char **err)
{
    if (got >= 1 && h[0] != TLS_HS_CLIENT_HELLO) {
        *err = "tls: first handshake message is not a ClientHello";
        return TNL_SNIFF_INVALID;
    }
    if (got < TLS_HS_HDR)
        return TNL_SNIFF_NEED_MORE;
    size_t body = ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (body > TLS_HS_MAX) {
        *err = "tls: ClientHello length over 64 KiB";
        return TNL_SNIFF_INVALID;
    }
    *need = TLS_HS_HDR + body;
    return TNL_SNIFF_MATCH;
}

/*
 * Gather the whole ClientHello message (handshake header included) into *msg:
 * in place when it lies in the first record, in r->scratch otherwise.
 */
static enum tnl_sniff_status tls_gather(const uint8_t *buf, size_t len, struct tnl_sniff_result *r,
                                        struct rd *msg, const char **err)
{
    uint8_t hdr[TLS_HS_HDR];
    size_t got = 0, need = 0, reclen0 = 0;

    enum tnl_sniff_status st = tls_collect(buf, len, hdr, sizeof(hdr), &got, err);
    if (st == TNL_SNIFF_INVALID)
        return st;
    enum tnl_sniff_status hs = tls_hs_header(hdr, got, &need, err);
    if (hs != TNL_SNIFF_MATCH)
        return hs;
    reclen0 = ((size_t)buf[3] << 8) | buf[4];   /* first header is complete: got > 0 */
    if (need <= reclen0) {
        if (len - TLS_REC_HDR < need)
            return TNL_SNIFF_NEED_MORE;
        msg->p = buf + TLS_REC_HDR;
        msg->n = need;
        return TNL_SNIFF_MATCH;
    }
    /* Fragmented: copy what is there. The caller guarantees scratch_cap >= len,
     * and fewer than len handshake bytes can be present. */
    size_t want = need < r->scratch_cap ? need : r->scratch_cap;
    if (!r->scratch)
        want = 0;
    st = tls_collect(buf, len, r->scratch, want, &got, err);
    if (st != TNL_SNIFF_MATCH)
        return st;
    if (got < need) {
        *err = "tls: scratch buffer too small for a fragmented ClientHello";
        return TNL_SNIFF_INVALID;
    }
    msg->p = r->scratch;
    msg->n = need;
    return TNL_SNIFF_MATCH;
}

/* ------------------------------------------------------------------------ */
/* Extensions                                                               */

/* RFC 6066 §3: ServerNameList server_name_list<1..2^16-1>. */
static const char *tls_server_name(struct rd ext, struct tls_hello *ch)
{
    struct rd list, name;
    size_t n, type;

    if (ch->seen_sni++)
        return "tls: duplicate server_name extension";
    if (rd_uint(&ext, 2, &n) != 0)
        return "tls: server_name extension shorter than its list length";
    if (n > ext.n)
        return "tls: server_name list length exceeds extension";
    if (n < ext.n)
        return "tls: server_name list length shorter than extension";
    if (n == 0)
        return "tls: server_name list is empty";
    rd_take(&ext, n, &list);
    while (list.n > 0) {
        if (rd_uint(&list, 1, &type) != 0 || rd_uint(&list, 2, &n) != 0)
            return "tls: server_name entry truncated";
        if (rd_take(&list, n, &name) != 0)
            return "tls: host_name length exceeds server_name list";
        if (type != TLS_NAME_TYPE_HOST)
            continue;
        if (ch->sni.p)
            return "tls: more than one host_name in server_name";
        if (name.n == 0)
            return "tls: empty host_name";
        for (size_t i = 0; i < name.n; i++)
            if (name.p[i] <= 0x20 || name.p[i] >= 0x7f)
                return "tls: host_name contains a control, space or non-ASCII byte";
        ch->sni.p = name.p;
        ch->sni.n = name.n;
    }
    return NULL;
}

/* RFC 7301 §3.1: ProtocolNameList protocol_name_list<2..2^16-1>, each name <1..2^8-1>. */
static const char *tls_alpn(struct rd ext, struct tls_hello *ch)
{
    struct rd list, walk, name;
    size_t n;

    if (ch->seen_alpn++)
        return "tls: duplicate ALPN extension";
    if (rd_uint(&ext, 2, &n) != 0)
        return "tls: ALPN extension shorter than its list length";
    if (n > ext.n)
        return "tls: ALPN list length exceeds extension";
    if (n < ext.n)
        return "tls: ALPN list length shorter than extension";
    if (n == 0)
        return "tls: ALPN list is empty";
    rd_take(&ext, n, &list);
    walk = list;
    while (walk.n > 0) {
        rd_uint(&walk, 1, &n);
        if (n == 0)
            return "tls: empty ALPN protocol name";
        if (rd_take(&walk, n, &name) != 0)
            return "tls: ALPN protocol name length exceeds list";
    }
    ch->alpn.p = list.p;
    ch->alpn.n = list.n;
    return NULL;
}

static const char *tls_extensions(struct rd b, struct tls_hello *ch)
{
    struct rd block, ext;
    size_t n, type;

    if (b.n == 0)
        return NULL;                    /* no extensions at all: allowed */
    if (rd_uint(&b, 2, &n) != 0)
        return "tls: ClientHello truncated in extensions length";
    if (n > b.n)
        return "tls: extensions length exceeds ClientHello";
    if (n < b.n)
        return "tls: extensions length shorter than the rest of ClientHello";
    rd_take(&b, n, &block);
    while (block.n > 0) {
        if (rd_uint(&block, 2, &type) != 0 || rd_uint(&block, 2, &n) != 0)
            return "tls: extension header truncated";
        if (rd_take(&block, n, &ext) != 0)
            return "tls: extension length exceeds extensions block";
        const char *e = NULL;
        if (type == TLS_EXT_SERVER_NAME)
            e = tls_server_name(ext, ch);
        else if (type == TLS_EXT_ALPN)
            e = tls_alpn(ext, ch);
        if (e)
            return e;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* ClientHello body (after the 4-byte handshake header)                     */

static const char *tls_client_hello(struct rd b, struct tls_hello *ch)
{
    struct rd skip;
    size_t n;

    if (rd_uint(&b, 2, &n) != 0)
        return "tls: ClientHello truncated in legacy_version";
    ch->version = (uint16_t)n;
    if (rd_take(&b, TLS_RANDOM_LEN, &skip) != 0)
        return "tls: ClientHello truncated in random";
    if (rd_uint(&b, 1, &n) != 0)
        return "tls: ClientHello truncated in session_id length";
    if (n > TLS_SESSION_ID_MAX)
        return "tls: session_id longer than 32 bytes";
    if (rd_take(&b, n, &skip) != 0)
        return "tls: session_id length exceeds ClientHello";
    if (rd_uint(&b, 2, &n) != 0)
        return "tls: ClientHello truncated in cipher_suites length";
    if (n < 2 || n % 2 != 0)
        return "tls: cipher_suites length is odd or zero";
    if (rd_take(&b, n, &skip) != 0)
        return "tls: cipher_suites length exceeds ClientHello";
    if (rd_uint(&b, 1, &n) != 0)
        return "tls: ClientHello truncated in compression_methods length";
    if (n < 1)
        return "tls: compression_methods is empty";
    if (rd_take(&b, n, &skip) != 0)
        return "tls: compression_methods length exceeds ClientHello";
    return tls_extensions(b, ch);
}

enum tnl_sniff_status tnl_sniff_tls(const uint8_t *buf, size_t len, struct tnl_sniff_result *r)
{
    struct tls_hello ch = { 0 };
    struct rd msg;
    const char *err = NULL;

    if (len == 0)
        return TNL_SNIFF_NEED_MORE;
    if (buf[0] != TLS_CT_HANDSHAKE)
        return TNL_SNIFF_NO_MATCH;
    enum tnl_sniff_status st = tls_gather(buf, len, r, &msg, &err);
    if (st == TNL_SNIFF_MATCH) {
        msg.p += TLS_HS_HDR;
        msg.n -= TLS_HS_HDR;
        err = tls_client_hello(msg, &ch);
        st = err ? TNL_SNIFF_INVALID : TNL_SNIFF_MATCH;
    }
    if (st == TNL_SNIFF_INVALID) {
        r->proto = "tls";
        r->error = err;
    } else if (st == TNL_SNIFF_MATCH) {
        r->proto = "tls";
        r->sni = ch.sni;
        r->alpn = ch.alpn;
        r->tls_version = ch.version;
    }
    return st;
}

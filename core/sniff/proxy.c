/*
 * proxy.c — PROXY protocol header parser and v2 writer (haproxy's
 * doc/proxy-protocol.txt: §2.1 human-readable v1, §2.2 binary v2, §2.2.5 CRC32c).
 *
 *   v1   "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF
 *        "PROXY" SP "UNKNOWN" [anything] CRLF            (at most 107 bytes)
 *   v2   12-byte signature, ver_cmd (0x20 LOCAL | 0x21 PROXY), fam (0x00 UNSPEC,
 *        0x11 TCP/IPv4, 0x21 TCP/IPv6), u16 len, address block, TLVs
 *
 * Like the sniffers, the parser decides as soon as the bytes decide: a first
 * byte other than 'P' or '\r' is NO_MATCH, a wrong signature byte is NO_MATCH at
 * that byte, a wrong version/command/family INVALID as soon as it arrives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "sniff/proxy.h"

static const char pp1_magic[] = "PROXY ";
static const uint8_t pp2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

enum {
    PP1_MAGIC_LEN = sizeof(pp1_magic) - 1,
    PP2_SIG_LEN = sizeof(pp2_sig),
    PP2_VERSION = 0x20,
    PP2_CMD_LOCAL = 0x0,
    PP2_CMD_PROXY = 0x1,
    PP2_FAM_UNSPEC = 0x00,
    PP2_FAM_TCP4 = 0x11,
    PP2_FAM_TCP6 = 0x21,
    PP2_ADDR_UNIX = 216,
    PP2_TLV_HDR = 3,
    PP2_CRC_LEN = 4,
    PP_ADDR_TEXT_MAX = 46,          /* INET6_ADDRSTRLEN */
};

static enum tnl_sniff_status pp_invalid(const char **err, const char *msg)
{
    if (err)
        *err = msg;
    return TNL_SNIFF_INVALID;
}

/* ------------------------------------------------------------------------ */
/* CRC32c (Castagnoli, reflected, poly 0x82F63B78), bitwise: headers are small */

static uint32_t pp_crc32c(uint32_t crc, const uint8_t *p, size_t n, size_t hole)
{
    /* bytes [hole, hole + 4) count as zero: the checksum's own value */
    for (size_t i = 0; i < n; i++) {
        crc ^= (i >= hole && i < hole + PP2_CRC_LEN) ? 0 : p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}

static uint32_t pp_crc32c_header(const uint8_t *h, size_t n, size_t value_off)
{
    return ~pp_crc32c(0xFFFFFFFFu, h, n, value_off);
}

/* ------------------------------------------------------------------------ */
/* v1                                                                       */

/* Bytes a v1 line may hold before its CR LF. */
static int pp1_char(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '.' || c == ':' || c == ' ';
}

/*
 * Split line[0, n) at each SP into at most max fields; returns the number of
 * fields (max + 1 when there are more). Empty fields come out as empty slices.
 */
static size_t pp1_split(const uint8_t *line, size_t n, struct tnl_slice *f, size_t max)
{
    size_t nf = 0, start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && line[i] != ' ')
            continue;
        if (nf == max)
            return max + 1;
        f[nf++] = (struct tnl_slice){ line + start, i - start };
        start = i + 1;
    }
    return nf;
}

/* An IPv4 or IPv6 address (inet_pton's strict forms) and a decimal port
 * 0..65535 without sign or leading zero, into a sockaddr. */
static int pp1_endpoint(struct tnl_slice addr, struct tnl_slice port, int af,
                        struct sockaddr_storage *ss)
{
    char text[PP_ADDR_TEXT_MAX];
    uint32_t v = 0;

    if (addr.n >= sizeof(text) || port.n == 0 || port.n > 5 || (port.n > 1 && port.p[0] == '0'))
        return -1;
    for (size_t i = 0; i < port.n; i++) {
        if (port.p[i] < '0' || port.p[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(port.p[i] - '0');
    }
    if (v > 65535)
        return -1;
    memcpy(text, addr.p, addr.n);
    text[addr.n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (af == AF_INET) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)v) };
        if (inet_pton(AF_INET, text, &sin.sin_addr) != 1)
            return -1;
        memcpy(ss, &sin, sizeof(sin));
    } else {
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)v) };
        if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1)
            return -1;
        memcpy(ss, &sin6, sizeof(sin6));
    }
    return 0;
}

/* The fields after "PROXY ": line is the text between the magic and CR LF. */
static enum tnl_sniff_status pp1_fields(const uint8_t *line, size_t n, struct tnl_proxy_hdr *h,
                                        const char **err)
{
    struct tnl_slice f[5];              /* proto src dst sport dport */
    size_t nf = pp1_split(line, n, f, 5);
    int af;

    if (f[0].n == 7 && memcmp(f[0].p, "UNKNOWN", 7) == 0) {
        h->local = 1;                   /* the rest of the line is ignored (section 2.1) */
        return TNL_SNIFF_MATCH;
    }
    if (f[0].n == 4 && memcmp(f[0].p, "TCP4", 4) == 0)
        af = AF_INET;
    else if (f[0].n == 4 && memcmp(f[0].p, "TCP6", 4) == 0)
        af = AF_INET6;
    else
        return pp_invalid(err, "proxy: v1 protocol is not TCP4, TCP6 or UNKNOWN");
    if (nf != 5 || !f[1].n || !f[2].n || !f[3].n || !f[4].n)
        return pp_invalid(err, "proxy: v1 line does not have exactly src dst sport dport");
    if (pp1_endpoint(f[1], f[3], af, &h->src) != 0)
        return pp_invalid(err, "proxy: v1 bad source address or port");
    if (pp1_endpoint(f[2], f[4], af, &h->dst) != 0)
        return pp_invalid(err, "proxy: v1 bad destination address or port");
    return TNL_SNIFF_MATCH;
}

static enum tnl_sniff_status pp1_parse(const uint8_t *buf, size_t len, struct tnl_proxy_hdr *h,
                                       const char **err)
{
    size_t lim = len < TNL_PROXY_V1_MAX ? len : TNL_PROXY_V1_MAX;

    for (size_t i = 0; i < PP1_MAGIC_LEN; i++) {
        if (i == len)
            return TNL_SNIFF_NEED_MORE;
        if (buf[i] != (uint8_t)pp1_magic[i])
            return TNL_SNIFF_NO_MATCH;
    }
    for (size_t i = PP1_MAGIC_LEN; i < lim; i++) {
        if (buf[i] == '\r') {
            if (i + 2 > TNL_PROXY_V1_MAX)
                break;
            if (i + 1 == len)
                return TNL_SNIFF_NEED_MORE;
            if (buf[i + 1] != '\n')
                return pp_invalid(err, "proxy: v1 CR not followed by LF");
            h->version = 1;
            h->header_len = i + 2;
            return pp1_fields(buf + PP1_MAGIC_LEN, i - PP1_MAGIC_LEN, h, err);
        }
        if (!pp1_char(buf[i]))
            return pp_invalid(err, "proxy: v1 line contains a byte outside [0-9A-Za-z.: ]");
    }
    if (len < TNL_PROXY_V1_MAX)
        return TNL_SNIFF_NEED_MORE;
    return pp_invalid(err, "proxy: v1 line not terminated by CRLF within 107 bytes");
}

/* ------------------------------------------------------------------------ */
/* v2                                                                       */

/* Size of the address block for a family byte, or -1 for an unknown family. */
static int pp2_addr_len(uint8_t fam)
{
    switch (fam >> 4) {
    case 0x0: return 0;
    case 0x1: return TNL_PROXY_V2_ADDR4;
    case 0x2: return TNL_PROXY_V2_ADDR6;
    case 0x3: return PP2_ADDR_UNIX;
    default: return -1;
    }
}

/* Check ver_cmd and fam as soon as they are in the peek. */
static enum tnl_sniff_status pp2_head(const uint8_t *buf, size_t len, const char **err)
{
    if (len > 12 && (buf[12] & 0xF0) != PP2_VERSION)
        return pp_invalid(err, "proxy: v2 version is not 2");
    if (len > 12 && (buf[12] & 0x0F) > PP2_CMD_PROXY)
        return pp_invalid(err, "proxy: v2 command is not LOCAL or PROXY");
    if (len > 13 && pp2_addr_len(buf[13]) < 0)
        return pp_invalid(err, "proxy: v2 unknown address family");
    if (len > 13 && (buf[12] & 0x0F) == PP2_CMD_PROXY && buf[13] != PP2_FAM_UNSPEC &&
        buf[13] != PP2_FAM_TCP4 && buf[13] != PP2_FAM_TCP6)
        return pp_invalid(err, "proxy: v2 family/transport is not TCP over IPv4 or IPv6");
    return len < TNL_PROXY_V2_HDR ? TNL_SNIFF_NEED_MORE : TNL_SNIFF_MATCH;
}

/* Each TLV's length against what is left of the area; verify a CRC32c TLV. */
static enum tnl_sniff_status pp2_tlvs(const uint8_t *hdr, size_t hlen, size_t off, const char **err)
{
    while (off < hlen) {
        if (hlen - off < PP2_TLV_HDR)
            return pp_invalid(err, "proxy: v2 TLV header truncated by the header length");
        size_t vlen = ((size_t)hdr[off + 1] << 8) | hdr[off + 2];
        if (vlen > hlen - off - PP2_TLV_HDR)
            return pp_invalid(err, "proxy: v2 TLV length exceeds the header length");
        if (hdr[off] == TNL_PP2_TYPE_CRC32C) {
            const uint8_t *v = hdr + off + PP2_TLV_HDR;
            if (vlen != PP2_CRC_LEN)
                return pp_invalid(err, "proxy: v2 CRC32c TLV length is not 4");
            uint32_t want = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
            if (pp_crc32c_header(hdr, hlen, off + PP2_TLV_HDR) != want)
                return pp_invalid(err, "proxy: v2 CRC32c mismatch");
        }
        off += PP2_TLV_HDR + vlen;
    }
    return TNL_SNIFF_MATCH;
}

static void pp2_addrs(const uint8_t *a, uint8_t fam, struct tnl_proxy_hdr *h)
{
    memset(&h->src, 0, sizeof(h->src));
    memset(&h->dst, 0, sizeof(h->dst));
    if (fam == PP2_FAM_TCP4) {
        struct sockaddr_in s = { .sin_family = AF_INET }, d = { .sin_family = AF_INET };
        memcpy(&s.sin_addr, a, 4);
        memcpy(&d.sin_addr, a + 4, 4);
        memcpy(&s.sin_port, a + 8, 2);
        memcpy(&d.sin_port, a + 10, 2);
        memcpy(&h->src, &s, sizeof(s));
        memcpy(&h->dst, &d, sizeof(d));
    } else {
        struct sockaddr_in6 s = { .sin6_family = AF_INET6 }, d = { .sin6_family = AF_INET6 };
        memcpy(&s.sin6_addr, a, 16);
        memcpy(&d.sin6_addr, a + 16, 16);
        memcpy(&s.sin6_port, a + 32, 2);
        memcpy(&d.sin6_port, a + 34, 2);
        memcpy(&h->src, &s, sizeof(s));
        memcpy(&h->dst, &d, sizeof(d));
    }
}

static enum tnl_sniff_status pp2_parse(const uint8_t *buf, size_t len, struct tnl_proxy_hdr *h,
                                       const char **err)
{
    for (size_t i = 0; i < PP2_SIG_LEN; i++) {
        if (i == len)
            return TNL_SNIFF_NEED_MORE;
        if (buf[i] != pp2_sig[i])
            return TNL_SNIFF_NO_MATCH;
    }
    enum tnl_sniff_status st = pp2_head(buf, len, err);
    if (st != TNL_SNIFF_MATCH)
        return st;
    size_t body = ((size_t)buf[14] << 8) | buf[15], total = TNL_PROXY_V2_HDR + body;
    size_t alen = (size_t)pp2_addr_len(buf[13]);
    if (body < alen)
        return pp_invalid(err, "proxy: v2 length shorter than the address block");
    if (len < total)
        return TNL_SNIFF_NEED_MORE;
    st = pp2_tlvs(buf, total, TNL_PROXY_V2_HDR + alen, err);
    if (st != TNL_SNIFF_MATCH)
        return st;
    uint8_t cmd = buf[12] & 0x0F, fam = buf[13];
    h->version = 2;
    h->local = cmd == PP2_CMD_LOCAL || fam == PP2_FAM_UNSPEC;
    if (!h->local)
        pp2_addrs(buf + TNL_PROXY_V2_HDR, fam, h);
    h->tlvs.p = buf + TNL_PROXY_V2_HDR + alen;
    h->tlvs.n = body - alen;
    h->header_len = total;
    return TNL_SNIFF_MATCH;
}

/* ------------------------------------------------------------------------ */

enum tnl_sniff_status tnl_proxy_parse(const uint8_t *buf, size_t len, struct tnl_proxy_hdr *h,
                                      const char **err)
{
    memset(h, 0, sizeof(*h));
    if (len == 0)
        return TNL_SNIFF_NEED_MORE;
    enum tnl_sniff_status st = TNL_SNIFF_NO_MATCH;
    if (buf[0] == 'P')
        st = pp1_parse(buf, len, h, err);
    else if (buf[0] == '\r')
        st = pp2_parse(buf, len, h, err);
    if (st != TNL_SNIFF_MATCH)
        memset(h, 0, sizeof(*h));
    return st;
}

int tnl_proxy_tlv_next(struct tnl_slice tlvs, size_t *off, uint8_t *type, struct tnl_slice *value)
{
    if (*off >= tlvs.n || tlvs.n - *off < PP2_TLV_HDR)
        return 0;
    const uint8_t *t = tlvs.p + *off;
    size_t vlen = ((size_t)t[1] << 8) | t[2];
    if (vlen > tlvs.n - *off - PP2_TLV_HDR)
        return 0;                       /* validated by the parser; stay in bounds anyway */
    *type = t[0];
    value->p = t + PP2_TLV_HDR;
    value->n = vlen;
    *off += PP2_TLV_HDR + vlen;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */

/* The 16-byte IPv6 form (v4-mapped for AF_INET) and port of a TCP endpoint. */
static int pp2_endpoint(const struct sockaddr *sa, int as6, uint8_t *addr, uint8_t *port)
{
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        if (as6) {
            static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
            memcpy(addr, mapped, sizeof(mapped));
            memcpy(addr + 12, &sin.sin_addr, 4);
        } else {
            memcpy(addr, &sin.sin_addr, 4);
        }
        memcpy(port, &sin.sin_port, 2);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && as6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        memcpy(addr, &sin6.sin6_addr, 16);
        memcpy(port, &sin6.sin6_port, 2);
        return 0;
    }
    return -1;
}

/* Size of the TLV area, or -1 if a TLV is malformed or the area is too big. */
static long pp2_tlvs_size(const struct tnl_proxy_tlv *tlvs, size_t ntlvs, size_t room)
{
    size_t total = 0;

    for (size_t i = 0; i < ntlvs; i++) {
        if (tlvs[i].type == TNL_PP2_TYPE_CRC32C ? tlvs[i].len != PP2_CRC_LEN
                                                 : tlvs[i].len && !tlvs[i].value)
            return -1;
        total += PP2_TLV_HDR + tlvs[i].len;
        if (total > room)
            return -1;
    }
    return (long)total;
}

/* Write the TLVs at p; returns the offset of a CRC32C value in p, or 0. */
static size_t pp2_put_tlvs(uint8_t *p, size_t base, const struct tnl_proxy_tlv *tlvs, size_t ntlvs)
{
    size_t off = base, crc_at = 0;

    for (size_t i = 0; i < ntlvs; i++) {
        p[off] = tlvs[i].type;
        p[off + 1] = (uint8_t)(tlvs[i].len >> 8);
        p[off + 2] = (uint8_t)tlvs[i].len;
        off += PP2_TLV_HDR;
        if (tlvs[i].type == TNL_PP2_TYPE_CRC32C) {
            memset(p + off, 0, PP2_CRC_LEN);    /* filled in once the header is whole */
            crc_at = off;
        } else if (tlvs[i].len) {
            memcpy(p + off, tlvs[i].value, tlvs[i].len);
        }
        off += tlvs[i].len;
    }
    return crc_at;
}

/*
 * A CRC32C TLV passed in (length 4, value ignored, may be NULL) is written with
 * the checksum of the final header.
 */
int tnl_proxy_v2_write(uint8_t *buf, size_t cap, const struct sockaddr *src,
                       const struct sockaddr *dst, const struct tnl_proxy_tlv *tlvs, size_t ntlvs)
{
    uint8_t a[TNL_PROXY_V2_ADDR6];

    if (!src || !dst)
        return -EINVAL;
    int fam4 = src->sa_family == AF_INET && dst->sa_family == AF_INET;
    size_t alen = fam4 ? TNL_PROXY_V2_ADDR4 : TNL_PROXY_V2_ADDR6;
    long tlen = pp2_tlvs_size(tlvs, ntlvs, 65535 - alen);
    if (tlen < 0)
        return -EINVAL;
    if (pp2_endpoint(src, !fam4, a, a + (fam4 ? 8 : 32)) != 0 ||
        pp2_endpoint(dst, !fam4, a + (fam4 ? 4 : 16), a + (fam4 ? 10 : 34)) != 0)
        return -EINVAL;
    size_t body = alen + (size_t)tlen, total = TNL_PROXY_V2_HDR + body;
    if (cap < total)
        return -ENOSPC;
    memcpy(buf, pp2_sig, PP2_SIG_LEN);
    buf[12] = PP2_VERSION | PP2_CMD_PROXY;
    buf[13] = fam4 ? PP2_FAM_TCP4 : PP2_FAM_TCP6;
    buf[14] = (uint8_t)(body >> 8);
    buf[15] = (uint8_t)body;
    memcpy(buf + TNL_PROXY_V2_HDR, a, alen);
    size_t crc_at = pp2_put_tlvs(buf, TNL_PROXY_V2_HDR + alen, tlvs, ntlvs);
    if (crc_at) {
        uint32_t c = pp_crc32c_header(buf, total, crc_at);
        for (size_t k = 0; k < PP2_CRC_LEN; k++)
            buf[crc_at + k] = (uint8_t)(c >> (24 - 8 * k));
    }
    return (int)total;
}

/*
 * proxy.h — PROXY protocol v1 and v2 (haproxy's proxy-protocol.txt).
 *
 * Parsing: a load balancer in front of a listener prepends one header to the
 * connection; tnl_proxy_parse reads it from the peek, reports how many bytes it
 * took (those bytes are consumed: they are not replayed upstream) and the real
 * client and destination addresses.
 *
 * Writing: tnl_proxy_v2_write builds a v2 header (PROXY command, TCP over IPv4 or
 * IPv6) with optional TLVs, for send_proxy to an upstream and for the relay's
 * per-stream header.
 */
#ifndef TNL_PROXY_H
#define TNL_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sniff.h"

enum {
    TNL_PROXY_V1_MAX = 107,             /* whole v1 line including CR LF */
    TNL_PROXY_V2_HDR = 16,              /* signature + ver/cmd + fam + len */
    TNL_PROXY_V2_ADDR4 = 12,
    TNL_PROXY_V2_ADDR6 = 36,
    TNL_PROXY_V2_MAX = TNL_PROXY_V2_HDR + 65535,
};

/* PP2_TYPE_* values from the spec, plus ours in the custom range (0xE0-0xEF). */
enum {
    TNL_PP2_TYPE_ALPN = 0x01,
    TNL_PP2_TYPE_AUTHORITY = 0x02,      /* SNI or Host the client asked for */
    TNL_PP2_TYPE_CRC32C = 0x03,
    TNL_PP2_TYPE_NOOP = 0x04,
    TNL_PP2_TYPE_UNIQUE_ID = 0x05,
    TNL_PP2_TYPE_TNL_SERVICE = 0xE0,    /* tunnel: name of the exposed service */
};

struct tnl_proxy_hdr {
    uint8_t version;                    /* 1 or 2 */
    uint8_t local;                      /* 1: LOCAL command (v2) or "UNKNOWN" (v1): keep the socket's own addresses */
    struct sockaddr_storage src;        /* valid when !local; ss_family AF_INET or AF_INET6 */
    struct sockaddr_storage dst;
    struct tnl_slice tlvs;              /* v2 only: raw TLV area (validated), may be empty */
    size_t header_len;                  /* bytes the header occupies at the start of buf */
};

/*
 * Returns MATCH (h filled, h->header_len bytes to consume), NEED_MORE (a valid
 * prefix of a v1 or v2 header), NO_MATCH (does not start like either) or INVALID
 * (*err set to a static message naming the bad field).
 */
enum tnl_sniff_status tnl_proxy_parse(const uint8_t *buf, size_t len, struct tnl_proxy_hdr *h,
                                      const char **err);

/* Walk the TLVs of a parsed v2 header; *off starts at 0. Returns 1 with type and
 * value set, 0 at the end. The area was validated by tnl_proxy_parse. */
int tnl_proxy_tlv_next(struct tnl_slice tlvs, size_t *off, uint8_t *type, struct tnl_slice *value);

struct tnl_proxy_tlv {
    uint8_t type;
    const void *value;
    uint16_t len;
};

/*
 * Write a v2 PROXY header for a TCP connection from src to dst (both AF_INET or
 * both AF_INET6; mixed families are written as IPv6 with v4-mapped addresses).
 * Returns the number of bytes written, or -ENOSPC if cap is too small, -EINVAL
 * for an unsupported family or a TLV area over 65535 bytes.
 */
int tnl_proxy_v2_write(uint8_t *buf, size_t cap, const struct sockaddr *src,
                       const struct sockaddr *dst, const struct tnl_proxy_tlv *tlvs, size_t ntlvs);

#endif

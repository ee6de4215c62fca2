/*
 * http2.c — HTTP/2 "prior knowledge" connection preface (RFC 9113 §3.4):
 * the client's first 24 bytes are exactly "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
 * h2 over TLS is the TLS sniffer's business (ALPN "h2").
 */
#include "sniff/sniff.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum { H2_PREFACE_LEN = sizeof(h2_preface) - 1 };

enum tnl_sniff_status tnl_sniff_http2(const uint8_t *buf, size_t len, struct tnl_sniff_result *r)
{
    for (size_t i = 0; i < H2_PREFACE_LEN; i++) {
        if (i == len)
            return TNL_SNIFF_NEED_MORE;
        if (buf[i] != (uint8_t)h2_preface[i])
            return TNL_SNIFF_NO_MATCH;
    }
    r->proto = "http2";
    return TNL_SNIFF_MATCH;
}

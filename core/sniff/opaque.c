/*
 * opaque.c — the fallback "sniffer": any bytes (even none) are "opaque".
 * It is not in the built-in table; the runtime uses it after the Lua matchers
 * (or when the sniff timeout expires) so that every connection gets a proto.
 */
#include "sniff/sniff.h"

enum tnl_sniff_status tnl_sniff_opaque(const uint8_t *buf, size_t len, struct tnl_sniff_result *r)
{
    r->proto = "opaque";
    return TNL_SNIFF_MATCH;
}

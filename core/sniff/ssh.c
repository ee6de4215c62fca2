/*
 * ssh.c — SSH client identification string (RFC 4253 §4.2):
 *
 *   SSH-protoversion-softwareversion SP comments CR LF
 *
 * at most 255 bytes including CR LF, printable US-ASCII. protoversion must be
 * "2.0" or "1.99" (a 1.99 client speaks 2.0 too). Bare LF is accepted as a line
 * end (RFC 4253 §4.2 asks servers to be lenient). Decides NO_MATCH at the first
 * byte that differs from "SSH-", INVALID as soon as the version or a byte of the
 * line is wrong, MATCH at the line end.
 */
#include <string.h>

#include "sniff/sniff.h"

enum {
    SSH_LINE_MAX = 255,             /* including CR LF */
};

static const char ssh_prefix[] = "SSH-";
static const char *const ssh_versions[] = { "SSH-2.0-", "SSH-1.99-" };

/* NO_MATCH / NEED_MORE / MATCH for the "SSH-" prefix. */
static enum tnl_sniff_status ssh_magic(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < sizeof(ssh_prefix) - 1; i++) {
        if (i == n)
            return TNL_SNIFF_NEED_MORE;
        if (b[i] != (uint8_t)ssh_prefix[i])
            return TNL_SNIFF_NO_MATCH;
    }
    return TNL_SNIFF_MATCH;
}

/*
 * Compare the line's first n bytes with "SSH-2.0-" and "SSH-1.99-": MATCH when
 * one of them is wholly present, NEED_MORE when the bytes agree with one so far.
 */
static enum tnl_sniff_status ssh_version(const uint8_t *b, size_t n)
{
    enum tnl_sniff_status st = TNL_SNIFF_INVALID;

    for (size_t v = 0; v < sizeof(ssh_versions) / sizeof(ssh_versions[0]); v++) {
        size_t k = strlen(ssh_versions[v]);
        if (memcmp(b, ssh_versions[v], n < k ? n : k) != 0)
            continue;
        if (n >= k)
            return TNL_SNIFF_MATCH;
        st = TNL_SNIFF_NEED_MORE;
    }
    return st;
}

/*
 * Find the line end within the first 255 bytes; *end = length without CR LF.
 * Every byte before it must be printable; a CR only directly before the LF.
 */
static enum tnl_sniff_status ssh_line(const uint8_t *b, size_t n, size_t *end, const char **err)
{
    size_t lim = n < SSH_LINE_MAX ? n : SSH_LINE_MAX;

    for (size_t i = 0; i < lim; i++) {
        if (b[i] == '\n') {
            *end = i > 0 && b[i - 1] == '\r' ? i - 1 : i;
            return TNL_SNIFF_MATCH;
        }
        if (b[i] == '\r' && (i + 1 == n || b[i + 1] == '\n'))
            continue;
        if (b[i] < 0x20 || b[i] > 0x7e) {
            *err = "ssh: control or non-ASCII byte in identification line";
            return TNL_SNIFF_INVALID;
        }
    }
    if (n >= SSH_LINE_MAX) {
        *err = "ssh: identification line longer than 255 bytes";
        return TNL_SNIFF_INVALID;
    }
    return TNL_SNIFF_NEED_MORE;
}

enum tnl_sniff_status tnl_sniff_ssh(const uint8_t *buf, size_t len, struct tnl_sniff_result *r)
{
    const char *err = NULL;
    size_t end = 0;

    enum tnl_sniff_status st = ssh_magic(buf, len);
    if (st != TNL_SNIFF_MATCH)
        return st;
    st = ssh_line(buf, len, &end, &err);
    if (st == TNL_SNIFF_INVALID)
        goto invalid;
    /* The version must agree so far, and be whole once the line is. */
    enum tnl_sniff_status v = ssh_version(buf, st == TNL_SNIFF_MATCH ? end : len);
    if (v == TNL_SNIFF_INVALID || (st == TNL_SNIFF_MATCH && v != TNL_SNIFF_MATCH)) {
        err = "ssh: protocol version is not 2.0 or 1.99";
        goto invalid;
    }
    if (st == TNL_SNIFF_MATCH) {
        r->proto = "ssh";
        r->ssh_version = (struct tnl_slice){ buf, end };
    }
    return st;

invalid:
    r->proto = "ssh";
    r->error = err;
    return TNL_SNIFF_INVALID;
}

/*
 * sniff.h — protocol sniffers over the first bytes of a connection.
 *
 * Glossary
 *   peek     the bytes read from a new connection so far. Sniffing never consumes
 *            them: they are replayed to the upstream untouched.
 *   slice    a (pointer, length) view into the peek buffer or into the caller's
 *            scratch buffer; valid as long as both of those are.
 *   decide   a sniffer answers as soon as the bytes decide, never after waiting for
 *            a fixed byte count:
 *              NEED_MORE  the bytes so far are a valid prefix of this protocol
 *                         (or too short to tell): call again with more bytes;
 *              MATCH      this protocol, fields filled in;
 *              NO_MATCH   not this protocol;
 *              INVALID    this protocol, but malformed (a length field that does not
 *                         fit its enclosing length, a bad code, ...): r->error says
 *                         what, as a static string.
 *
 * Every parse function is pure: it reads only buf[0..len) (and writes only the
 * result and r->scratch[0..r->scratch_cap)), keeps no state between calls, and is
 * called again over the whole peek each time more bytes arrive.
 */
#ifndef TNL_SNIFF_H
#define TNL_SNIFF_H

#include <stddef.h>
#include <stdint.h>

enum tnl_sniff_status {
    TNL_SNIFF_NEED_MORE = 0,
    TNL_SNIFF_MATCH = 1,
    TNL_SNIFF_NO_MATCH = 2,
    TNL_SNIFF_INVALID = 3,
};

struct tnl_slice {
    const uint8_t *p;
    size_t n;
};

/* Everything a built-in sniffer can learn. Zeroed by tnl_sniff_result_init. */
struct tnl_sniff_result {
    const char *proto;          /* static: "tls", "http", "http2", "postgresql", "ssh", "opaque" */
    const char *error;          /* static message when INVALID */

    /* tls */
    struct tnl_slice sni;       /* host_name from server_name, if any */
    struct tnl_slice alpn;      /* raw ProtocolNameList (each entry: u8 len + bytes), validated */
    uint16_t tls_version;       /* ClientHello legacy_version, e.g. 0x0303 */

    /* http (1.x) */
    struct tnl_slice method;
    struct tnl_slice path;      /* request-target as sent */
    struct tnl_slice host;      /* Host header value, surrounding whitespace trimmed */
    struct tnl_slice authorization; /* Authorization header value, trimmed (p set, n 0 if empty) */
    uint8_t http_minor;         /* 0 or 1 */

    /* postgresql */
    struct {
        struct tnl_slice user;
        struct tnl_slice database;
        uint8_t ssl;            /* first message was SSLRequest */
        uint8_t gssenc;         /* first message was GSSENCRequest */
        uint8_t cancel;         /* first message was CancelRequest */
    } pg;

    /* ssh */
    struct tnl_slice ssh_version;   /* whole identification line without CR LF, e.g. "SSH-2.0-OpenSSH_9.2p1 ..." */

    /* Scratch space owned by the caller, at least as large as the peek; sniffers
     * that must reassemble (TLS handshake split over several records) copy into it
     * and point slices at it. */
    uint8_t *scratch;
    size_t scratch_cap;
};

typedef enum tnl_sniff_status (*tnl_sniff_fn)(const uint8_t *buf, size_t len,
                                              struct tnl_sniff_result *r);

struct tnl_sniffer {
    const char *name;           /* protocol name handed to Lua as conn.proto */
    tnl_sniff_fn parse;
};

/* One file each. */
enum tnl_sniff_status tnl_sniff_tls(const uint8_t *buf, size_t len, struct tnl_sniff_result *r);
enum tnl_sniff_status tnl_sniff_http1(const uint8_t *buf, size_t len, struct tnl_sniff_result *r);
enum tnl_sniff_status tnl_sniff_http2(const uint8_t *buf, size_t len, struct tnl_sniff_result *r);
enum tnl_sniff_status tnl_sniff_pg(const uint8_t *buf, size_t len, struct tnl_sniff_result *r);
enum tnl_sniff_status tnl_sniff_ssh(const uint8_t *buf, size_t len, struct tnl_sniff_result *r);
enum tnl_sniff_status tnl_sniff_opaque(const uint8_t *buf, size_t len, struct tnl_sniff_result *r);

/* The built-in sniffers in the order they are tried (opaque is not in it: it is
 * the fallback after the Lua matchers). NULL-terminated. */
extern const struct tnl_sniffer tnl_sniffers_builtin[];

void tnl_sniff_result_init(struct tnl_sniff_result *r, uint8_t *scratch, size_t scratch_cap);

/*
 * Run the built-ins in order over buf. Returns MATCH (r filled, r->proto set),
 * INVALID (r->proto names the protocol, r->error says what), NEED_MORE (at least
 * one built-in still needs more bytes and none matched), or NO_MATCH (every
 * built-in said no: Lua matchers and the opaque fallback come next).
 */
enum tnl_sniff_status tnl_sniff_builtin(const uint8_t *buf, size_t len, struct tnl_sniff_result *r);

/* Iterate the entries of a validated ALPN ProtocolNameList: *off starts at 0.
 * Returns 1 and sets *out to the next name, 0 at the end. */
int tnl_sniff_alpn_next(struct tnl_slice list, size_t *off, struct tnl_slice *out);

const char *tnl_sniff_status_name(enum tnl_sniff_status s);

#endif

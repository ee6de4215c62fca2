/*
 * token.h — signed identity tokens.
 *
 *   tnl1.<payload>.<mac>
 *
 * payload  base64url (no padding) of compact JSON {"id":"...","role":"...","exp":N}
 *          (id and role: 1..128 printable ASCII; exp: Unix seconds)
 * mac      base64url of HMAC-SHA256(secret, "tnl1." + payload) (32 bytes)
 *
 * Verification checks the MAC first, in constant time (libsodium), and only
 * then parses the payload; then the expiry. A token proves that its holder got
 * it from someone who holds the secret: it is a bearer credential, valid for
 * anyone who presents it until exp.
 */
#ifndef TNL_TOKEN_H
#define TNL_TOKEN_H

#include <stddef.h>
#include <stdint.h>

enum {
    TNL_TOKEN_SECRET_MIN = 32,          /* bytes */
    TNL_TOKEN_SECRET_MAX = 256,
    TNL_TOKEN_FIELD_MAX = 128,
    TNL_TOKEN_MAX = 1024,               /* whole token, characters */
};

struct tnl_token {
    char id[TNL_TOKEN_FIELD_MAX + 1];
    char role[TNL_TOKEN_FIELD_MAX + 1];
    int64_t exp;
};

enum tnl_token_status {
    TNL_TOKEN_OK = 0,
    TNL_TOKEN_MALFORMED,                /* not tnl1.x.y, bad base64, bad payload */
    TNL_TOKEN_BAD_SIGNATURE,
    TNL_TOKEN_EXPIRED,
};

/* Verify and parse; *why gets a static message on failure. */
enum tnl_token_status tnl_token_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                                       int64_t now, struct tnl_token *out, const char **why);

/* Parse a payload's JSON (exposed for tests and fuzzing). 0 or -EINVAL. */
int tnl_token_payload_parse(const char *json, size_t len, struct tnl_token *out, const char **why);

/* Make a token into out (capacity cap). Returns its length, or -EINVAL for bad
 * fields, -ENOSPC if cap is too small. */
int tnl_token_issue(const struct tnl_token *t, const uint8_t *secret, size_t secret_len, char *out, size_t cap);

/* Read a secret file: raw bytes, or hex (64+ hex digits) on one line. The
 * buffer is wiped on failure. Returns the length or -errno, with err. */
int tnl_token_secret_load(const char *path, uint8_t *secret, size_t cap, char *err, size_t errcap);

#endif

/*
 * token.c — HMAC-SHA256 signed identity tokens (see token.h).
 */
#include "token/token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "util/atomic_file.h"

static const char PREFIX[] = "tnl1.";
enum { PREFIX_LEN = 5, PAYLOAD_JSON_MAX = 512 };

/* ---- payload: {"id":"..","role":"..","exp":N}, keys in any order --------- */

struct cursor {
    const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int expect(struct cursor *c, char ch)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return -1;
    c->p++;
    return 0;
}

/* A JSON string of printable ASCII without escapes (all our fields are). */
static int read_string(struct cursor *c, char *out, size_t cap)
{
    size_t n = 0;
    if (expect(c, '"') < 0)
        return -1;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch > 0x7e || ch == '\\' || n + 1 >= cap)
            return -1;
        out[n++] = (char)ch;
        c->p++;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int read_int(struct cursor *c, int64_t *v)
{
    int64_t x = 0;
    int digits = 0;
    skip_ws(c);
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (x > (INT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (*c->p - '0');
        c->p++;
        digits++;
    }
    if (digits == 0 || digits > 18)
        return -1;
    *v = x;
    return 0;
}

int tnl_token_payload_parse(const char *json, size_t len, struct tnl_token *out, const char **why)
{
    struct cursor c = { json, json + len };
    int seen_id = 0, seen_role = 0, seen_exp = 0;
    char key[16];
    memset(out, 0, sizeof *out);
    *why = "token payload is not {\"id\":...,\"role\":...,\"exp\":...}";
    if (expect(&c, '{') < 0)
        return -EINVAL;
    for (int i = 0; i < 3; i++) {
        if (i > 0 && expect(&c, ',') < 0)
            return -EINVAL;
        if (read_string(&c, key, sizeof key) < 0 || expect(&c, ':') < 0)
            return -EINVAL;
        if (strcmp(key, "id") == 0 && !seen_id++) {
            if (read_string(&c, out->id, sizeof out->id) < 0 || !out->id[0])
                return -EINVAL;
        } else if (strcmp(key, "role") == 0 && !seen_role++) {
            if (read_string(&c, out->role, sizeof out->role) < 0)
                return -EINVAL;
        } else if (strcmp(key, "exp") == 0 && !seen_exp++) {
            if (read_int(&c, &out->exp) < 0)
                return -EINVAL;
        } else {
            *why = "token payload has an unknown or repeated field";
            return -EINVAL;
        }
    }
    if (expect(&c, '}') < 0)
        return -EINVAL;
    skip_ws(&c);
    if (c.p != c.end) {
        *why = "token payload has bytes after the object";
        return -EINVAL;
    }
    return 0;
}

/* ---- the token ----------------------------------------------------------- */

/* Only the base64url alphabet. sodium_base642bin must not see anything else:
 * bytes >= 0x80 are negative chars, which its constant-time digit decoding
 * can take for valid digits (a token with such a byte changed would still
 * verify). */
static int b64url_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Decode canonical base64url only: re-encoding must give the input back, so
 * that no two spellings (unused low bits in the last digit) are one token. */
static int b64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap, size_t *outlen)
{
    char again[2 * TNL_TOKEN_MAX];
    if (!b64url_only(in, inlen) ||
        sodium_base642bin(out, cap, in, inlen, NULL, outlen, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    if (sodium_base64_encoded_len(*outlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) > sizeof again)
        return -1;
    sodium_bin2base64(again, sizeof again, out, *outlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return strlen(again) == inlen && memcmp(again, in, inlen) == 0 ? 0 : -1;
}

enum tnl_token_status tnl_token_verify(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
                                       int64_t now, struct tnl_token *out, const char **why)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char json[PAYLOAD_JSON_MAX + 1];
    size_t maclen = 0, jlen = 0;
    crypto_auth_hmacsha256_state st;
    if (len > TNL_TOKEN_MAX || len < PREFIX_LEN || memcmp(token, PREFIX, PREFIX_LEN) != 0) {
        *why = "not a tunnel token (tnl1.<payload>.<mac>)";
        return TNL_TOKEN_MALFORMED;
    }
    const char *dot = memchr(token + PREFIX_LEN, '.', len - PREFIX_LEN);
    if (!dot || memchr(dot + 1, '.', (size_t)(token + len - dot - 1))) {
        *why = "not a tunnel token (tnl1.<payload>.<mac>)";
        return TNL_TOKEN_MALFORMED;
    }
    const char *payload = token + PREFIX_LEN;
    size_t plen = (size_t)(dot - payload);
    if (b64_decode(dot + 1, (size_t)(token + len - dot - 1), mac, sizeof mac, &maclen) < 0 ||
        maclen != sizeof mac) {
        *why = "token signature is not 32 bytes of base64url";
        return TNL_TOKEN_MALFORMED;
    }
    /* The MAC covers "tnl1." + payload, exactly as sent. */
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)token, PREFIX_LEN + plen);
    uint8_t want[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_final(&st, want);
    int good = sodium_memcmp(want, mac, sizeof mac) == 0;     /* constant time */
    sodium_memzero(want, sizeof want);
    sodium_memzero(&st, sizeof st);
    if (!good) {
        *why = "token signature does not verify";
        return TNL_TOKEN_BAD_SIGNATURE;
    }
    if (b64_decode(payload, plen, (uint8_t *)json, PAYLOAD_JSON_MAX, &jlen) < 0) {
        *why = "token payload is not base64url";
        return TNL_TOKEN_MALFORMED;
    }
    json[jlen] = 0;
    if (tnl_token_payload_parse(json, jlen, out, why) < 0)
        return TNL_TOKEN_MALFORMED;
    if (out->exp <= now) {
        *why = "token has expired";
        return TNL_TOKEN_EXPIRED;
    }
    return TNL_TOKEN_OK;
}

static int field_ok(const char *s, int allow_empty)
{
    size_t n = strlen(s);
    if ((!allow_empty && n == 0) || n > TNL_TOKEN_FIELD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return 0;
    return 1;
}

int tnl_token_issue(const struct tnl_token *t, const uint8_t *secret, size_t secret_len, char *out, size_t cap)
{
    char json[PAYLOAD_JSON_MAX];
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    if (!field_ok(t->id, 0) || !field_ok(t->role, 1) || t->exp <= 0)
        return -EINVAL;
    int jl = snprintf(json, sizeof json, "{\"id\":\"%s\",\"role\":\"%s\",\"exp\":%lld}", t->id, t->role,
                      (long long)t->exp);
    size_t plen = sodium_base64_encoded_len((size_t)jl, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
    size_t mlen = sodium_base64_encoded_len(sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
    if (PREFIX_LEN + plen + 1 + mlen + 1 > cap)
        return -ENOSPC;
    memcpy(out, PREFIX, PREFIX_LEN);
    sodium_bin2base64(out + PREFIX_LEN, plen + 1, (const uint8_t *)json, (size_t)jl,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_auth_hmacsha256_state st;   /* the state API takes a key of any length */
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)out, PREFIX_LEN + plen);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    out[PREFIX_LEN + plen] = '.';
    sodium_bin2base64(out + PREFIX_LEN + plen + 1, mlen + 1, mac, sizeof mac,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return (int)(PREFIX_LEN + plen + 1 + mlen);
}

int tnl_token_secret_load(const char *path, uint8_t *secret, size_t cap, char *err, size_t errcap)
{
    size_t len = 0;
    char *raw = tnl_file_read(path, 4096, &len, err, errcap);
    if (!raw)
        return -EIO;
    size_t n = len;
    while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r' || raw[n - 1] == ' '))
        n--;
    size_t out = 0;
    int rc;
    if (n >= 64 && sodium_hex2bin(secret, cap, raw, n, NULL, &out, NULL) == 0) {
        rc = (int)out;          /* hex on one line */
    } else if (len <= cap) {
        memcpy(secret, raw, len);
        rc = (int)len;          /* raw bytes */
    } else {
        rc = -EINVAL;
    }
    sodium_memzero(raw, len);
    free(raw);
    if (rc >= 0 && rc < TNL_TOKEN_SECRET_MIN) {
        snprintf(err, errcap, "%s: a token secret needs at least %d bytes (got %d)", path, TNL_TOKEN_SECRET_MIN, rc);
        sodium_memzero(secret, cap);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(err, errcap, "%s: token secret too long", path);
        sodium_memzero(secret, cap);
    }
    return rc;
}

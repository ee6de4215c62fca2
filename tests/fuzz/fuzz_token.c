/*
 * fuzz_token.c — token verification and the payload parser over arbitrary
 * input. Invariants: no crash or over-read; OK only for a token whose MAC
 * verifies (random input never does, except by breaking HMAC); parsed fields
 * are NUL-terminated printable ASCII.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token/token.h"

static const uint8_t SECRET[32] = "fuzz-secret-fuzz-secret-fuzz-sec";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tnl_token t;
    const char *why;
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    enum tnl_token_status st = tnl_token_verify(buf, size, SECRET, sizeof SECRET, 0, &t, &why);
    if (st == TNL_TOKEN_OK)
        __builtin_trap();       /* a forged MAC */
    if (tnl_token_payload_parse(buf, size, &t, &why) == 0) {
        if (!t.id[0] || strlen(t.id) > TNL_TOKEN_FIELD_MAX || strlen(t.role) > TNL_TOKEN_FIELD_MAX || t.exp < 0)
            __builtin_trap();
        /* a parsed payload re-issues and verifies */
        char tok[TNL_TOKEN_MAX + 1];
        if (t.exp > 0 && tnl_token_issue(&t, SECRET, sizeof SECRET, tok, sizeof tok) > 0) {
            struct tnl_token back;
            if (tnl_token_verify(tok, strlen(tok), SECRET, sizeof SECRET, 0, &back, &why) != TNL_TOKEN_OK ||
                strcmp(back.id, t.id) != 0 || strcmp(back.role, t.role) != 0 || back.exp != t.exp)
                __builtin_trap();
        }
    }
    free(buf);
    return 0;
}

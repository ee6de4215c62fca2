/*
 * test_token.c — signed identity tokens (core/token/token.c): round trips,
 * every single-byte change refused, expiry, hostile payloads, secret files.
 */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <sodium.h>

#include "token/token.h"

static const uint8_t SECRET[32] = "0123456789abcdef0123456789abcdef";

static int issue(const char *id, const char *role, int64_t exp, char *out, size_t cap)
{
    struct tnl_token t = { .exp = exp };
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.role, sizeof t.role, "%s", role);
    return tnl_token_issue(&t, SECRET, sizeof SECRET, out, cap);
}

static void test_round_trip(void **state)
{
    char tok[TNL_TOKEN_MAX + 1];
    struct tnl_token t;
    const char *why;
    int n = issue("agent-7", "web", 2000000000, tok, sizeof tok);
    assert_true(n > 0);
    assert_memory_equal(tok, "tnl1.", 5);
    assert_int_equal(tnl_token_verify(tok, (size_t)n, SECRET, sizeof SECRET, 1000, &t, &why), TNL_TOKEN_OK);
    assert_string_equal(t.id, "agent-7");
    assert_string_equal(t.role, "web");
    assert_int_equal(t.exp, 2000000000);
}

static void test_every_byte_changed_is_refused(void **state)
{
    char tok[TNL_TOKEN_MAX + 1];
    struct tnl_token t;
    const char *why;
    int n = issue("agent-7", "web", 2000000000, tok, sizeof tok);
    for (int i = 0; i < n; i++) {
        char saved = tok[i];
        for (int delta = 1; delta < 256; delta++) {
            tok[i] = (char)(saved + delta);
            uint8_t *exact = unit_exact((uint8_t *)tok, (size_t)n);
            enum tnl_token_status st = tnl_token_verify((char *)exact, (size_t)n, SECRET, sizeof SECRET, 1000, &t, &why);
            free(exact);
            assert_int_not_equal(st, TNL_TOKEN_OK);
        }
        tok[i] = saved;
    }
}

static void test_wrong_secret_and_expiry(void **state)
{
    char tok[TNL_TOKEN_MAX + 1];
    struct tnl_token t;
    const char *why;
    uint8_t other[32];
    memcpy(other, SECRET, sizeof other);
    other[31] ^= 1;
    int n = issue("a", "", 5000, tok, sizeof tok);
    assert_int_equal(tnl_token_verify(tok, (size_t)n, other, sizeof other, 1000, &t, &why), TNL_TOKEN_BAD_SIGNATURE);
    assert_string_equal(why, "token signature does not verify");
    assert_int_equal(tnl_token_verify(tok, (size_t)n, SECRET, sizeof SECRET, 5000, &t, &why), TNL_TOKEN_EXPIRED);
    assert_int_equal(tnl_token_verify(tok, (size_t)n, SECRET, sizeof SECRET, 4999, &t, &why), TNL_TOKEN_OK);
}

static void test_malformed(void **state)
{
    struct tnl_token t;
    const char *why;
    static const char *const bad[] = {
        "", "tnl1", "tnl1.", "tnl1..", "tnl2.abc.def", "tnl1.abc", "tnl1.abc.def.ghi", "tnl1.@@@.AAAA",
        "Bearer tnl1.a.b", "tnl1.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum tnl_token_status st = tnl_token_verify(bad[i], strlen(bad[i]), SECRET, sizeof SECRET, 0, &t, &why);
        assert_true(st == TNL_TOKEN_MALFORMED || st == TNL_TOKEN_BAD_SIGNATURE);
        assert_non_null(why);
    }
}

static void test_payload_parser(void **state)
{
    struct tnl_token t;
    const char *why;
    static const char *const good[] = {
        "{\"id\":\"a\",\"role\":\"r\",\"exp\":1}",
        "{ \"exp\" : 12 , \"role\" : \"\" , \"id\" : \"x y\" }",
    };
    static const char *const bad[] = {
        "", "{}", "[]", "{\"id\":\"a\"}", "{\"id\":\"a\",\"role\":\"r\",\"exp\":1,\"x\":2}",
        "{\"id\":\"a\",\"id\":\"b\",\"exp\":1}", "{\"id\":\"\",\"role\":\"r\",\"exp\":1}",
        "{\"id\":\"a\\\"b\",\"role\":\"r\",\"exp\":1}", "{\"id\":\"a\",\"role\":\"r\",\"exp\":-1}",
        "{\"id\":\"a\",\"role\":\"r\",\"exp\":1e9}", "{\"id\":\"a\",\"role\":\"r\",\"exp\":99999999999999999999}",
        "{\"id\":\"a\",\"role\":\"r\",\"exp\":1}x", "{\"id\":\"a\",\"role\":\"r\",\"exp\":1",
        "{\"id\":\"a\x01\",\"role\":\"r\",\"exp\":1}", "{\"id\":1,\"role\":\"r\",\"exp\":1}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(tnl_token_payload_parse(good[i], strlen(good[i]), &t, &why), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *exact = unit_exact((const uint8_t *)bad[i], strlen(bad[i]));
        assert_int_equal(tnl_token_payload_parse((char *)exact, strlen(bad[i]), &t, &why), -EINVAL);
        free(exact);
    }
    /* a 129-byte id is too long */
    char big[300];
    memset(big, 'a', sizeof big);
    int n = snprintf(big, sizeof big, "{\"id\":\"%.*s\",\"role\":\"r\",\"exp\":1}", 129,
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(tnl_token_payload_parse(big, (size_t)n, &t, &why), -EINVAL);
}

static void test_issue_refuses_bad_fields(void **state)
{
    char tok[TNL_TOKEN_MAX + 1];
    assert_int_equal(issue("", "r", 10, tok, sizeof tok), -EINVAL);
    assert_int_equal(issue("a\"b", "r", 10, tok, sizeof tok), -EINVAL);
    assert_int_equal(issue("a", "r", 0, tok, sizeof tok), -EINVAL);
    assert_int_equal(issue("a", "r", 10, tok, 20), -ENOSPC);
}

static void test_secret_file(void **state)
{
    char path[] = "/tmp/tnl-secret-XXXXXX", err[256];
    uint8_t secret[TNL_TOKEN_SECRET_MAX];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    assert_int_equal(write(fd, hex, sizeof hex - 1), (ssize_t)(sizeof hex - 1));
    close(fd);
    assert_int_equal(tnl_token_secret_load(path, secret, sizeof secret, err, sizeof err), 32);
    assert_int_equal(secret[0], 0x00);
    assert_int_equal(secret[31], 0xff);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "short", 5), 5);
    close(fd);
    assert_true(tnl_token_secret_load(path, secret, sizeof secret, err, sizeof err) < 0);
    assert_non_null(strstr(err, "at least 32 bytes"));
    unlink(path);
}

int main(void)
{
    assert_true(sodium_init() >= 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_byte_changed_is_refused),
        cmocka_unit_test(test_wrong_secret_and_expiry),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_payload_parser),
        cmocka_unit_test(test_issue_refuses_bad_fields),
        cmocka_unit_test(test_secret_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

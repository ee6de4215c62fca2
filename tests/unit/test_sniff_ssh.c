/*
 * test_sniff_ssh.c — the SSH identification-line sniffer (core/sniff/ssh.c):
 * the OpenSSH 9.2 capture, every prefix, the 255-byte limit, versions.
 */
#include "unit.h"
#include "vectors.h"

#include "sniff/sniff.h"

struct run {
    uint8_t *buf;
    struct tnl_sniff_result r;
    enum tnl_sniff_status st;
};

static void run_ssh(struct run *x, const void *p, size_t n)
{
    x->buf = unit_exact(p, n);
    tnl_sniff_result_init(&x->r, NULL, 0);
    x->st = tnl_sniff_ssh(x->buf, n, &x->r);
}

static const struct vec_first_bytes_captures *ssh_capture(void)
{
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++)
        if (strstr(vec_first_bytes_captures[i].name, "SSH client banner"))
            return &vec_first_bytes_captures[i];
    fail_msg("no ssh capture");
    return NULL;
}

static void test_capture(void **state)
{
    const struct vec_first_bytes_captures *c = ssh_capture();
    const char *banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10";
    size_t line = strlen(banner) + 2;       /* CR LF */
    assert_string_equal(c->ascii_prefix, banner);
    for (size_t k = 0; k <= c->bytes_len; k++) {
        struct run x;
        run_ssh(&x, c->bytes, k);
        if (k < line) {
            if (x.st != TNL_SNIFF_NEED_MORE)
                fail_msg("prefix %zu: %s", k, tnl_sniff_status_name(x.st));
            assert_int_equal(x.r.ssh_version.n, 0);
        } else {
            assert_int_equal(x.st, TNL_SNIFF_MATCH);
            assert_string_equal(x.r.proto, "ssh");
            assert_slice_equal(x.r.ssh_version, banner);
            assert_ptr_equal(x.r.ssh_version.p, x.buf);
        }
        free(x.buf);
    }
}

static void test_line_length_limit(void **state)
{
    char line[400];
    struct run x;

    /* exactly 255 bytes with CR LF: accepted */
    memset(line, 'a', sizeof(line));
    memcpy(line, "SSH-2.0-", 8);
    memcpy(line + 253, "\r\n", 2);
    run_ssh(&x, line, 255);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.r.ssh_version.n, 253);
    free(x.buf);
    /* 256 bytes with CR LF: too long, decided once 255 bytes are in */
    memset(line, 'a', sizeof(line));
    memcpy(line, "SSH-2.0-", 8);
    memcpy(line + 254, "\r\n", 2);
    run_ssh(&x, line, 254);
    assert_int_equal(x.st, TNL_SNIFF_NEED_MORE);
    free(x.buf);
    run_ssh(&x, line, 255);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    assert_string_equal(x.r.error, "ssh: identification line longer than 255 bytes");
    assert_string_equal(x.r.proto, "ssh");
    free(x.buf);
    run_ssh(&x, line, 300);
    assert_int_equal(x.st, TNL_SNIFF_INVALID);
    free(x.buf);
    /* bare LF at byte 255 (a 255-byte line) is fine */
    memset(line, 'b', sizeof(line));
    memcpy(line, "SSH-2.0-", 8);
    line[254] = '\n';
    run_ssh(&x, line, 255);
    assert_int_equal(x.st, TNL_SNIFF_MATCH);
    assert_int_equal(x.r.ssh_version.n, 254);
    free(x.buf);
}

static void test_versions_and_bytes(void **state)
{
    static const struct {
        const char *s;
        enum tnl_sniff_status want;
        const char *version;
    } cases[] = {
        { "SSH-1.99-OpenSSH_3.9\r\n", TNL_SNIFF_MATCH, "SSH-1.99-OpenSSH_3.9" },
        { "SSH-2.0-PuTTY_Release_0.78\n", TNL_SNIFF_MATCH, "SSH-2.0-PuTTY_Release_0.78" },
        { "SSH-2.0-x y z\r\nrest", TNL_SNIFF_MATCH, "SSH-2.0-x y z" },
        { "SSH-1.5-old\r\n", TNL_SNIFF_INVALID, NULL },
        { "SSH-1.5", TNL_SNIFF_INVALID, NULL },       /* decided before the line ends */
        { "SSH-3", TNL_SNIFF_INVALID, NULL },
        { "SSH-2.0\r\n", TNL_SNIFF_INVALID, NULL },   /* no '-' after the version */
        { "SSH-2.", TNL_SNIFF_NEED_MORE, NULL },
        { "SSH-1.9", TNL_SNIFF_NEED_MORE, NULL },
        { "SSH-2.0-a\rb\r\n", TNL_SNIFF_INVALID, NULL },
        { "SSH-2.0-a\x01\r\n", TNL_SNIFF_INVALID, NULL },
        { "SSH-2.0-caf\xc3\xa9\r\n", TNL_SNIFF_INVALID, NULL },
        { "SSH-2.0-a\r", TNL_SNIFF_NEED_MORE, NULL },
        { "SSH_2.0", TNL_SNIFF_NO_MATCH, NULL },
        { "ssh-2.0", TNL_SNIFF_NO_MATCH, NULL },
        { "SS", TNL_SNIFF_NEED_MORE, NULL },
        { "", TNL_SNIFF_NEED_MORE, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run x;
        run_ssh(&x, cases[i].s, strlen(cases[i].s));
        if (x.st != cases[i].want)
            fail_msg("case %zu (%s): %s", i, cases[i].s, tnl_sniff_status_name(x.st));
        if (cases[i].version)
            assert_slice_equal(x.r.ssh_version, cases[i].version);
        if (x.st == TNL_SNIFF_INVALID)
            assert_non_null(x.r.error);
        free(x.buf);
    }
}

static void test_other_captures(void **state)
{
    for (size_t i = 0; i < vec_first_bytes_captures_count; i++) {
        const struct vec_first_bytes_captures *c = &vec_first_bytes_captures[i];
        if (strstr(c->name, "SSH client banner"))
            continue;
        struct run x;
        run_ssh(&x, c->bytes, 1);
        assert_int_equal(x.st, TNL_SNIFF_NO_MATCH);
        free(x.buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_versions_and_bytes),
        cmocka_unit_test(test_other_captures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

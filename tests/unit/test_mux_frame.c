/*
 * test_mux_frame.c — the yamux header codec (core/mux/frame.c): every field,
 * every malformed-frame class, every prefix length, and the frames that npm
 * @chainsafe/libp2p-yamux 8.0.1 put on the wire.
 *
 * The capture hex below is copied from tests/vectors/yamux-frames-libp2p-capture.json
 * (hard-coded rather than generated so that this test links nothing but the codec).
 */
#include "unit.h"

#include "mux/frame.h"

static enum tnl_mux_frame_status decode_hex(const char *hex, uint32_t max, struct tnl_mux_frame *f,
                                            const char **err)
{
    size_t n;
    uint8_t *raw = unit_unhex(hex, &n);
    uint8_t *p = unit_exact(raw, n);     /* exactly n bytes: ASan sees any over-read */
    *err = NULL;
    enum tnl_mux_frame_status st = tnl_mux_frame_decode(p, n, max, f, err);
    free(p);
    free(raw);
    return st;
}

static void expect_frame(const char *hex, uint8_t type, uint16_t flags, uint32_t id, uint32_t len)
{
    struct tnl_mux_frame f;
    const char *err;
    assert_int_equal(decode_hex(hex, 1u << 24, &f, &err), TNL_MUX_FRAME_OK);
    assert_null(err);
    assert_int_equal(f.version, 0);
    assert_int_equal(f.type, type);
    assert_int_equal(f.flags, flags);
    assert_int_equal(f.stream_id, id);
    assert_int_equal(f.length, len);
}

static void expect_encoded(const char *hex12, enum tnl_mux_type type, uint16_t flags, uint32_t id,
                           uint32_t len)
{
    uint8_t out[TNL_MUX_HDR_LEN];
    size_t n;
    uint8_t *want = unit_unhex(hex12, &n);
    assert_int_equal(n, TNL_MUX_HDR_LEN);
    tnl_mux_frame_encode(out, type, flags, id, len);
    assert_memory_equal(out, want, TNL_MUX_HDR_LEN);
    free(want);
}

/* Every frame observed from the JS implementation decodes to what its
 * description says ("client_opens_stream_and_sends_hi",
 * "server_accepts_stream_opened_with_SYN_DATA", "go_away_examples"). */
static void test_capture_decodes(void **state)
{
    (void)state;
    expect_frame("000100010000000100000000", TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, 1, 0);
    expect_frame("0000000000000001000000026869", TNL_MUX_DATA, 0, 1, 2);
    expect_frame("000100000000000100000003", TNL_MUX_WINDOW_UPDATE, 0, 1, 3);
    expect_frame("00020002000000000000004d", TNL_MUX_PING, TNL_MUX_ACK, 0, 77);
    expect_frame("000100040000000100000000", TNL_MUX_WINDOW_UPDATE, TNL_MUX_FIN, 1, 0);
    expect_frame("00000002000000010000001373706c69742d6672616d652d7061796c6f6164",
                 TNL_MUX_DATA, TNL_MUX_ACK, 1, 19);
    expect_frame("000100000000000100000013", TNL_MUX_WINDOW_UPDATE, 0, 1, 19);
    expect_frame("0002000200000000000004d2", TNL_MUX_PING, TNL_MUX_ACK, 0, 1234);
    expect_frame("000300000000000000000000", TNL_MUX_GO_AWAY, 0, 0, TNL_MUX_GOAWAY_NORMAL);
    expect_frame("000300000000000000000001", TNL_MUX_GO_AWAY, 0, 0, TNL_MUX_GOAWAY_PROTOCOL);
    expect_frame("000300000000000000000002", TNL_MUX_GO_AWAY, 0, 0, TNL_MUX_GOAWAY_INTERNAL);
}

/* Our encoder writes the same bytes for the same frames. */
static void test_capture_encodes(void **state)
{
    (void)state;
    expect_encoded("000100010000000100000000", TNL_MUX_WINDOW_UPDATE, TNL_MUX_SYN, 1, 0);
    expect_encoded("000000000000000100000002", TNL_MUX_DATA, 0, 1, 2);
    expect_encoded("000100000000000100000003", TNL_MUX_WINDOW_UPDATE, 0, 1, 3);
    expect_encoded("00020002000000000000004d", TNL_MUX_PING, TNL_MUX_ACK, 0, 77);
    expect_encoded("000100040000000100000000", TNL_MUX_WINDOW_UPDATE, TNL_MUX_FIN, 1, 0);
    expect_encoded("000000020000000100000013", TNL_MUX_DATA, TNL_MUX_ACK, 1, 19);
    expect_encoded("0002000200000000000004d2", TNL_MUX_PING, TNL_MUX_ACK, 0, 1234);
    expect_encoded("000300000000000000000000", TNL_MUX_GO_AWAY, 0, 0, TNL_MUX_GOAWAY_NORMAL);
    expect_encoded("000300000000000000000001", TNL_MUX_GO_AWAY, 0, 0, TNL_MUX_GOAWAY_PROTOCOL);
    expect_encoded("000300000000000000000002", TNL_MUX_GO_AWAY, 0, 0, TNL_MUX_GOAWAY_INTERNAL);
}

/* Big-endian, every byte of every field in its place. */
static void test_roundtrip_fields(void **state)
{
    (void)state;
    static const uint32_t ids[] = { 1, 2, 0x01020304, 0x7fffffff, 0xffffffff };
    static const uint32_t lens[] = { 0, 1, 0x00a0b0c0, 0xfffffffe, 0xffffffff };
    for (size_t i = 0; i < 5; i++) {
        for (uint16_t flags = 0; flags <= TNL_MUX_FLAGS_KNOWN; flags++) {
            uint8_t out[TNL_MUX_HDR_LEN];
            struct tnl_mux_frame f;
            tnl_mux_frame_encode(out, TNL_MUX_WINDOW_UPDATE, flags, ids[i], lens[i]);
            assert_int_equal(out[4], ids[i] >> 24);
            assert_int_equal(out[11], lens[i] & 0xff);
            assert_int_equal(tnl_mux_frame_decode(out, sizeof out, 0, &f, NULL), TNL_MUX_FRAME_OK);
            assert_int_equal(f.type, TNL_MUX_WINDOW_UPDATE);
            assert_int_equal(f.flags, flags);
            assert_int_equal(f.stream_id, ids[i]);
            assert_int_equal(f.length, lens[i]);
        }
    }
}

static void expect_bad(const char *hex, uint32_t max, enum tnl_mux_frame_status want)
{
    struct tnl_mux_frame f;
    const char *err;
    assert_int_equal(decode_hex(hex, max, &f, &err), want);
    assert_non_null(err);
    assert_string_equal(err, tnl_mux_frame_status_str(want));
}

static void test_malformed_classes(void **state)
{
    (void)state;
    /* version */
    expect_bad("010000000000000100000000", 1024, TNL_MUX_FRAME_BAD_VERSION);
    expect_bad("ff0200010000000000000000", 1024, TNL_MUX_FRAME_BAD_VERSION);
    /* type */
    expect_bad("000400000000000100000000", 1024, TNL_MUX_FRAME_BAD_TYPE);
    expect_bad("00ff00000000000100000000", 1024, TNL_MUX_FRAME_BAD_TYPE);
    /* flags: any bit above RST */
    expect_bad("000000100000000100000000", 1024, TNL_MUX_FRAME_BAD_FLAGS);
    expect_bad("000180000000000100000000", 1024, TNL_MUX_FRAME_BAD_FLAGS);
    expect_bad("000201010000000000000000", 1024, TNL_MUX_FRAME_BAD_FLAGS);
    /* session frames on a stream */
    expect_bad("000200010000000100000007", 1024, TNL_MUX_FRAME_SESSION_ON_STREAM);
    expect_bad("000300000000000200000000", 1024, TNL_MUX_FRAME_SESSION_ON_STREAM);
    /* stream frames on the session */
    expect_bad("000000000000000000000000", 1024, TNL_MUX_FRAME_STREAM_ON_SESSION);
    expect_bad("000100010000000000000100", 1024, TNL_MUX_FRAME_STREAM_ON_SESSION);
    /* ping flags: exactly one of SYN, ACK */
    expect_bad("000200000000000000000001", 1024, TNL_MUX_FRAME_PING_FLAGS);
    expect_bad("000200030000000000000001", 1024, TNL_MUX_FRAME_PING_FLAGS);
    expect_bad("000200050000000000000001", 1024, TNL_MUX_FRAME_PING_FLAGS);
    expect_bad("000200080000000000000001", 1024, TNL_MUX_FRAME_PING_FLAGS);
    /* Data longer than the largest window; the bound itself is fine */
    expect_bad("000000000000000100000401", 1024, TNL_MUX_FRAME_TOO_LONG);
    expect_bad("0000000000000001ffffffff", 0xfffffffe, TNL_MUX_FRAME_TOO_LONG);
    struct tnl_mux_frame f;
    const char *err;
    assert_int_equal(decode_hex("000000000000000100000400", 1024, &f, &err), TNL_MUX_FRAME_OK);
    /* a WindowUpdate's delta is not a length: any value decodes */
    assert_int_equal(decode_hex("0001000000000001ffffffff", 1024, &f, &err), TNL_MUX_FRAME_OK);
    /* GoAway flags mean nothing and are tolerated; unknown codes decode */
    assert_int_equal(decode_hex("000300010000000000000009", 1024, &f, &err), TNL_MUX_FRAME_OK);
    /* a malformed header still reports its fields, for the log line */
    assert_int_equal(decode_hex("07ff00100000000500000006", 1024, &f, &err), TNL_MUX_FRAME_BAD_VERSION);
    assert_int_equal(f.version, 7);
    assert_int_equal(f.stream_id, 5);
    assert_int_equal(f.length, 6);
}

/* The checks are ordered: the first problem found is the one reported. */
static void test_precedence(void **state)
{
    (void)state;
    expect_bad("01ff00ff0000000000000000", 0, TNL_MUX_FRAME_BAD_VERSION);
    expect_bad("000900ff0000000000000000", 0, TNL_MUX_FRAME_BAD_TYPE);
    expect_bad("000200ff0000000100000000", 0, TNL_MUX_FRAME_BAD_FLAGS);
    expect_bad("000200000000000100000000", 0, TNL_MUX_FRAME_SESSION_ON_STREAM);
}

/* Fewer than 12 bytes is never a decision, whatever they are. */
static void test_prefixes_need_more(void **state)
{
    (void)state;
    static const uint8_t good[12] = { 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0 };
    static const uint8_t bad[12] = { 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9 };
    for (size_t n = 0; n < TNL_MUX_HDR_LEN; n++) {
        struct tnl_mux_frame f;
        const char *err = NULL;
        uint8_t *p = unit_exact(good, n);
        assert_int_equal(tnl_mux_frame_decode(p, n, 1024, &f, &err), TNL_MUX_FRAME_NEED_MORE);
        assert_non_null(err);
        free(p);
        p = unit_exact(bad, n);
        assert_int_equal(tnl_mux_frame_decode(p, n, 1024, &f, NULL), TNL_MUX_FRAME_NEED_MORE);
        free(p);
    }
}

/* Only the first 12 bytes count: a Data payload that follows is not read. */
static void test_trailing_bytes_ignored(void **state)
{
    (void)state;
    struct tnl_mux_frame f;
    const char *err;
    assert_int_equal(decode_hex("0000000100000003000000ff0102030405", 1024, &f, &err), TNL_MUX_FRAME_OK);
    assert_int_equal(f.flags, TNL_MUX_SYN);
    assert_int_equal(f.length, 255);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(tnl_mux_type_name(TNL_MUX_DATA), "Data");
    assert_string_equal(tnl_mux_type_name(TNL_MUX_WINDOW_UPDATE), "WindowUpdate");
    assert_string_equal(tnl_mux_type_name(TNL_MUX_PING), "Ping");
    assert_string_equal(tnl_mux_type_name(TNL_MUX_GO_AWAY), "GoAway");
    assert_string_equal(tnl_mux_type_name(4), "unknown");
    for (int st = 0; st < TNL_MUX_FRAME_STATUS_COUNT; st++)
        assert_non_null(tnl_mux_frame_status_str((enum tnl_mux_frame_status)st));
    assert_string_equal(tnl_mux_frame_status_str(TNL_MUX_FRAME_STATUS_COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_decodes),
        cmocka_unit_test(test_capture_encodes),
        cmocka_unit_test(test_roundtrip_fields),
        cmocka_unit_test(test_malformed_classes),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_prefixes_need_more),
        cmocka_unit_test(test_trailing_bytes_ignored),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

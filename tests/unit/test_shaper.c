/*
 * test_shaper.c — byte buckets and quotas (core/limit/shaper.c), on a clock
 * the test moves: the long-run rate, the burst, waits that are neither zero
 * nor a byte at a time, the quota's fall to the trickle and its recovery.
 */
#include "unit.h"

#include "limit/shaper.h"

/* Move `seconds` of simulated time in `step` steps, reading as much as the
 * shaper allows each step; returns the bytes that passed. */
static double drive(struct tnl_shaper *s, double *now, double seconds, double step)
{
    double moved = 0, end = *now + seconds;
    while (*now < end) {
        double wait;
        size_t n = tnl_shaper_allow(s, 1 << 20, *now, &wait);
        if (n) {
            tnl_shaper_consume(s, n);
            moved += (double)n;
        } else {
            assert_true(wait > 0);
        }
        *now += step;
    }
    return moved;
}

static void test_unlimited(void **state)
{
    (void)state;
    struct tnl_shaper_cfg cfg = { 0 };
    struct tnl_shaper *s = tnl_shaper_new("t", &cfg, 100);
    double wait = -1;
    assert_int_equal(tnl_shaper_allow(s, 12345, 100, &wait), 12345);
    assert_true(wait == 0);
    assert_true(tnl_shaper_rate(s) == 0);
    tnl_shaper_unref(s);
}

static void test_rate_over_time(void **state)
{
    (void)state;
    struct tnl_shaper_cfg cfg = { .rate = 1048576 };
    double now = 1000;
    struct tnl_shaper *s = tnl_shaper_new("t", &cfg, now);
    /* The default burst: a quarter second's worth (at least 64 KiB). */
    assert_true(s->cfg.burst == 262144);
    double moved = drive(s, &now, 10, 0.003);
    /* 10 s at 1 MiB/s plus at most one burst. */
    assert_true(moved >= 10 * 1048576.0 * 0.99);
    assert_true(moved <= 10 * 1048576.0 + 262144 + 1);
    assert_int_equal(s->bytes, (uint64_t)moved);
    tnl_shaper_unref(s);
}

static void test_burst_then_wait(void **state)
{
    (void)state;
    struct tnl_shaper_cfg cfg = { .rate = 100000, .burst = 50000 };
    double wait, now = 5;
    struct tnl_shaper *s = tnl_shaper_new("t", &cfg, now);
    assert_int_equal(tnl_shaper_allow(s, 1 << 20, now, &wait), 50000);
    tnl_shaper_consume(s, 50000);
    assert_int_equal(tnl_shaper_allow(s, 1 << 20, now, &wait), 0);
    /* Waits for a useful chunk (a quarter of the burst), not for one byte. */
    assert_true(wait > 0.1 && wait < 0.2);
    now += wait;
    size_t n = tnl_shaper_allow(s, 1 << 20, now, &wait);
    assert_true(n >= 12000 && n <= 12600);
    /* Tokens never pile up past the burst, however long the pause. */
    tnl_shaper_consume(s, n);
    now += 3600;
    assert_int_equal(tnl_shaper_allow(s, 1 << 20, now, &wait), 50000);
    tnl_shaper_unref(s);
}

/* After a read that emptied the bucket: how long until a useful chunk is
 * back (io_shaped.c pauses that long rather than dribble). */
static void test_refill(void **state)
{
    (void)state;
    struct tnl_shaper_cfg cfg = { .rate = 1048576 };
    double wait, now = 7;
    struct tnl_shaper *s = tnl_shaper_new("t", &cfg, now);
    assert_true(tnl_shaper_refill(s) == 0);         /* a full bucket */
    size_t n = tnl_shaper_allow(s, 1 << 20, now, &wait);
    assert_int_equal(n, 262144);
    tnl_shaper_consume(s, n);
    /* empty: a chunk (a quarter of the burst) at 1 MiB/s is 1/16 s away */
    double t = tnl_shaper_refill(s);
    assert_true(t > 0.062 && t < 0.063);
    now += t;
    n = tnl_shaper_allow(s, 1 << 20, now, &wait);
    assert_true(n >= 65535 && n <= 65536);
    tnl_shaper_unref(s);
    struct tnl_shaper_cfg none = { 0 };
    s = tnl_shaper_new("u", &none, now);
    assert_true(tnl_shaper_refill(s) == 0);         /* unlimited */
    tnl_shaper_unref(s);
}

/* Two readers on one bucket, both paused for tokens and woken in the same
 * order every time (timers due at once): the first to wake must not take
 * everything, or the second never moves (a tiny request starved behind a bulk
 * upload was the bug). */
static void test_waiting_readers_share(void **state)
{
    (void)state;
    struct tnl_shaper_cfg cfg = { .rate = 100000, .burst = 40000 };
    double wait, now = 1;
    struct tnl_shaper *s = tnl_shaper_new("t", &cfg, now);
    size_t got[2] = { 0, 0 };
    for (int round = 0; round < 50; round++) {
        /* both paused ... */
        tnl_shaper_wait(s, 1);
        tnl_shaper_wait(s, 1);
        now += 0.1;
        /* ... and woken, the bulk reader first */
        for (int r = 0; r < 2; r++) {
            tnl_shaper_wait(s, 0);
            size_t n = tnl_shaper_allow(s, 1 << 20, now, &wait);
            tnl_shaper_consume(s, n);
            got[r] += n;
        }
    }
    assert_int_equal(s->waiting, 0);
    /* each about half of 50 x 0.1 s x 100000 B/s (plus the first burst) */
    assert_true(got[1] > 200000);
    assert_true(got[0] > 200000);
    double ratio = (double)got[0] / (double)got[1];
    assert_true(ratio > 0.8 && ratio < 1.25);
    /* the count never goes below zero */
    tnl_shaper_wait(s, 0);
    assert_int_equal(s->waiting, 0);
    tnl_shaper_unref(s);
}

static void test_quota_trickle_and_recovery(void **state)
{
    (void)state;
    struct tnl_shaper_cfg cfg = { .rate = 1048576, .quota = 4 * 1048576.0, .trickle = 65536, .window = 60 };
    double now = 0;
    struct tnl_shaper *s = tnl_shaper_new("t", &cfg, now);
    /* The quota lasts about four seconds at the full rate ... */
    drive(s, &now, 5, 0.002);
    assert_true(s->over_quota);
    assert_true(tnl_shaper_rate(s) == 65536);
    /* ... then the trickle, never zero. */
    double moved = drive(s, &now, 20, 0.002);
    assert_true(moved >= 20 * 65536 * 0.95 && moved <= 20 * 65536 + 16384 + 1);
    /* The window turns at 60 s: back to the full rate. */
    now = 60.5;
    moved = drive(s, &now, 2, 0.002);
    assert_false(s->over_quota);
    assert_true(tnl_shaper_rate(s) == 1048576);
    assert_true(moved >= 2 * 1048576.0 * 0.95);
    tnl_shaper_unref(s);
}

static void test_defaults(void **state)
{
    (void)state;
    struct tnl_shaper_cfg cfg = { .rate = 10000, .quota = 1 };
    struct tnl_shaper *s = tnl_shaper_new("t", &cfg, 0);
    assert_true(s->cfg.burst == 65536);
    assert_true(s->cfg.trickle == 65536);
    assert_true(s->cfg.window == 3600);
    tnl_shaper_ref(s);
    tnl_shaper_unref(s);
    tnl_shaper_unref(s);
    tnl_shaper_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_rate_over_time),
        cmocka_unit_test(test_burst_then_wait),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_waiting_readers_share),
        cmocka_unit_test(test_quota_trickle_and_recovery),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

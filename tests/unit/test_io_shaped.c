/*
 * test_io_shaped.c — reading through a shaper (core/net/io_shaped.c) from a
 * source that stays readable, as the splice reads: one read per readiness
 * event, level-triggered.
 *
 * Covered: the long-run rate holds (the burst, then the rate); once the
 * bucket is empty the reads are of a useful size, not the handful of bytes
 * that trickled in since the previous call (that made a shaped download loop
 * on ten-byte reads and crawl at a tenth of its rate under load); nothing
 * read is lost or reordered; the source is never read while paused.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"
#include "unit_loop.h"

#include "limit/shaper.h"
#include "net/io.h"
#include "net/io_shaped.h"

enum { RATE = 1048576, READ_MAX = 131072 };

struct reader {
    struct tnl_io *io;
    uint64_t bytes;
    int reads, small;
    int bad_order;
};

static uint8_t pat(uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13);
}

static void on_ready(struct tnl_io *io, int events)
{
    struct reader *r = io->owner;
    static uint8_t buf[READ_MAX];
    if (!(events & TNL_IO_READ))
        return;
    ssize_t n = tnl_io_read(io, buf, sizeof buf);
    if (n <= 0) {
        assert_int_equal(n, -EAGAIN);
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] != pat(r->bytes + (uint64_t)i))
            r->bad_order++;
    r->bytes += (uint64_t)n;
    r->reads++;
    if (n < 16384)
        r->small++;
}

/* Keep the writer's end full, so the shaped end is always readable. */
static void top_up(int fd, uint64_t *sent)
{
    uint8_t chunk[16384];
    for (;;) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = pat(*sent + i);
        ssize_t w = write(fd, chunk, sizeof chunk);
        if (w <= 0)
            return;
        *sent += (uint64_t)w;
    }
}

static void test_rate_in_useful_reads(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct tnl_shaper_cfg cfg = { .rate = RATE };
    struct tnl_shaper *sh = tnl_shaper_new("test", &cfg, tnl_now());
    struct tnl_io *inner = tnl_io_fd_new(sv[1]);
    assert_non_null(inner);
    struct tnl_io *io = tnl_io_shaped_new(inner, &sh, 1);
    assert_non_null(io);
    tnl_shaper_unref(sh);               /* the wrapper holds its own reference */
    struct reader r = { .io = io };
    io->owner = &r;
    io->ready = on_ready;
    tnl_io_want(io, TNL_IO_READ);

    uint64_t sent = 0;
    double end = mono() + 1.0;
    while (mono() < end) {
        top_up(sv[0], &sent);
        tnl_loop_step(0.005);
    }
    /* One second: the burst (a quarter second's worth) plus about a second
     * at the rate, give or take a chunk (the reader waits for one). */
    assert_true(r.bytes >= (uint64_t)(RATE * 1.0));
    assert_true(r.bytes <= (uint64_t)(RATE * 1.25 + 65536 + 1));
    assert_int_equal(r.bad_order, 0);
    /* Reads of a useful size: about one per chunk (64 KiB here), never a
     * stream of ten-byte reads. */
    assert_true(r.reads <= 40);
    assert_true(r.small <= 2);
    tnl_io_close(io, 0);
    close(sv[0]);
}

static int setup(void **state)
{
    (void)state;
    return tnl_loop_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_in_useful_reads),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

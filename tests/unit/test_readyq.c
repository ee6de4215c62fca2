/*
 * test_readyq.c — sockets are served in the order they became ready
 * (core/loop/readyq.c behind core/net/io_fd.c).
 *
 * Covered: five sockets made readable one after the other are handed to
 * their ready() callbacks in that order within one loop turn (libev alone
 * would run them newest first); a socket closed by an earlier callback of
 * the same turn is not called, nor one that an earlier callback told to
 * stop wanting reads (its events were already queued); events pushed twice
 * before the turn run once, together; a removed item never runs. A presumed
 * item (readiness the poll has not reported: a socket just accepted) runs in
 * the same turn, after the items the poll did report, presumes in the order
 * made, also when the last queued item was removed in between. A socket
 * presumed readable from a callback (as the router does on accept) is read
 * in that same loop turn, before any poll has reported it; presuming on an
 * endpoint that is not a plain socket does nothing.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"
#include "unit_loop.h"     /* tnl_loop_init, tnl_loop_step */

#include "loop/readyq.h"
#include "net/io.h"

enum { N = 5 };

struct fixture {
    int peer[N];
    struct tnl_io *io[N];
    int order[N];
    int calls;
    int victim;                         /* what the first callback acts on, or -1 */
    int victim_close;                   /* 1: close it, 0: stop wanting reads */
};

static struct fixture fx;

static void on_ready(struct tnl_io *io, int events)
{
    int k = (int)(intptr_t)io->owner;
    assert_true(events & TNL_IO_READ);
    fx.order[fx.calls++] = k;
    char buf[64];
    while (tnl_io_read(io, buf, sizeof buf) > 0)
        ;
    if (fx.victim >= 0 && fx.calls == 1) {
        if (fx.victim_close) {
            tnl_io_close(fx.io[fx.victim], 0);
            fx.io[fx.victim] = NULL;
        } else {
            tnl_io_want(fx.io[fx.victim], 0);
        }
    }
}

static void open_all(int victim, int victim_close)
{
    fx.calls = 0;
    fx.victim = victim;
    fx.victim_close = victim_close;
    for (int i = 0; i < N; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        fx.peer[i] = sv[1];
        fx.io[i] = tnl_io_fd_new(sv[0]);
        assert_non_null(fx.io[i]);
        fx.io[i]->owner = (void *)(intptr_t)i;
        fx.io[i]->ready = on_ready;
        tnl_io_want(fx.io[i], TNL_IO_READ);
    }
    tnl_loop_step(0);                   /* libev registers the descriptors */
    assert_int_equal(fx.calls, 0);
}

static void close_all(void)
{
    for (int i = 0; i < N; i++) {
        if (fx.io[i])
            tnl_io_close(fx.io[i], 0);
        fx.io[i] = NULL;
        close(fx.peer[i]);
    }
}

/* Make the sockets readable in the order given. */
static void poke(const int *idx, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(write(fx.peer[idx[i]], "x", 1), 1);
}

static void test_oldest_first(void **state)
{
    (void)state;
    open_all(-1, 0);
    static const int seq[N] = { 3, 0, 4, 1, 2 };
    poke(seq, N);
    tnl_loop_step(0.5);
    assert_int_equal(fx.calls, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(fx.order[i], seq[i]);
    close_all();
}

/* The first callback of the turn closes socket 2, or makes it stop wanting
 * reads, after the poll has queued it: it must not be called. */
static void victim_skipped(int victim_close)
{
    open_all(2, victim_close);
    static const int seq[N] = { 0, 1, 2, 3, 4 };
    poke(seq, N);
    tnl_loop_step(0.5);
    assert_int_equal(fx.calls, N - 1);
    static const int want[N - 1] = { 0, 1, 3, 4 };
    for (int i = 0; i < N - 1; i++)
        assert_int_equal(fx.order[i], want[i]);
    close_all();
}

static void test_closed_before_its_turn(void **state)
{
    (void)state;
    victim_skipped(1);
}

static void test_unwanted_before_its_turn(void **state)
{
    (void)state;
    victim_skipped(0);
}

/* A readyq item of our own, pushed by hand as a libev callback would. */
static int item_calls, item_events;

static void item_run(struct tnl_readyq_item *it, int events)
{
    (void)it;
    item_calls++;
    item_events = events;
}

static void test_gathered_and_removed(void **state)
{
    (void)state;
    struct tnl_readyq_item it;
    tnl_readyq_init(&it, item_run);
    item_calls = 0;
    tnl_readyq_push(&it, TNL_IO_READ);
    tnl_readyq_push(&it, TNL_IO_WRITE);     /* the same turn: one run, both events */
    tnl_loop_step(0);
    assert_int_equal(item_calls, 1);
    assert_int_equal(item_events, TNL_IO_READ | TNL_IO_WRITE);

    tnl_readyq_push(&it, TNL_IO_READ);
    tnl_readyq_remove(&it);                 /* removed before its turn: never runs */
    tnl_loop_step(0);
    assert_int_equal(item_calls, 1);
}

/* Items pushed as one poll's callbacks would (newest first), with presumes
 * made from the middle of them: the polled ones run oldest first, then the
 * presumed ones in the order made. */
static struct tnl_readyq_item items[6];
static int ran[6], nran;

static void order_run(struct tnl_readyq_item *it, int events)
{
    (void)events;
    ran[nran++] = (int)(it - items);
}

static void test_presumed_run_last(void **state)
{
    (void)state;
    for (int i = 0; i < 6; i++)
        tnl_readyq_init(&items[i], order_run);
    nran = 0;
    tnl_readyq_push(&items[2], TNL_IO_READ);    /* the poll's newest */
    tnl_readyq_presume(&items[4], TNL_IO_READ);
    tnl_readyq_push(&items[1], TNL_IO_READ);
    tnl_readyq_presume(&items[5], TNL_IO_READ);
    tnl_readyq_push(&items[0], TNL_IO_READ);    /* the poll's oldest */
    tnl_readyq_presume(&items[1], TNL_IO_WRITE); /* already queued: keeps its place */
    tnl_loop_step(0);
    assert_int_equal(nran, 5);
    static const int want[5] = { 0, 1, 2, 4, 5 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(ran[i], want[i]);

    /* The last item leaves the queue before the next presume: that one
     * still goes last, behind what is left. */
    nran = 0;
    tnl_readyq_push(&items[1], TNL_IO_READ);
    tnl_readyq_presume(&items[3], TNL_IO_READ);
    tnl_readyq_push(&items[0], TNL_IO_READ);
    tnl_readyq_remove(&items[3]);
    tnl_readyq_presume(&items[5], TNL_IO_READ);
    tnl_readyq_remove(&items[0]);
    tnl_readyq_presume(&items[2], TNL_IO_READ);
    tnl_loop_step(0);
    assert_int_equal(nran, 3);
    static const int want2[3] = { 1, 5, 2 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(ran[i], want2[i]);

    /* Everything removed: a presume alone runs too. */
    nran = 0;
    tnl_readyq_push(&items[0], TNL_IO_READ);
    tnl_readyq_remove(&items[0]);
    tnl_readyq_presume(&items[4], TNL_IO_READ);
    tnl_loop_step(0);
    assert_int_equal(nran, 1);
    assert_int_equal(ran[0], 4);
}

/* The callback of a socket the poll reported (as a listener's) makes a
 * socket that already holds bytes (as an accept does) and presumes it
 * readable: its ready() runs in the same loop turn. Without the presume,
 * libev registers it with epoll only before the next poll. */
static struct tnl_io *fresh;
static int fresh_peer, fresh_reads;

static void fresh_ready(struct tnl_io *io, int events)
{
    char buf[8];
    assert_true(events & TNL_IO_READ);
    assert_int_equal(tnl_io_read(io, buf, sizeof buf), 1);
    fresh_reads++;
}

static void accept_like(struct tnl_io *io, int events)
{
    (void)events;
    char buf[8];
    assert_int_equal(tnl_io_read(io, buf, sizeof buf), 1);
    tnl_io_want(io, 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    fresh_peer = sv[1];
    fresh = tnl_io_fd_new(sv[0]);
    assert_non_null(fresh);
    fresh->ready = fresh_ready;
    tnl_io_want(fresh, TNL_IO_READ);
    tnl_io_fd_presume(fresh, TNL_IO_READ);
}

static void test_fd_presumed_same_turn(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct tnl_io *trigger = tnl_io_fd_new(sv[0]);
    assert_non_null(trigger);
    trigger->ready = accept_like;
    tnl_io_want(trigger, TNL_IO_READ);
    tnl_loop_step(0);                       /* registered, nothing to read yet */
    fresh = NULL;
    fresh_reads = 0;
    assert_int_equal(write(sv[1], "x", 1), 1);
    tnl_loop_step(0);                       /* one turn: the poll, the "accept", the read */
    assert_non_null(fresh);
    assert_int_equal(fresh_reads, 1);
    tnl_io_close(fresh, 0);
    close(fresh_peer);
    tnl_io_close(trigger, 0);
    close(sv[1]);

    /* Not a plain socket: nothing is queued, nothing runs. */
    static const struct tnl_io_ops other_ops = { .kind = "other" };
    struct tnl_io other = { .ops = &other_ops, .ready = fresh_ready, .events = TNL_IO_READ };
    tnl_io_fd_presume(&other, TNL_IO_READ);
    tnl_loop_step(0);
    assert_int_equal(fresh_reads, 1);
}

static int setup(void **state)
{
    (void)state;
    return tnl_loop_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oldest_first),
        cmocka_unit_test(test_closed_before_its_turn),
        cmocka_unit_test(test_unwanted_before_its_turn),
        cmocka_unit_test(test_gathered_and_removed),
        cmocka_unit_test(test_presumed_run_last),
        cmocka_unit_test(test_fd_presumed_same_turn),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

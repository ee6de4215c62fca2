/*
 * test_steer.c — the kernel gives each new connection to the least loaded
 * worker (core/net/steer.c). Two listening sockets on one port stand for two
 * workers' (SO_REUSEPORT), and where the connections land is read off their
 * accept queues.
 *
 * Covered: the program is accepted by the verifier for 2, 3, 8 and 64
 * workers; a worker that does not serve is given nothing however many
 * connections arrive; with both serving, connections go to the one with
 * fewer open until what it was given since its last publish makes up the
 * difference, and then (a tie) to the lower worker; a publish clears what
 * was given since. Skipped where the process may not load BPF programs (not
 * root, no CAP_BPF) or the kernel has not the features.
 */
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"

#include "net/steer.h"

/* A listening socket sharing its port: on 127.0.0.1 and a free port, or
 * (same) on the address already in ss. */
static int listener(struct sockaddr_storage *ss, socklen_t *len, int same)
{
    int one = 1;
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    if (!same) {
        memset(ss, 0, sizeof *ss);
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)ss, sizeof *sin), 0);
    assert_int_equal(listen(fd, 64), 0);
    *len = sizeof *sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)ss, len), 0);
    return fd;
}

/* Set up steering for n workers, or skip the test. */
static void setup_or_skip(int n)
{
    char why[160];
    if (!tnl_steer_setup(n, why, sizeof why)) {
        print_message("steering unavailable here (%s)\n", why);
        skip();
    }
}

static void test_loads_for_any_count(void **state)
{
    (void)state;
    static const int counts[] = { 2, 3, 8, 64 };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        setup_or_skip(counts[i]);
        int first = listener(&ss, &len, 0), last = listener(&ss, &len, 1);
        assert_int_equal(tnl_steer_listen(1, first, &ss, len), 0);
        assert_int_equal(tnl_steer_listen(counts[i], last, &ss, len), 0);
        assert_int_equal(tnl_steer_listen(counts[i] + 1, last, &ss, len), -1);  /* no such worker */
        close(first);
        close(last);
    }
}

struct pair {
    int fd[2];                          /* worker 1's, worker 2's listening socket */
    struct sockaddr_storage ss;
    socklen_t len;
};

static void pair_open(struct pair *p)
{
    setup_or_skip(2);
    p->fd[0] = listener(&p->ss, &p->len, 0);
    p->fd[1] = listener(&p->ss, &p->len, 1);
    assert_int_equal(tnl_steer_listen(1, p->fd[0], &p->ss, p->len), 0);
    assert_int_equal(tnl_steer_listen(2, p->fd[1], &p->ss, p->len), 0);
}

/* Make n connections one after the other; got[w] counts those that landed
 * in worker w+1's queue (accepted and closed here). */
static void connect_n(struct pair *p, int n, int got[2])
{
    got[0] = got[1] = 0;
    for (int i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        assert_int_equal(connect(c, (struct sockaddr *)&p->ss, p->len), 0);
        struct pollfd pf[2] = { { p->fd[0], POLLIN, 0 }, { p->fd[1], POLLIN, 0 } };
        assert_true(poll(pf, 2, 2000) > 0);
        for (int w = 0; w < 2; w++) {
            int a;
            while ((a = accept(p->fd[w], NULL, NULL)) >= 0) {
                got[w]++;
                close(a);
            }
        }
        close(c);
    }
    assert_int_equal(got[0] + got[1], n);
}

static void pair_close(struct pair *p)
{
    close(p->fd[0]);
    close(p->fd[1]);
}

static void test_idle_worker_given_none(void **state)
{
    (void)state;
    struct pair p;
    int got[2];
    pair_open(&p);
    tnl_steer_publish(1, 40, 1);            /* busy, but the only one serving */
    tnl_steer_publish(2, 0, 0);
    connect_n(&p, 16, got);
    assert_int_equal(got[0], 16);
    assert_int_equal(got[1], 0);
    pair_close(&p);
}

static void test_least_loaded(void **state)
{
    (void)state;
    struct pair p;
    int got[2];
    pair_open(&p);
    tnl_steer_publish(1, 5, 1);
    tnl_steer_publish(2, 0, 1);
    /* Worker 2 has 0..4 against 5: five to it; then 5 against 5, a tie: worker 1. */
    connect_n(&p, 5, got);
    assert_int_equal(got[1], 5);
    connect_n(&p, 1, got);
    assert_int_equal(got[0], 1);
    /* Now 6 against 5: worker 2 again. */
    connect_n(&p, 1, got);
    assert_int_equal(got[1], 1);
    /* A publish clears what was given since: 0 against 0, then 1 against 0. */
    tnl_steer_publish(1, 0, 1);
    tnl_steer_publish(2, 0, 1);
    connect_n(&p, 2, got);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 1);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_for_any_count),
        cmocka_unit_test(test_idle_worker_given_none),
        cmocka_unit_test(test_least_loaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_connect.c — outbound connects (core/net/connect.c) with early bytes,
 * and the splice (core/net/splice.c) between two socketpairs.
 *
 * Covered: early bytes reach a listening peer and are counted in early_sent;
 * done never runs before tnl_connect_start returns, on success or failure; a
 * refused connect reports the address and sends nothing; without early bytes
 * the connect still completes (writability path). The splice moves a
 * request-response exchange with one read per message (a short read is not
 * followed by a read that can only say EAGAIN), still notices EOF that
 * arrives after the data, and passes each half-close on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"
#include "unit_loop.h"

#include "net/connect.h"
#include "net/io.h"
#include "net/splice.h"
#include "util/buf.h"

struct result {
    int calls;
    int fd;
    size_t early_sent;
    char err[160];
    int in_start;                   /* set while tnl_connect_start runs */
    int called_in_start;
};

static void done_cb(struct tnl_connect *c, int fd, const char *err)
{
    struct result *r = c->owner;
    r->calls++;
    r->fd = fd;
    r->early_sent = c->early_sent;
    r->called_in_start |= r->in_start;
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

/* A listening socket on 127.0.0.1 and its port. */
static int listen_lo(uint16_t *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void start(struct tnl_connect *c, struct result *r, uint16_t port, const char *early)
{
    struct tnl_hostport hp = { .port = port };
    snprintf(hp.host, sizeof hp.host, "127.0.0.1");
    memset(r, 0, sizeof *r);
    r->fd = -2;
    r->in_start = 1;
    tnl_connect_start(c, &hp, 2.0, early, early ? strlen(early) : 0, done_cb, r);
    r->in_start = 0;
}

static void test_early_bytes_arrive(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_lo(&port);
    struct tnl_connect c;
    struct result r;
    start(&c, &r, port, "GET / HTTP/1.1\r\n\r\n");
    RUN_UNTIL(r.calls > 0, 2.0);
    assert_int_equal(r.calls, 1);
    assert_false(r.called_in_start);
    assert_true(r.fd >= 0);
    assert_int_equal(r.early_sent, 18);
    int afd = accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    char got[64] = "";
    assert_int_equal(recv(afd, got, sizeof got, 0), 18);
    assert_memory_equal(got, "GET / HTTP/1.1\r\n\r\n", 18);
    close(afd);
    close(r.fd);
    close(lfd);
}

static void test_refused(void **state)
{
    (void)state;
    uint16_t port;
    close(listen_lo(&port));            /* a port nobody listens on now */
    struct tnl_connect c;
    struct result r;
    start(&c, &r, port, "hello");
    RUN_UNTIL(r.calls > 0, 2.0);
    assert_int_equal(r.calls, 1);
    assert_false(r.called_in_start);
    assert_true(r.fd < 0);
    assert_non_null(strstr(r.err, "127.0.0.1"));
    assert_non_null(strstr(r.err, "refused"));
}

static void test_without_early_bytes(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_lo(&port);
    struct tnl_connect c;
    struct result r;
    start(&c, &r, port, NULL);
    RUN_UNTIL(r.calls > 0, 2.0);
    assert_true(r.fd >= 0);
    assert_int_equal(r.early_sent, 0);
    close(r.fd);
    close(lfd);
}

/* ---- the splice: a counting endpoint over a socket ------------------------ */

struct counted {
    struct tnl_io io;               /* first: cast from tnl_io */
    struct tnl_io *inner;
    int reads, eagain;
};

static ssize_t counted_read(struct tnl_io *io, void *buf, size_t n)
{
    struct counted *c = (struct counted *)io;
    ssize_t r = tnl_io_read(c->inner, buf, n);
    c->reads++;
    c->eagain += r == -EAGAIN;
    return r;
}

static ssize_t counted_write(struct tnl_io *io, const void *buf, size_t n)
{
    return tnl_io_write(((struct counted *)io)->inner, buf, n);
}

static int counted_shutdown(struct tnl_io *io)
{
    return ((struct counted *)io)->inner->ops->shutdown(((struct counted *)io)->inner);
}

static void inner_ready(struct tnl_io *inner, int events)
{
    struct counted *c = inner->owner;
    c->io.ready(&c->io, events);
}

static void counted_want(struct tnl_io *io, int events)
{
    io->events = events;
    tnl_io_want(((struct counted *)io)->inner, events);
}

static void counted_close(struct tnl_io *io, int abort)
{
    tnl_io_close(((struct counted *)io)->inner, abort);
}

static const struct tnl_io_ops counted_ops = {
    .kind = "counted",
    .read = counted_read,
    .write = counted_write,
    .shutdown = counted_shutdown,
    .want = counted_want,
    .close = counted_close,
};

static void counted_init(struct counted *c, int fd)
{
    memset(c, 0, sizeof *c);
    c->io.ops = &counted_ops;
    c->inner = tnl_io_fd_new(fd);
    assert_non_null(c->inner);
    c->inner->owner = c;
    c->inner->ready = inner_ready;
}

static int spliced_done, spliced_err;

static void splice_done(struct tnl_splice *s, int err, char side)
{
    (void)s; (void)side;
    spliced_done++;
    spliced_err = err;
}

static ssize_t recv_wait(int fd, char *buf, size_t n)
{
    ssize_t r = -1;
    double end = mono() + 2.0;
    while (mono() < end) {
        tnl_loop_step(0.005);
        r = recv(fd, buf, n, MSG_DONTWAIT);
        if (r >= 0 || errno != EAGAIN)
            return r;
    }
    return r;
}

static void test_splice_one_read_per_message(void **state)
{
    (void)state;
    int ca[2], cb[2];                   /* client <-> a, b <-> server */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, ca), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, cb), 0);
    struct counted a, b;
    counted_init(&a, ca[1]);
    counted_init(&b, cb[0]);
    struct tnl_splice s;
    spliced_done = 0;
    tnl_splice_start(&s, &a.io, &b.io, NULL, 0, splice_done, NULL);
    char buf[256];
    for (int i = 0; i < 20; i++) {
        assert_int_equal(send(ca[0], "ping", 4, 0), 4);
        assert_int_equal(recv_wait(cb[1], buf, sizeof buf), 4);
        assert_int_equal(send(cb[1], "pong!", 5, 0), 5);
        assert_int_equal(recv_wait(ca[0], buf, sizeof buf), 5);
        assert_memory_equal(buf, "pong!", 5);
    }
    /* One read per message each way; none that could only say EAGAIN. */
    assert_int_equal(a.reads, 20);
    assert_int_equal(b.reads, 20);
    assert_int_equal(a.eagain + b.eagain, 0);

    /* Data, then EOF a moment later: both arrive, the FIN is passed on. */
    assert_int_equal(send(ca[0], "last", 4, 0), 4);
    assert_int_equal(recv_wait(cb[1], buf, sizeof buf), 4);
    shutdown(ca[0], SHUT_WR);
    assert_int_equal(recv_wait(cb[1], buf, sizeof buf), 0);
    assert_int_equal(spliced_done, 0);          /* b -> a still open */
    assert_int_equal(send(cb[1], "bye", 3, 0), 3);
    assert_int_equal(recv_wait(ca[0], buf, sizeof buf), 3);
    shutdown(cb[1], SHUT_WR);
    RUN_UNTIL(spliced_done == 1, 2.0);
    assert_int_equal(spliced_err, 0);
    tnl_splice_release(&s);
    tnl_io_close(&a.io, 0);
    tnl_io_close(&b.io, 0);
    assert_int_equal(recv_wait(ca[0], buf, sizeof buf), 0);
    close(ca[0]);
    close(cb[1]);
}

static int setup(void **state)
{
    (void)state;
    return tnl_loop_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_early_bytes_arrive),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_without_early_bytes),
        cmocka_unit_test(test_splice_one_read_per_message),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

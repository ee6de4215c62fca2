/*
 * resolve.c — getaddrinfo on a worker thread (see resolve.h).
 *
 * Requests travel loop -> worker on `todo`, answers worker -> loop on `done`,
 * both under one mutex. The loop side owns a request again once it is on
 * `done`; cancellation only sets a flag, so a request is freed in exactly one
 * place (deliver()).
 */
#include "net/resolve.h"
#include "util/str.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/loop.h"

struct tnl_resolve {
    struct tnl_resolve *next;
    char host[256];
    uint16_t port;
    tnl_resolve_fn cb;
    void *arg;
    int cancelled;
    int n;
    struct sockaddr_storage addrs[TNL_RESOLVE_MAX];
    char err[128];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct tnl_resolve *todo_head, *todo_tail, *done_head;
static int started;
static ev_async wake;

static void lookup(struct tnl_resolve *r)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    snprintf(port, sizeof port, "%u", r->port);
    int rc = getaddrinfo(r->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(r->err, sizeof r->err, "cannot resolve %s: %s", r->host, gai_strerror(rc));
        return;
    }
    for (struct addrinfo *ai = res; ai && r->n < TNL_RESOLVE_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen <= sizeof r->addrs[0])
            memcpy(&r->addrs[r->n++], ai->ai_addr, ai->ai_addrlen);
    }
    freeaddrinfo(res);
    if (r->n == 0)
        snprintf(r->err, sizeof r->err, "cannot resolve %s: no address", r->host);
}

static void *worker(void *unused)
{
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!todo_head)
            pthread_cond_wait(&cond, &mu);
        struct tnl_resolve *r = todo_head;
        todo_head = r->next;
        if (!todo_head)
            todo_tail = NULL;
        int skip = r->cancelled;
        pthread_mutex_unlock(&mu);

        if (!skip)
            lookup(r);

        pthread_mutex_lock(&mu);
        r->next = done_head;
        done_head = r;
        pthread_mutex_unlock(&mu);
        ev_async_send(tnl_ev, &wake);
    }
    return NULL;
}

static void deliver(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    pthread_mutex_lock(&mu);
    struct tnl_resolve *list = done_head;
    done_head = NULL;
    pthread_mutex_unlock(&mu);
    while (list) {
        struct tnl_resolve *r = list;
        list = r->next;
        if (!r->cancelled)
            r->cb(r->arg, r->addrs, r->n, r->n ? NULL : r->err);
        free(r);
    }
}

static int start_worker(void)
{
    pthread_t t;
    pthread_attr_t attr;
    ev_async_init(&wake, deliver);
    ev_async_start(tnl_ev, &wake);
    ev_unref(tnl_ev);   /* the async watcher alone does not keep the loop alive */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, worker, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

struct tnl_resolve *tnl_resolve_start(const char *host, uint16_t port, tnl_resolve_fn cb, void *arg)
{
    if (!started) {
        if (start_worker() != 0)
            return NULL;
        started = 1;
    }
    struct tnl_resolve *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    tnl_strlcpy(r->host, host, sizeof r->host);
    r->port = port;
    r->cb = cb;
    r->arg = arg;
    pthread_mutex_lock(&mu);
    if (todo_tail)
        todo_tail->next = r;
    else
        todo_head = r;
    todo_tail = r;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mu);
    return r;
}

void tnl_resolve_cancel(struct tnl_resolve *r)
{
    pthread_mutex_lock(&mu);
    r->cancelled = 1;
    pthread_mutex_unlock(&mu);
}

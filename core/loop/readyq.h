/*
 * readyq.h — readiness served oldest first.
 *
 * libev runs the callbacks of one poll newest first: ev_invoke_pending pops
 * its pending array from the end, and epoll lists the descriptors in the
 * order they became ready. On a busy worker, with dozens of sockets ready at
 * once, the socket that has waited longest is then served last, and under
 * load that ordering is what widens the latency tail (Connection: close
 * through the router, rotated A/B sessions: p99 1.07-1.14x haproxy's newest
 * first, 0.92-1.10x oldest first; bench/README.md).
 *
 * So a watcher callback does not act on readiness itself: it pushes its item
 * here (tnl_readyq_push), and the queue, from a watcher at libev's lowest
 * priority that runs after every other callback of the same loop turn, runs
 * the items in the order the kernel reported them. An item that is pushed
 * again before it runs keeps its place and gathers the events; an item must
 * be removed (tnl_readyq_remove) before its owner frees it. A socket just
 * accepted is presumed readable (tnl_readyq_presume): it goes behind what
 * the poll reported and is read in the same turn, as haproxy reads a new
 * connection before polling it.
 */
#ifndef TNL_READYQ_H
#define TNL_READYQ_H

#include <stddef.h>

struct tnl_readyq_item;
typedef void (*tnl_readyq_fn)(struct tnl_readyq_item *it, int events);

struct tnl_readyq_item {
    tnl_readyq_fn run;
    int events;                         /* gathered, not yet run */
    struct tnl_readyq_item *next, **pprev;  /* pprev NULL: not queued */
};

static inline void tnl_readyq_init(struct tnl_readyq_item *it, tnl_readyq_fn run)
{
    it->run = run;
    it->events = 0;
    it->next = NULL;
    it->pprev = NULL;
}

/* From a libev callback of the current loop turn: run it with these events
 * (OR-ed with any gathered) after the turn's other callbacks. */
void tnl_readyq_push(struct tnl_readyq_item *it, int events);

/* Queue it as if the poll had reported these events after everything it did
 * report, though it has not (a socket just accepted, whose first bytes have
 * most often arrived with it): it runs at the end of this turn instead of
 * waiting for the next poll, behind every item queued so far, and presumes
 * run in the order made. An item already queued only gathers the events. */
void tnl_readyq_presume(struct tnl_readyq_item *it, int events);

/* Forget it (a no-op when not queued); its gathered events are dropped. */
void tnl_readyq_remove(struct tnl_readyq_item *it);

#endif

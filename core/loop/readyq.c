/*
 * readyq.c — readiness served oldest first (see readyq.h).
 */
#include "loop/readyq.h"

#include <stddef.h>

#include "loop/loop.h"

static struct tnl_readyq_item *head, *tail;
static ev_prepare runner;               /* never started: only fed */

static void run_all(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    while (head) {
        struct tnl_readyq_item *it = head;
        int events = it->events;
        tnl_readyq_remove(it);
        it->run(it, events);
    }
}

/* The queue was empty: have the runner called after this turn's callbacks. */
static void feed(void)
{
    if (!ev_cb(&runner)) {
        ev_prepare_init(&runner, run_all);
        ev_set_priority(&runner, EV_MINPRI);
    }
    ev_feed_event(tnl_ev, &runner, EV_CUSTOM);
}

void tnl_readyq_push(struct tnl_readyq_item *it, int events)
{
    it->events |= events;
    if (it->pprev)
        return;
    if (!head) {
        feed();
        tail = it;
    } else {
        head->pprev = &it->next;
    }
    /* The callbacks of one poll come newest first: each goes to the head, so
     * the head ends up the oldest. */
    it->next = head;
    it->pprev = &head;
    head = it;
}

void tnl_readyq_presume(struct tnl_readyq_item *it, int events)
{
    if (it->pprev || !head) {
        tnl_readyq_push(it, events);
        return;
    }
    it->events = events;
    it->next = NULL;
    it->pprev = &tail->next;
    tail->next = it;
    tail = it;
}

void tnl_readyq_remove(struct tnl_readyq_item *it)
{
    if (!it->pprev)
        return;
    if (it == tail)         /* the one before it, or none (pprev is &head) */
        tail = it->pprev == &head ? NULL :
               (struct tnl_readyq_item *)((char *)it->pprev - offsetof(struct tnl_readyq_item, next));
    *it->pprev = it->next;
    if (it->next)
        it->next->pprev = it->pprev;
    it->next = NULL;
    it->pprev = NULL;
    it->events = 0;
}

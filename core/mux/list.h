/*
 * list.h — intrusive circular doubly-linked lists for the mux (private).
 *
 * A link that is on no list points to itself, so "is it queued?" is one
 * comparison and removal needs no list head: a stream can leave whichever
 * list it is on (pending, waiters, control, accept) from anywhere, including
 * while a dispatch loop is walking another list.
 */
#ifndef TNL_MUX_LIST_H
#define TNL_MUX_LIST_H

#include <stddef.h>

struct mux_link {
    struct mux_link *prev, *next;
};

#define mux_container(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void mux_list_init(struct mux_link *l)
{
    l->prev = l->next = l;
}

static inline int mux_list_empty(const struct mux_link *l)
{
    return l->next == l;
}

/* Also "is this link on no list". */
#define mux_linked(l) (!mux_list_empty(l))

static inline void mux_list_del(struct mux_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

static inline void mux_list_add_tail(struct mux_link *head, struct mux_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

/* Move every element of `from` to the tail of `to`; `from` ends empty. */
static inline void mux_list_splice_tail(struct mux_link *to, struct mux_link *from)
{
    if (mux_list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    mux_list_init(from);
}

#endif

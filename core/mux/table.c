/*
 * table.c — stream id -> stream, a chained hash table that doubles when the
 * number of streams passes the number of buckets (one pointer per stream of
 * overhead at worst, two at best).
 */
#include <errno.h>
#include <stdlib.h>

#include "mux/mux_int.h"

enum { MIN_BUCKETS = 16 };

static unsigned slot(uint32_t id, unsigned nbuckets)
{
    /* Ids go up by two: Fibonacci hashing spreads them over every bucket. */
    return (unsigned)((id * 2654435769u) >> 7) & (nbuckets - 1);
}

struct mux_stream *mux_table_get(const struct tnl_mux *m, uint32_t id)
{
    if (!m->nbuckets)
        return NULL;
    for (struct mux_stream *s = m->buckets[slot(id, m->nbuckets)]; s; s = s->hnext)
        if (s->id == id)
            return s;
    return NULL;
}

static int grow(struct tnl_mux *m)
{
    unsigned n = m->nbuckets ? m->nbuckets * 2 : MIN_BUCKETS;
    struct mux_stream **b = calloc(n, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (unsigned i = 0; i < m->nbuckets; i++) {
        struct mux_stream *s = m->buckets[i];
        while (s) {
            struct mux_stream *next = s->hnext;
            unsigned k = slot(s->id, n);
            s->hnext = b[k];
            b[k] = s;
            s = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int mux_table_put(struct tnl_mux *m, struct mux_stream *s)
{
    if (m->nstreams >= m->nbuckets && grow(m) < 0 && !m->nbuckets)
        return -ENOMEM;         /* a full table still works, only slower */
    unsigned k = slot(s->id, m->nbuckets);
    s->hnext = m->buckets[k];
    m->buckets[k] = s;
    s->in_table = 1;
    m->nstreams++;
    return 0;
}

void mux_table_del(struct tnl_mux *m, struct mux_stream *s)
{
    if (!s->in_table)
        return;
    struct mux_stream **pp = &m->buckets[slot(s->id, m->nbuckets)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    s->hnext = NULL;
    s->in_table = 0;
    m->nstreams--;
}

/* Walk every stream: *cursor starts at 0. The caller may remove the stream it
 * was given (and only that one) before asking for the next. */
struct mux_stream *mux_table_next(const struct tnl_mux *m, unsigned *cursor)
{
    for (; *cursor < m->nbuckets; (*cursor)++)
        if (m->buckets[*cursor])
            return m->buckets[*cursor];
    return NULL;
}

void mux_table_free(struct tnl_mux *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
}

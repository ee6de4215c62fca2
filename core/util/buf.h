/*
 * buf.h — copy buffers for the splice, taken from a small free list.
 *
 * A spliced connection holds a buffer only while bytes are in flight in one of
 * its directions; an idle connection holds none. That keeps idle memory per
 * connection to its structs while a busy one copies in large chunks (large
 * buffers roughly double single-stream throughput over 8 KiB ones).
 */
#ifndef TNL_BUF_H
#define TNL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tnl_buf {
    struct tnl_buf *next;   /* free-list link while pooled */
    size_t off;             /* first unsent byte */
    size_t len;             /* end of valid bytes */
    size_t cap;
    uint8_t data[];
};

/* Size of buffers handed out from now on (default 128 KiB); pooled buffers of
 * another size are dropped. */
void tnl_buf_set_size(size_t size);
size_t tnl_buf_size(void);

/* NULL when out of memory. */
struct tnl_buf *tnl_buf_get(void);
/* A buffer of a given capacity (peek buffers); tnl_buf_put frees it unless its
 * capacity is the pool's. */
struct tnl_buf *tnl_buf_alloc(size_t cap);
void tnl_buf_put(struct tnl_buf *b);

/* Free every pooled buffer (shutdown, tests). */
void tnl_buf_pool_drain(void);

static inline size_t tnl_buf_pending(const struct tnl_buf *b)
{
    return b->len - b->off;
}

#endif

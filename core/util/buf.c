/*
 * buf.c — the copy-buffer free list (see buf.h).
 */
#include "util/buf.h"

#include <stdlib.h>

enum { POOL_MAX = 32 };

static size_t buf_size = 128 * 1024;
static struct tnl_buf *pool;
static unsigned pooled;

void tnl_buf_set_size(size_t size)
{
    if (size < 4096)
        size = 4096;
    buf_size = size;
}

size_t tnl_buf_size(void)
{
    return buf_size;
}

struct tnl_buf *tnl_buf_get(void)
{
    struct tnl_buf *b = pool;
    if (b) {
        pool = b->next;
        pooled--;
    } else {
        b = malloc(sizeof *b + buf_size);
        if (!b)
            return NULL;
        b->cap = buf_size;
    }
    b->next = NULL;
    b->off = b->len = 0;
    return b;
}

struct tnl_buf *tnl_buf_alloc(size_t cap)
{
    struct tnl_buf *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->next = NULL;
    b->cap = cap;
    b->off = b->len = 0;
    return b;
}

void tnl_buf_put(struct tnl_buf *b)
{
    if (!b)
        return;
    if (pooled >= POOL_MAX || b->cap != buf_size) {
        free(b);
        return;
    }
    b->next = pool;
    pool = b;
    pooled++;
}

void tnl_buf_pool_drain(void)
{
    while (pool) {
        struct tnl_buf *b = pool;
        pool = b->next;
        free(b);
    }
    pooled = 0;
}

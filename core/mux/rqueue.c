/*
 * rqueue.c — a stream's received, unread bytes and its receive window.
 *
 * Payload is first "borrowed": left where it is in the session's read buffer,
 * with a slice recorded in m->borrow. The session then tells the owners, who
 * usually read it right there (one copy, read buffer -> owner). Whatever is
 * still unread when the session wants its read buffer back is copied into
 * chunks allocated for the purpose and freed as they are read, so an idle
 * stream holds no receive memory at all. Order: chunks (older) before slices.
 *
 * Window: the peer may send rcredit more bytes; rcredit + rqueued + the part
 * of the Data frame being received that has not arrived yet (its whole length
 * left rcredit when its header was parsed) <= rwin. Once the owner has
 * consumed half a window we send a WindowUpdate for what it consumed, which
 * excludes that part still to come: counted as consumed, it overcommitted the
 * window, and once it arrived a partial read wrapped the unsigned arithmetic
 * into a WindowUpdate of ~4 GiB. Auto-tuning: if that half window was consumed within four
 * round trips of the previous update, the reader keeps up and the window is
 * what limits the stream, so rwin doubles (up to cfg.max_window).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mux/mux_int.h"

/* Full-size chunks are kept for reuse (up to MUX_CHUNK_POOL, process-wide):
 * a bulk stream whose reader falls behind copies megabytes into chunks and
 * frees them as it catches up, and through malloc each such burst grew and
 * trimmed the heap again, a page fault per 4 KiB (measured: a fault for
 * every ~60 KiB the agent forwarded). Smaller chunks go back to malloc. */
static struct mux_chunk *chunk_pool;
static unsigned chunk_pooled;

static struct mux_chunk *chunk_new(uint32_t cap)
{
    struct mux_chunk *c = chunk_pool;
    if (cap == MUX_CHUNK_MAX && c) {
        chunk_pool = c->next;
        chunk_pooled--;
    } else if (!(c = malloc(sizeof *c + cap))) {
        return NULL;
    }
    c->next = NULL;
    c->off = c->len = 0;
    c->cap = cap;
    return c;
}

static void chunk_free(struct mux_chunk *c)
{
    if (c->cap != MUX_CHUNK_MAX || chunk_pooled >= MUX_CHUNK_POOL) {
        free(c);
        return;
    }
    c->next = chunk_pool;
    chunk_pool = c;
    chunk_pooled++;
}

void tnl_mux_pool_drain(void)
{
    while (chunk_pool) {
        struct mux_chunk *c = chunk_pool;
        chunk_pool = c->next;
        free(c);
    }
    chunk_pooled = 0;
}

/* Append a copy of p[0..n) to the chunks. */
static int chunk_copy(struct mux_stream *s, const uint8_t *p, uint32_t n)
{
    struct mux_chunk *t = s->rq_tail;
    if (t && t->cap > t->len) {
        uint32_t k = t->cap - t->len < n ? t->cap - t->len : n;
        memcpy(t->data + t->len, p, k);
        t->len += k;
        p += k;
        n -= k;
    }
    if (!n)
        return 0;
    /* Chunks grow with the backlog: a few bytes cost 1 KiB, a stream far
     * behind its reader gets 64 KiB chunks. */
    uint32_t cap = s->rqueued < MUX_CHUNK_MIN ? MUX_CHUNK_MIN
                 : s->rqueued > MUX_CHUNK_MAX ? MUX_CHUNK_MAX : s->rqueued;
    if (cap < n)
        cap = n;
    struct mux_chunk *c = chunk_new(cap);
    if (!c)
        return -ENOMEM;
    c->len = n;
    memcpy(c->data, p, n);
    if (t)
        t->next = c;
    else
        s->rq_head = c;
    s->rq_tail = c;
    return 0;
}

/* Copy this stream's borrowed slices into chunks (keeps the order when the
 * slice table is full). */
static int materialize_stream(struct mux_stream *s)
{
    struct tnl_mux *m = s->m;
    int rc = 0;
    for (int i = s->b_head; i >= 0; i = m->borrow[i].next) {
        struct mux_borrow *b = &m->borrow[i];
        if (rc == 0 && b->len)
            rc = chunk_copy(s, b->p, b->len);
        b->s = NULL;
        b->len = 0;
    }
    s->b_head = s->b_tail = -1;
    return rc;
}

int mux_rq_push(struct mux_stream *s, const uint8_t *p, uint32_t n)
{
    struct tnl_mux *m = s->m;
    if (!n)
        return 0;
    s->rqueued += n;
    if (m->nborrow < MUX_BORROW_MAX) {
        int i = m->nborrow++;
        m->borrow[i] = (struct mux_borrow){ .s = s, .p = p, .len = n, .next = -1 };
        if (s->b_tail >= 0)
            m->borrow[s->b_tail].next = i;
        else
            s->b_head = i;
        s->b_tail = i;
        return 0;
    }
    int rc = materialize_stream(s);
    return rc ? rc : chunk_copy(s, p, n);
}

/* The read buffer is about to be reused: copy every slice still unread. */
int mux_rq_materialize(struct tnl_mux *m)
{
    int rc = 0;
    for (int i = 0; i < m->nborrow; i++) {
        struct mux_borrow *b = &m->borrow[i];
        if (b->s) {
            if (rc == 0 && b->len)
                rc = chunk_copy(b->s, b->p, b->len);
            b->s->b_head = b->s->b_tail = -1;
        }
    }
    m->nborrow = 0;
    return rc;
}

/* Up to *n runs of unread bytes, in place, in order (chunks, then borrowed
 * slices), at most `cap` bytes in all; *n is set to how many. The total. */
size_t mux_rq_peek(const struct mux_stream *s, struct iovec *iov, int *n, size_t cap)
{
    const struct tnl_mux *m = s->m;
    size_t total = 0;
    int k = 0;
    for (const struct mux_chunk *c = s->rq_head; c && k < *n && total < cap; c = c->next) {
        size_t len = c->len - c->off < cap - total ? c->len - c->off : cap - total;
        iov[k++] = (struct iovec){ .iov_base = (void *)(c->data + c->off), .iov_len = len };
        total += len;
    }
    for (int i = s->b_head; i >= 0 && k < *n && total < cap; i = m->borrow[i].next) {
        const struct mux_borrow *b = &m->borrow[i];
        size_t len = b->len < cap - total ? b->len : cap - total;
        iov[k++] = (struct iovec){ .iov_base = (void *)b->p, .iov_len = len };
        total += len;
    }
    *n = k;
    return total;
}

/* Take up to n unread bytes, copied to out (NULL: dropped, after a peek). */
size_t mux_rq_read(struct mux_stream *s, uint8_t *out, size_t n)
{
    struct tnl_mux *m = s->m;
    size_t got = 0;
    while (got < n && s->rq_head) {
        struct mux_chunk *c = s->rq_head;
        size_t k = c->len - c->off < n - got ? c->len - c->off : n - got;
        if (out)
            memcpy(out + got, c->data + c->off, k);
        c->off += (uint32_t)k;
        got += k;
        if (c->off == c->len) {
            s->rq_head = c->next;
            if (!s->rq_head)
                s->rq_tail = NULL;
            chunk_free(c);
        }
    }
    while (got < n && s->b_head >= 0) {
        struct mux_borrow *b = &m->borrow[s->b_head];
        size_t k = b->len < n - got ? b->len : n - got;
        if (out)
            memcpy(out + got, b->p, k);
        b->p += k;
        b->len -= (uint32_t)k;
        got += k;
        if (!b->len) {
            b->s = NULL;
            s->b_head = b->next;
            if (s->b_head < 0)
                s->b_tail = -1;
        }
    }
    s->rqueued -= (uint32_t)got;
    return got;
}

void mux_rq_clear(struct mux_stream *s)
{
    struct tnl_mux *m = s->m;
    while (s->rq_head) {
        struct mux_chunk *c = s->rq_head;
        s->rq_head = c->next;
        chunk_free(c);
    }
    s->rq_tail = NULL;
    for (int i = s->b_head; i >= 0; i = m->borrow[i].next) {
        m->borrow[i].s = NULL;
        m->borrow[i].len = 0;
    }
    s->b_head = s->b_tail = -1;
    s->rqueued = 0;
}

/* The owner read something: give the peer its window back once half of it
 * was consumed, growing it if the reader keeps up. */
void mux_rq_consumed(struct mux_stream *s)
{
    struct tnl_mux *m = s->m;
    if (s->fin_recv || s->rerr || !s->in_table || m->ending)
        return;
    uint32_t coming = m->in_s == s ? m->in_left : 0;
    uint32_t consumed = s->rwin - s->rcredit - s->rqueued - coming;
    if (consumed < s->rwin / 2)
        return;
    double now = tnl_now();
    double rtt = m->st.rtt > MUX_RTT_FLOOR ? m->st.rtt : MUX_RTT_FLOOR;
    if (s->rwin < m->cfg.max_window && now - s->epoch < 4 * rtt) {
        uint64_t w = (uint64_t)s->rwin * 2;
        s->rwin = w > m->cfg.max_window ? m->cfg.max_window : (uint32_t)w;
    }
    s->epoch = now;
    uint32_t delta = s->rwin - s->rcredit - s->rqueued - coming;
    if (mux_out_frame(m, TNL_MUX_WINDOW_UPDATE, mux_take_open_flags(s), s->id, delta) == 0) {
        s->rcredit += delta;
        m->st.window_updates_out++;
    }
}

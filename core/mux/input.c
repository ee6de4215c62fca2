/*
 * input.c — read the transport, split it into frames, act on each.
 *
 * A Data payload is delivered as it arrives (a frame may span many reads, up
 * to the stream's window): it never has to fit in the read buffer. After each
 * read the owners are told (mux_dispatch) while the payload still sits in the
 * read buffer, then what they left unread is copied out (rqueue.c).
 *
 * Stream ids: a frame without SYN for an id that is not live is ignored when
 * the id was used before (a stream we reset or that finished: frames in flight
 * are normal) and is a protocol error when it never was. "Used before" needs
 * no per-stream memory: ids only grow, so it is "at or below the highest id
 * the peer opened" for the peer's ids and "below our next id" for ours.
 */
#include <errno.h>
#include <string.h>

#include "mux/mux_int.h"
#include "util/log.h"

void mux_protocol_error(struct tnl_mux *m, const char *why, const struct tnl_mux_frame *f)
{
    struct tnl_log l;
    if (m->ending)
        return;
    m->st.protocol_errors++;
    if (tnl_log_begin(&l, TNL_LOG_WARN, "mux_protocol_error")) {
        tnl_log_str(&l, "why", why);
        if (f) {
            tnl_log_uint(&l, "version", f->version);
            tnl_log_str(&l, "type", tnl_mux_type_name(f->type));
            tnl_log_uint(&l, "type_code", f->type);
            tnl_log_uint(&l, "flags", f->flags);
            tnl_log_uint(&l, "stream", f->stream_id);
            tnl_log_uint(&l, "length", f->length);
        }
        tnl_log_str(&l, "role", m->cfg.client ? "client" : "server");
        tnl_log_end(&l);
    }
    m->local_goaway = 1;
    mux_out_frame(m, TNL_MUX_GO_AWAY, 0, 0, TNL_MUX_GOAWAY_PROTOCOL);
    mux_end(m, -EPROTO, why, 1);
}

static int peer_parity(const struct tnl_mux *m, uint32_t id)
{
    return (id & 1) != (m->cfg.client ? 1u : 0u);
}

static int id_used(const struct tnl_mux *m, uint32_t id)
{
    return peer_parity(m, id) ? id <= m->max_peer_id : id < m->next_id || m->ids_exhausted;
}

static void discard(struct tnl_mux *m, uint32_t len)
{
    m->in_s = NULL;
    m->in_left = len;
    m->in_fin = 0;
}

/* The current Data frame's payload is complete: its FIN applies now. */
static void data_done(struct tnl_mux *m)
{
    struct mux_stream *s = m->in_s;
    m->in_s = NULL;
    if (m->in_fin && s)
        mux_stream_peer_fin(s);
    m->in_fin = 0;
}

static void deliver(struct tnl_mux *m, const uint8_t *p, uint32_t n)
{
    struct mux_stream *s = m->in_s;
    if (!s)
        return;
    m->st.data_in += n;
    if (mux_rq_push(s, p, n) < 0) {
        mux_end(m, -ENOMEM, "out of memory", 0);
        return;
    }
    mux_pending_add(s);
}

/* A SYN: a new stream, or NULL when it was refused with RST. */
static struct mux_stream *open_inbound(struct tnl_mux *m, uint32_t id)
{
    const char *refuse = NULL;
    struct mux_stream *s = NULL;
    if (id > m->max_peer_id)
        m->max_peer_id = id;
    if (m->nbacklog >= m->cfg.max_backlog && !mux_list_empty(&m->accept) && m->cbs.on_stream) {
        /* A burst of SYNs in one read: hand the streams queued so far to the
         * owner (and send the ACKs of those it takes up) before refusing any.
         * The read buffer is not touched meanwhile, so parsing goes on. */
        mux_accept_streams(m);
        mux_emit_ctl(m);
        if (m->ending)
            return NULL;
    }
    if (m->local_goaway)
        refuse = "GoAway sent";
    else if (!m->cbs.on_stream)
        refuse = "no stream handler";
    else if (m->nstreams >= m->cfg.max_streams)
        refuse = "max_streams reached";
    else if (m->nbacklog >= m->cfg.max_backlog)
        refuse = "backlog full";
    else if (!(s = mux_stream_new(m, id, 1)))
        refuse = "out of memory";
    if (refuse) {
        m->st.streams_rejected++;
        tnl_logf(TNL_LOG_DEBUG, "mux_stream_refused", "stream %u refused: %s", id, refuse);
        mux_out_frame(m, TNL_MUX_WINDOW_UPDATE, TNL_MUX_RST, id, 0);
        return NULL;
    }
    mux_list_add_tail(&m->accept, &s->ctl);
    return s;
}

/* Where a stream frame goes: the stream, NULL to ignore it (its payload is
 * discarded), or a protocol error (*why set). */
static struct mux_stream *target(struct tnl_mux *m, const struct tnl_mux_frame *f,
                                 const char **why)
{
    struct mux_stream *s = mux_table_get(m, f->stream_id);
    if (f->flags & TNL_MUX_SYN) {
        if (s)
            *why = "SYN on a stream that is already open";
        else if (!peer_parity(m, f->stream_id))
            *why = "SYN with our stream id parity";
        else
            return open_inbound(m, f->stream_id);
        return NULL;
    }
    if (!s && !id_used(m, f->stream_id))
        *why = "frame for a stream that was never opened";
    return s;
}

static void stream_frame(struct tnl_mux *m, const struct tnl_mux_frame *f)
{
    const char *why = NULL;
    uint32_t dlen = f->type == TNL_MUX_DATA ? f->length : 0;
    struct mux_stream *s = target(m, f, &why);
    if (!why && s && (f->flags & TNL_MUX_RST)) {
        mux_stream_peer_reset(s);
        s = NULL;
    } else if (!why && s && f->type == TNL_MUX_WINDOW_UPDATE) {
        mux_stream_window(s, f->length);
        if (f->flags & TNL_MUX_FIN)
            mux_stream_peer_fin(s);
        return;
    } else if (!why && s) {
        if (dlen && s->fin_recv)
            why = "data after FIN";
        else if (dlen > s->rcredit)
            why = "data beyond the receive window";
    }
    if (why) {
        mux_protocol_error(m, why, f);
        return;
    }
    if (s) {
        s->rcredit -= dlen;
        if (s->closed && dlen) {
            /* Nobody will read it: tell the peer, as TCP does. */
            mux_out_frame(m, TNL_MUX_WINDOW_UPDATE, TNL_MUX_RST, s->id, 0);
            mux_stream_forget(s);
            s = NULL;
        }
    }
    if (!s) {
        discard(m, dlen);
        return;
    }
    m->in_s = s;
    m->in_left = dlen;
    m->in_fin = (f->flags & TNL_MUX_FIN) ? 1 : 0;
    if (!dlen)
        data_done(m);
}

static void goaway_frame(struct tnl_mux *m, uint32_t code)
{
    m->remote_goaway = 1;
    if (code == TNL_MUX_GOAWAY_NORMAL) {
        mux_schedule(m);        /* the session ends when the last stream does */
        return;
    }
    mux_end(m, -ECONNABORTED,
            code == TNL_MUX_GOAWAY_PROTOCOL ? "peer sent GoAway(protocol error)"
            : code == TNL_MUX_GOAWAY_INTERNAL ? "peer sent GoAway(internal error)"
            : "peer sent GoAway(unknown code)", 1);
}

static void frame(struct tnl_mux *m, const struct tnl_mux_frame *f)
{
    switch (f->type) {
    case TNL_MUX_PING:
        if (f->flags == TNL_MUX_SYN)
            mux_out_frame(m, TNL_MUX_PING, TNL_MUX_ACK, 0, f->length);
        else
            mux_ping_ack(m, f->length);
        return;
    case TNL_MUX_GO_AWAY:
        goaway_frame(m, f->length);
        return;
    default:
        stream_frame(m, f);
    }
}

static void parse(struct tnl_mux *m)
{
    struct tnl_buf *b = m->rbuf;
    while (!m->ending) {
        size_t avail = b->len - b->off;
        if (m->in_left) {
            if (!avail)
                break;
            uint32_t n = avail < m->in_left ? (uint32_t)avail : m->in_left;
            deliver(m, b->data + b->off, n);
            b->off += n;
            m->in_left -= n;
            if (!m->in_left)
                data_done(m);
            continue;
        }
        struct tnl_mux_frame f;
        const char *err = NULL;
        enum tnl_mux_frame_status st = tnl_mux_frame_decode(b->data + b->off, avail,
                                                             m->cfg.max_window, &f, &err);
        if (st == TNL_MUX_FRAME_NEED_MORE)
            break;
        if (st != TNL_MUX_FRAME_OK) {
            mux_protocol_error(m, err, &f);
            break;
        }
        b->off += TNL_MUX_HDR_LEN;
        m->st.frames_in++;
        frame(m, &f);
    }
}

/* Keep only the unparsed tail (< 12 bytes: payload is never kept here). */
static void compact(struct tnl_buf *b)
{
    size_t rest = b->len - b->off;
    if (rest && b->off)
        memmove(b->data, b->data + b->off, rest);
    b->off = 0;
    b->len = rest;
}

/* Ending, still flushing: read and drop, so that a peer blocked on writing to
 * us can read what we flush. */
static void drain_input(struct tnl_mux *m)
{
    uint8_t sink[4096];
    for (int i = 0; i < 16 && m->transport && !m->rx_eof; i++) {
        ssize_t r = tnl_io_read(m->transport, sink, sizeof sink);
        if (r == -EAGAIN)
            return;
        if (r <= 0)
            m->rx_eof = 1;
    }
}

void mux_read_rounds(struct tnl_mux *m)
{
    if (m->ending) {
        drain_input(m);
        return;
    }
    for (int round = 0; round < MUX_READ_ROUNDS && m->transport && !m->ending; round++) {
        if (!m->rbuf && !(m->rbuf = tnl_buf_get())) {
            mux_end(m, -ENOMEM, "out of memory", 0);
            break;
        }
        struct tnl_buf *b = m->rbuf;
        size_t space = b->cap - b->len;
        ssize_t r = tnl_io_read(m->transport, b->data + b->len, space);
        if (r == -EAGAIN)
            break;
        if (r <= 0) {
            m->rx_eof = 1;
            if (r < 0)
                mux_end_transport(m, (int)r, "transport read failed", 0);
            else
                mux_end(m, m->nstreams ? -ECONNRESET : 0, "transport closed by the peer", 1);
            break;
        }
        b->len += (size_t)r;
        m->st.bytes_in += (unsigned long long)r;
        parse(m);
        mux_dispatch(m);        /* owners read the payload in place */
        if (mux_rq_materialize(m) < 0)
            mux_end(m, -ENOMEM, "out of memory", 0);
        compact(b);
        if ((size_t)r < space || m->out_bytes > MUX_OUT_HARD)
            break;
    }
    if (m->rbuf && (m->rbuf->len == 0 || m->ending)) {
        tnl_buf_put(m->rbuf);
        m->rbuf = NULL;
    }
}

/*
 * frame.c — yamux header codec (see frame.h).
 */
#include "mux/frame.h"

static const char *const status_str[TNL_MUX_FRAME_STATUS_COUNT] = {
    [TNL_MUX_FRAME_OK] = "ok",
    [TNL_MUX_FRAME_NEED_MORE] = "incomplete header",
    [TNL_MUX_FRAME_BAD_VERSION] = "bad version (only 0 exists)",
    [TNL_MUX_FRAME_BAD_TYPE] = "unknown frame type",
    [TNL_MUX_FRAME_BAD_FLAGS] = "unknown flag bits",
    [TNL_MUX_FRAME_SESSION_ON_STREAM] = "Ping or GoAway on a non-zero stream id",
    [TNL_MUX_FRAME_STREAM_ON_SESSION] = "Data or WindowUpdate on stream 0",
    [TNL_MUX_FRAME_PING_FLAGS] = "Ping without exactly one of SYN or ACK",
    [TNL_MUX_FRAME_TOO_LONG] = "Data frame longer than the largest window",
};

const char *tnl_mux_frame_status_str(enum tnl_mux_frame_status st)
{
    return (unsigned)st < TNL_MUX_FRAME_STATUS_COUNT ? status_str[st] : "?";
}

const char *tnl_mux_type_name(unsigned type)
{
    static const char *const names[] = { "Data", "WindowUpdate", "Ping", "GoAway" };
    return type < 4 ? names[type] : "unknown";
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static enum tnl_mux_frame_status classify(const struct tnl_mux_frame *f, uint32_t max_data)
{
    if (f->version != TNL_MUX_VERSION)
        return TNL_MUX_FRAME_BAD_VERSION;
    if (f->type > TNL_MUX_GO_AWAY)
        return TNL_MUX_FRAME_BAD_TYPE;
    if (f->flags & ~TNL_MUX_FLAGS_KNOWN)
        return TNL_MUX_FRAME_BAD_FLAGS;
    switch (f->type) {
    case TNL_MUX_PING:
        if (f->stream_id != 0)
            return TNL_MUX_FRAME_SESSION_ON_STREAM;
        if (f->flags != TNL_MUX_SYN && f->flags != TNL_MUX_ACK)
            return TNL_MUX_FRAME_PING_FLAGS;
        return TNL_MUX_FRAME_OK;
    case TNL_MUX_GO_AWAY:
        /* Flags on a GoAway mean nothing; peers that set some are tolerated. */
        return f->stream_id != 0 ? TNL_MUX_FRAME_SESSION_ON_STREAM : TNL_MUX_FRAME_OK;
    case TNL_MUX_DATA:
        if (f->stream_id == 0)
            return TNL_MUX_FRAME_STREAM_ON_SESSION;
        return f->length > max_data ? TNL_MUX_FRAME_TOO_LONG : TNL_MUX_FRAME_OK;
    default:    /* WindowUpdate: any delta; the session saturates the window */
        return f->stream_id == 0 ? TNL_MUX_FRAME_STREAM_ON_SESSION : TNL_MUX_FRAME_OK;
    }
}

enum tnl_mux_frame_status tnl_mux_frame_decode(const uint8_t *p, size_t n, uint32_t max_data,
                                               struct tnl_mux_frame *f, const char **err)
{
    enum tnl_mux_frame_status st;
    if (n < TNL_MUX_HDR_LEN) {
        st = TNL_MUX_FRAME_NEED_MORE;
    } else {
        f->version = p[0];
        f->type = p[1];
        f->flags = (uint16_t)(p[2] << 8 | p[3]);
        f->stream_id = get32(p + 4);
        f->length = get32(p + 8);
        st = classify(f, max_data);
    }
    if (st != TNL_MUX_FRAME_OK && err)
        *err = status_str[st];
    return st;
}

void tnl_mux_frame_encode(uint8_t out[TNL_MUX_HDR_LEN], enum tnl_mux_type type, uint16_t flags,
                          uint32_t stream_id, uint32_t length)
{
    out[0] = TNL_MUX_VERSION;
    out[1] = (uint8_t)type;
    out[2] = (uint8_t)(flags >> 8);
    out[3] = (uint8_t)flags;
    put32(out + 4, stream_id);
    put32(out + 8, length);
}

/*
 * frame.h — the yamux frame header (shared/vectors/yamux-spec.md).
 *
 * Glossary
 *   header   12 bytes, big endian: version u8 (always 0) | type u8 | flags u16 |
 *            stream id u32 | length u32. A Data frame's payload (length bytes)
 *            follows its header; the other types have none.
 *   length   Data: payload size. WindowUpdate: window delta. Ping: an opaque
 *            value echoed back. GoAway: an error code.
 *   stream 0 the session: only Ping and GoAway use it, and only they may.
 *
 * tnl_mux_frame_decode validates one header and classifies what is wrong with a
 * malformed one; the session turns every class into GoAway(protocol error).
 */
#ifndef TNL_MUX_FRAME_H
#define TNL_MUX_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    TNL_MUX_HDR_LEN = 12,
    TNL_MUX_VERSION = 0,
    TNL_MUX_INITIAL_WINDOW = 256 * 1024,     /* every stream starts here, both ways */
};

enum tnl_mux_type {
    TNL_MUX_DATA = 0,
    TNL_MUX_WINDOW_UPDATE = 1,
    TNL_MUX_PING = 2,
    TNL_MUX_GO_AWAY = 3,
};

enum {
    TNL_MUX_SYN = 0x1,
    TNL_MUX_ACK = 0x2,
    TNL_MUX_FIN = 0x4,
    TNL_MUX_RST = 0x8,
    TNL_MUX_FLAGS_KNOWN = 0xf,
};

enum tnl_mux_goaway_code {
    TNL_MUX_GOAWAY_NORMAL = 0,
    TNL_MUX_GOAWAY_PROTOCOL = 1,
    TNL_MUX_GOAWAY_INTERNAL = 2,
};

struct tnl_mux_frame {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint32_t stream_id;
    uint32_t length;
};

/* What tnl_mux_frame_decode found. OK and NEED_MORE are not errors. */
enum tnl_mux_frame_status {
    TNL_MUX_FRAME_OK = 0,
    TNL_MUX_FRAME_NEED_MORE,        /* fewer than 12 bytes */
    TNL_MUX_FRAME_BAD_VERSION,      /* version byte is not 0 */
    TNL_MUX_FRAME_BAD_TYPE,         /* type is not 0..3 */
    TNL_MUX_FRAME_BAD_FLAGS,        /* a flag bit above RST (0x8) is set */
    TNL_MUX_FRAME_SESSION_ON_STREAM,/* Ping or GoAway on a stream id other than 0 */
    TNL_MUX_FRAME_STREAM_ON_SESSION,/* Data or WindowUpdate on stream id 0 */
    TNL_MUX_FRAME_PING_FLAGS,       /* Ping without exactly one of SYN or ACK */
    TNL_MUX_FRAME_TOO_LONG,         /* Data payload longer than max_data */
    TNL_MUX_FRAME_STATUS_COUNT
};

/*
 * Decode and validate the header at p (n bytes available). max_data bounds a
 * Data frame's payload (the session passes the largest window it would ever
 * advertise: anything longer is beyond the window whatever happens).
 * The fields are filled whenever n >= 12, also for a malformed frame (for the
 * log line); *err gets a static message for every status other than OK.
 */
enum tnl_mux_frame_status tnl_mux_frame_decode(const uint8_t *p, size_t n, uint32_t max_data,
                                               struct tnl_mux_frame *f, const char **err);

/* Write a 12-byte header. */
void tnl_mux_frame_encode(uint8_t out[TNL_MUX_HDR_LEN], enum tnl_mux_type type, uint16_t flags,
                          uint32_t stream_id, uint32_t length);

/* "Data", "WindowUpdate", "Ping", "GoAway", or "unknown". */
const char *tnl_mux_type_name(unsigned type);

/* A static description of a decode status. */
const char *tnl_mux_frame_status_str(enum tnl_mux_frame_status st);

#endif

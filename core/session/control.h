/*
 * control.h — the control channel: newline-delimited JSON-RPC 2.0 messages
 * over one stream of a session (the first stream the agent opens).
 *
 * This file only frames: it cuts the stream into lines (each at most
 * TNL_CONTROL_LINE_MAX bytes) and hands each to on_line; it queues outgoing
 * lines (at most TNL_CONTROL_QUEUE_MAX bytes waiting: a peer that does not
 * read its control channel is cut off). JSON and the methods live in Lua
 * (lua/tunnel/rpc.lua).
 */
#ifndef TNL_CONTROL_H
#define TNL_CONTROL_H

#include <stddef.h>

#include "net/io.h"

enum {
    TNL_CONTROL_LINE_MAX = 64 * 1024,
    TNL_CONTROL_QUEUE_MAX = 1024 * 1024,
};

struct tnl_control;

struct tnl_control_cbs {
    void (*on_line)(struct tnl_control *c, const char *line, size_t len, void *arg);
    /* The channel ended (peer FIN, error, or a limit broken); why is static.
     * The owner frees the channel (it may do so in here). */
    void (*on_end)(struct tnl_control *c, int err, const char *why, void *arg);
};

/* Takes ownership of io. NULL if out of memory (io closed). */
struct tnl_control *tnl_control_new(struct tnl_io *io, const struct tnl_control_cbs *cbs, void *arg);
/* Queue one message; a newline is added. 0, or -EMSGSIZE / -ENOBUFS / -EPIPE. */
int tnl_control_send(struct tnl_control *c, const char *line, size_t len);
/* Finish: FIN after the queued lines are written. */
void tnl_control_shutdown(struct tnl_control *c);
void tnl_control_free(struct tnl_control *c);

#endif

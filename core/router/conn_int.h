/*
 * conn_int.h — what conn.c shares with move.c, which moves a spliced
 * connection from one process of `tunnel run --workers` to another.
 * Nothing outside core/router/ uses these.
 */
#ifndef TNL_CONN_INT_H
#define TNL_CONN_INT_H

#include "router/conn.h"

/* A connection on entry cfg with its client io (the connection owns it
 * from here): referenced, linked into tnl_conns, counted as work for the
 * drain. The caller fills src/dst and the state. NULL when out of memory
 * (client then untouched). */
struct tnl_conn *tnl_conn_new(struct tnl_entry_cfg *cfg, struct tnl_io *client);
/* src_str and dst_str from src and dst. */
void tnl_conn_format_addrs(struct tnl_conn *c);
/* Start splicing the client with up (the connection owns it), after what
 * is left in the peek buffer (none: NULL); or, with carry, resume a splice
 * moved from another process (splice.h). State SPLICE, idle timer set. */
void tnl_conn_splice(struct tnl_conn *c, struct tnl_io *up, const struct tnl_splice_pipe *carry);
/* The exit without the close log: bytes counted in tnl_metrics, timers
 * stopped, ios closed (those not set to NULL first), unlinked, freed. */
void tnl_conn_release(struct tnl_conn *c, int abort);
/* Bytes the client sent that went upstream (our PROXY header not counted). */
uint64_t tnl_conn_client_bytes(const struct tnl_conn *c);

#endif

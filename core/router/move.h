/*
 * move.h — hand a spliced connection to another process of the same router
 * (tunnel run --workers, cli/pack.h): its two sockets travel over a unix
 * socket (SCM_RIGHTS) with what the receiving process needs to go on
 * splicing and, at the end, to log the close as if it had never moved.
 *
 * Only what is in the kernel may be in flight: a connection moves when
 * both its ends are plain sockets (a router's client and upstream; not an
 * agent's stream, TLS or shaped), it is splicing, neither direction has
 * ended, and no copy buffer holds a byte. A zero-copy direction's pipe goes
 * along with what it holds (a bulk transfer's pipe is seldom empty: the
 * receiver is what limits it). Whatever the sockets and pipes hold is the
 * receiver's to move on.
 *
 * Glossary: "bulk" — a direction whose read once filled a whole copy buffer
 * (splice.h) and that moved a byte within the last moment; request-response
 * traffic never fills one.
 */
#ifndef TNL_MOVE_H
#define TNL_MOVE_H

#include <stdint.h>
#include <sys/socket.h>

#include "lua/ctx.h"
#include "router/conn.h"
#include "router/entry.h"
#include "util/addr.h"

struct tnl_conn_move {
    char listener[TNL_NAME_MAX];        /* the entry, found again by name and */
    struct sockaddr_storage bind;       /* bind address in the receiving process */
    socklen_t bindlen;
    struct sockaddr_storage src, dst;
    struct tnl_hostport upstream;
    char proto[TNL_SNIFFER_NAME_MAX];
    uint64_t id;                        /* its number in the process it left (logs) */
    uint64_t bytes_in, bytes_out;       /* moved so far, for the close log */
    double age;                         /* seconds since it was accepted */
    int piped[2];                       /* per direction (a->b, b->a): 1 if its */
    uint64_t pipe_cap[2], pipe_held[2]; /* pipe goes along, its size, its bytes */
};

/* Descriptors sent with it: client, upstream, then each pipe's two ends. */
enum { TNL_MOVE_FDS_MAX = 6 };

/* Carrying bulk (above): a whole buffer was read once, and a byte moved in
 * the last `recent` seconds. */
int tnl_conn_bulk(const struct tnl_conn *c, double recent);
/* It may move now (above). */
int tnl_conn_movable(const struct tnl_conn *c);
/* Describe a movable c in *m and list the descriptors to send with it
 * (returns how many, at most TNL_MOVE_FDS_MAX); they are still c's until
 * tnl_conn_moved. c is untouched: if sending fails, it goes on here. */
int tnl_conn_move_out(const struct tnl_conn *c, struct tnl_conn_move *m, int fds[TNL_MOVE_FDS_MAX]);
/* How many descriptors a description says come with it. */
int tnl_conn_move_fds(const struct tnl_conn_move *m);
/* They were sent to worker `to`: let go of them here (the receiver holds
 * them; nothing is shut down), log "move", free c. */
void tnl_conn_moved(struct tnl_conn *c, int to);
/* In the receiving process: go on splicing what worker `from` sent, on
 * entry cfg. Takes the n descriptors (closed if it fails: the connection is
 * then lost, and logged). 0, or -EINVAL (a malformed description), -ENOMEM. */
int tnl_conn_adopt(struct tnl_entry_cfg *cfg, const struct tnl_conn_move *m, const int *fds, int n, int from);

#endif

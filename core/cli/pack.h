/*
 * pack.h — tunnel run --workers: new connections go to worker 1 until it is
 * busy, and only then to the others.
 *
 * SO_REUSEPORT spreads connections over the workers by a hash. On a machine
 * whose cores the router shares with its clients and backends, a second
 * process serving half the connections costs more (run-queue waits, smaller
 * batches per wake-up) than it gives: 50 keep-alive connections all on one
 * worker were served faster than split 25/25 or by hash. So a worker other
 * than 1 serves only once worker 1 is busy: the extra workers are overflow,
 * not peers. Where the kernel steers (steer.h), a worker that does not serve
 * is given no connection; elsewhere one that accepts a connection hands it
 * to worker 1 (the descriptor over a unix socket, SCM_RIGHTS).
 *
 * Busy is measured, not guessed: each worker publishes, every PACK_TICK, the
 * fraction of that time its loop spent outside the poll (on a page the
 * parent shares before forking). Worker N (N > 1) starts serving when worker
 * 1 is above PACK_ON and goes back to handing off when the two of them
 * together are below PACK_OFF; it also serves itself while worker 1 has not
 * published for a second (restarting), while it drains, and whenever a
 * handoff cannot be sent. A connection worker 1 cannot take (no listener of
 * that name and address, say in the middle of a reload) is sent back and
 * served where it was accepted: nothing is dropped.
 *
 * Packing suits request-response traffic, not bulk: eight iperf3 streams
 * arrive within a millisecond, all land on worker 1 while it is idle, and
 * then one process carries them all (0.89x haproxy, against 1.17x spread
 * over two). So worker 1, when busy, moves bulk connections that are
 * splicing (router/move.h: the two sockets and the close log's details) to
 * the least busy sibling below PACK_OFF, as many as evens out their bulk
 * counts, which every worker publishes beside its busy fraction; the
 * oldest move first. A moved connection stays where it went;
 * request-response connections never move.
 */
#ifndef TNL_PACK_H
#define TNL_PACK_H

#define PACK_TICK 0.1
#define PACK_ON 0.85
#define PACK_OFF 0.70
/* Bulk is a connection that moved bytes within this long (router/move.h). */
#define BULK_RECENT (2 * PACK_TICK)

/* In the parent, before forking n workers: the shared page and one socket
 * pair per worker after the first. 0, or -1 (then workers share by hash). */
int tnl_pack_setup(int n);

/* In worker index (1..n), once its loop exists: keep only its own ends and
 * start publishing and listening. */
void tnl_pack_start(int index);

#endif

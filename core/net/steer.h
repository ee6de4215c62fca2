/*
 * steer.h — tunnel run --workers: the kernel hands each new connection to
 * the least loaded worker that serves, so that none is handed over later.
 *
 * SO_REUSEPORT alone picks a worker's socket by a hash of the addresses:
 * when one worker falls behind (descheduled, or on a slow upstream), the
 * hash keeps queueing new connections behind it while its sibling may be
 * idle, and under a Connection: close load the latency tail widens (p99
 * 1.08-1.11x the steered one's, rotated A/B sessions, bench/README.md;
 * haproxy's threads, which pick the least loaded thread for each connection
 * they accept, are 1.17x slower at p99 when each has a socket of its own).
 *
 * So each listening socket's reuseport group runs a small BPF program
 * (BPF_PROG_TYPE_SK_REUSEPORT) on every new connection: it reads each
 * worker's load from an array the workers share with the kernel (mmap of a
 * BPF_F_MMAPABLE map), picks the least (ties: the lowest worker), counts the
 * connection against it and selects that worker's socket from a
 * REUSEPORT_SOCKARRAY. A worker's load is what it had open at its last loop
 * turn plus what the kernel gave it since: one that stops running stops
 * publishing, and what it is given piles onto its load, so the next
 * connections go elsewhere. A worker other than 1 that does not serve what
 * it accepts (pack.h: worker 1 is not busy) publishes a load no count
 * reaches, so the kernel gives it nothing and nothing is handed over.
 *
 * It needs CAP_BPF (or root) and Linux 5.5; without them, or if a step
 * fails, the socket is spread by hash and the handoffs of pack.h do the
 * packing, as before. A selection that finds no socket in its slot (a
 * worker restarting, a listener not yet open there) falls back to the hash.
 * TUNNEL_STEER=off turns it off.
 */
#ifndef TNL_STEER_H
#define TNL_STEER_H

#include <sys/socket.h>

/* In the parent, before forking n workers: maps and the shared table.
 * 1 on, 0 off (why is in the buffer). */
int tnl_steer_setup(int n, char *why, size_t cap);

/* In worker me (1..n), for a listening socket just opened on bind: put it in
 * its group's slots and attach the program. 0, or -1 when steering is off or
 * a step failed (logged once per worker): that socket stays on the hash. */
int tnl_steer_listen(int me, int fd, const struct sockaddr_storage *bind, socklen_t bindlen);

/* In worker me, every loop turn: its open connections, or 0 with serving
 * false (a worker that hands everything to worker 1). */
void tnl_steer_publish(int me, unsigned open, int serving);

#endif

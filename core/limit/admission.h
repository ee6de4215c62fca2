/*
 * admission.h — who may start new work, before any is done for them.
 *
 *   per-IP connection bucket   every public connection takes a token from its
 *                              source address's bucket (rate per second, burst);
 *                              an empty bucket closes the connection at once
 *   per-IP handshake bucket    the same for agent sessions and enrollments
 *                              (TLS handshakes cost CPU)
 *   pending sniffs             at most this many public connections still being
 *                              sniffed or routed at once
 *
 * Refusals are counted (tnl_metrics) and logged, at most one line a second
 * per kind with the number suppressed meanwhile. Buckets of idle addresses
 * are forgotten (a full bucket holds no information), so a flood from many
 * addresses costs a bounded table.
 */
#ifndef TNL_ADMISSION_H
#define TNL_ADMISSION_H

#include <sys/socket.h>

#include "util/jsonw.h"

struct tnl_limits {
    double conn_rate, conn_burst;           /* 0: unlimited */
    double handshake_rate, handshake_burst;
    unsigned max_pending_sniffs;            /* 0: unlimited */
};

/* The defaults: connections unlimited (many clients share one address behind
 * NAT), handshakes 20/s with a burst of 100 per address, 10,000 pending
 * sniffs. */
extern const struct tnl_limits tnl_limits_default;

/* Replace the limits (reload); buckets start over. */
void tnl_admission_configure(const struct tnl_limits *l);
const struct tnl_limits *tnl_admission_limits(void);

/* 1: admit; 0: refused (counted and logged). */
int tnl_admit_conn(const struct sockaddr *peer, unsigned pending_sniffs);
int tnl_admit_handshake(const struct sockaddr *peer, const char *what);

void tnl_admission_status(struct tnl_jsonw *j);

#endif

/*
 * admission.c — per-address token buckets and concurrency caps (see admission.h).
 */
#include "limit/admission.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop/loop.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/metrics.h"

enum { SLOTS = 4096, MAX_ENTRIES = 65536, SWEEP_SECONDS = 10 };

struct bucket {
    struct bucket *next;
    uint8_t key[17];            /* family byte + address */
    double conn_tokens, conn_at;
    double hs_tokens, hs_at;
};

/* Connections unlimited (many clients may share one address behind NAT);
 * handshakes cost CPU, so 20/s per address after a burst of 100. */
#define LIMITS_DEFAULT { .handshake_rate = 20, .handshake_burst = 100, .max_pending_sniffs = 10000 }
const struct tnl_limits tnl_limits_default = LIMITS_DEFAULT;
static struct tnl_limits limits = LIMITS_DEFAULT;
static struct bucket *table[SLOTS];
static unsigned entries;
static double last_sweep;

struct ratelog {
    double last;
    unsigned suppressed;
};
static struct ratelog log_conn, log_hs, log_pending;

static void key_of(const struct sockaddr *sa, uint8_t key[17])
{
    memset(key, 0, 17);
    if (sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        key[0] = IN6_IS_ADDR_V4MAPPED(a) ? 4 : 6;
        if (key[0] == 4)
            memcpy(key + 1, a->s6_addr + 12, 4);
        else
            memcpy(key + 1, a->s6_addr, 16);
    }
}

static unsigned hash(const uint8_t key[17])
{
    uint32_t h = 2166136261u;       /* FNV-1a */
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % SLOTS;
}

static void refill(double *tokens, double *at, double rate, double burst, double now)
{
    *tokens += (now - *at) * rate;
    if (*tokens > burst)
        *tokens = burst;
    *at = now;
}

/* Forget addresses whose buckets are full again: they carry no state. */
static void sweep(double now)
{
    for (unsigned i = 0; i < SLOTS; i++) {
        struct bucket **pp = &table[i];
        while (*pp) {
            struct bucket *b = *pp;
            refill(&b->conn_tokens, &b->conn_at, limits.conn_rate, limits.conn_burst, now);
            refill(&b->hs_tokens, &b->hs_at, limits.handshake_rate, limits.handshake_burst, now);
            if (b->conn_tokens >= limits.conn_burst && b->hs_tokens >= limits.handshake_burst) {
                *pp = b->next;
                free(b);
                entries--;
            } else {
                pp = &b->next;
            }
        }
    }
    last_sweep = now;
}

static struct bucket *lookup(const struct sockaddr *sa, double now)
{
    uint8_t key[17];
    key_of(sa, key);
    unsigned h = hash(key);
    for (struct bucket *b = table[h]; b; b = b->next)
        if (memcmp(b->key, key, sizeof key) == 0)
            return b;
    if (now - last_sweep > SWEEP_SECONDS || entries >= MAX_ENTRIES)
        sweep(now);
    if (entries >= MAX_ENTRIES)
        return NULL;            /* too many distinct active sources: refuse the new ones */
    struct bucket *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    memcpy(b->key, key, sizeof key);
    b->conn_tokens = limits.conn_burst;
    b->hs_tokens = limits.handshake_burst;
    b->conn_at = b->hs_at = now;
    b->next = table[h];
    table[h] = b;
    entries++;
    return b;
}

static void refused(struct ratelog *rl, const char *event, const struct sockaddr *peer, const char *why)
{
    double now = tnl_now();
    if (now - rl->last < 1.0) {
        rl->suppressed++;
        return;
    }
    struct tnl_log l;
    char src[TNL_ADDR_STR_MAX];
    if (tnl_log_begin(&l, TNL_LOG_WARN, event)) {
        if (peer) {
            tnl_addr_format_ip(peer, src, sizeof src);
            tnl_log_str(&l, "src", src);
        }
        tnl_log_str(&l, "reason", why);
        if (rl->suppressed)
            tnl_log_uint(&l, "suppressed", rl->suppressed);
        tnl_log_end(&l);
    }
    rl->last = now;
    rl->suppressed = 0;
}

int tnl_admit_conn(const struct sockaddr *peer, unsigned pending)
{
    if (limits.max_pending_sniffs && pending >= limits.max_pending_sniffs) {
        tnl_metrics.admission_rejected_conn++;
        tnl_metrics.conns_rejected[TNL_R_LIMIT]++;
        refused(&log_pending, "admission_refused", peer, "too many connections being sniffed");
        return 0;
    }
    if (limits.conn_rate <= 0)
        return 1;
    double now = tnl_now();
    struct bucket *b = lookup(peer, now);
    if (b) {
        refill(&b->conn_tokens, &b->conn_at, limits.conn_rate, limits.conn_burst, now);
        if (b->conn_tokens >= 1) {
            b->conn_tokens -= 1;
            return 1;
        }
    }
    tnl_metrics.admission_rejected_conn++;
    tnl_metrics.conns_rejected[TNL_R_LIMIT]++;
    refused(&log_conn, "admission_refused", peer, "connection rate limit for this address");
    return 0;
}

int tnl_admit_handshake(const struct sockaddr *peer, const char *what)
{
    if (limits.handshake_rate <= 0)
        return 1;
    double now = tnl_now();
    struct bucket *b = lookup(peer, now);
    if (b) {
        refill(&b->hs_tokens, &b->hs_at, limits.handshake_rate, limits.handshake_burst, now);
        if (b->hs_tokens >= 1) {
            b->hs_tokens -= 1;
            return 1;
        }
    }
    tnl_metrics.admission_rejected_handshake++;
    refused(&log_hs, "admission_refused", peer, what);
    return 0;
}

void tnl_admission_configure(const struct tnl_limits *l)
{
    limits = *l;
    if (limits.conn_burst < 1 && limits.conn_rate > 0)
        limits.conn_burst = 1;
    if (limits.handshake_burst < 1 && limits.handshake_rate > 0)
        limits.handshake_burst = 1;
    for (unsigned i = 0; i < SLOTS; i++) {
        while (table[i]) {
            struct bucket *b = table[i];
            table[i] = b->next;
            free(b);
        }
    }
    entries = 0;
}

const struct tnl_limits *tnl_admission_limits(void)
{
    return &limits;
}

void tnl_admission_status(struct tnl_jsonw *j)
{
    tnl_jsonw_obj(j, "limits");
    tnl_jsonw_obj(j, "connections_per_ip");
    tnl_jsonw_num(j, "rate", limits.conn_rate);
    tnl_jsonw_num(j, "burst", limits.conn_burst);
    tnl_jsonw_num(j, "refused", (double)tnl_metrics.admission_rejected_conn);
    tnl_jsonw_end(j, '}');
    tnl_jsonw_obj(j, "handshakes_per_ip");
    tnl_jsonw_num(j, "rate", limits.handshake_rate);
    tnl_jsonw_num(j, "burst", limits.handshake_burst);
    tnl_jsonw_num(j, "refused", (double)tnl_metrics.admission_rejected_handshake);
    tnl_jsonw_end(j, '}');
    tnl_jsonw_num(j, "max_pending_sniffs", limits.max_pending_sniffs);
    tnl_jsonw_num(j, "tracked_addresses", entries);
    tnl_jsonw_end(j, '}');
}

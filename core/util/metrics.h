/*
 * metrics.h — process-wide counters and histograms, read by the management
 * endpoint (/metrics, Prometheus text format). Counters only go up; gauges
 * (sessions, streams, open connections) are computed when scraped.
 */
#ifndef TNL_METRICS_H
#define TNL_METRICS_H

/* Why a public connection was refused (label reason="..."). */
enum tnl_reason {
    TNL_R_NO_ROUTE,             /* the route said no, or no agent exposes the name */
    TNL_R_UPSTREAM,             /* upstream or agent service unreachable */
    TNL_R_UNAUTHORIZED,         /* token listener without a valid token */
    TNL_R_SNIFF,                /* timeout, invalid first bytes, peek limit */
    TNL_R_HOOK,                 /* a hook failed */
    TNL_R_LIMIT,                /* admission: rate, concurrency */
    TNL_R_MAX,
};

/* Hooks whose latency is measured (label hook="..."). */
enum tnl_hook_kind { TNL_HK_ROUTE, TNL_HK_SNIFFER, TNL_HK_AUTHORIZE, TNL_HK_DIAL, TNL_HK_OTHER, TNL_HK_MAX };

enum { TNL_HIST_BUCKETS = 9 };

struct tnl_histogram {
    unsigned long long counts[TNL_HIST_BUCKETS + 1];   /* last: +Inf */
    unsigned long long count;
    double sum;
};

struct tnl_metrics {
    unsigned long long conns_accepted;
    unsigned long long conns_rejected[TNL_R_MAX];
    unsigned long long bytes_in, bytes_out;             /* public connections: from / to clients */
    unsigned long long streams_opened;                  /* relay -> agent streams */
    unsigned long long sessions_opened;
    unsigned long long handshake_failures;              /* agent TLS / token / enrollment handshakes */
    unsigned long long admission_rejected_conn;         /* per-IP connection bucket */
    unsigned long long admission_rejected_handshake;    /* per-IP handshake bucket */
    unsigned long long enrollments, enrollments_refused, renewals;
    unsigned long long mgmt_requests, mgmt_denied;
    unsigned long long quota_exceeded, shaper_waits;   /* bandwidth limits (limit/shaper.c) */
    struct tnl_histogram hook_latency[TNL_HK_MAX];
};

extern struct tnl_metrics tnl_metrics;
extern const char *const tnl_reason_names[TNL_R_MAX];
extern const char *const tnl_hook_kind_names[TNL_HK_MAX];
extern const double tnl_hist_bounds[TNL_HIST_BUCKETS];

void tnl_histogram_observe(struct tnl_histogram *h, double v);
enum tnl_hook_kind tnl_hook_kind_of(const char *hook);

#endif

/*
 * metrics.c — the counters (see metrics.h).
 */
#include "util/metrics.h"

#include <string.h>

struct tnl_metrics tnl_metrics;

const char *const tnl_reason_names[TNL_R_MAX] = {
    "no_route", "upstream", "unauthorized", "sniff", "hook", "limit",
};

const char *const tnl_hook_kind_names[TNL_HK_MAX] = { "route", "sniffer", "authorize", "dial", "other" };

/* Seconds: hooks are expected to take microseconds to a few milliseconds. */
const double tnl_hist_bounds[TNL_HIST_BUCKETS] = { 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1 };

void tnl_histogram_observe(struct tnl_histogram *h, double v)
{
    int i = 0;
    while (i < TNL_HIST_BUCKETS && v > tnl_hist_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

enum tnl_hook_kind tnl_hook_kind_of(const char *hook)
{
    for (int i = 0; i < TNL_HK_OTHER; i++)
        if (strcmp(hook, tnl_hook_kind_names[i]) == 0)
            return (enum tnl_hook_kind)i;
    return TNL_HK_OTHER;
}

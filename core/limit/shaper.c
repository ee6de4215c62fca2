/*
 * shaper.c — byte buckets with a quota per time window (see shaper.h).
 */
#include "limit/shaper.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"

struct tnl_shaper *tnl_shaper_new(const char *name, const struct tnl_shaper_cfg *cfg, double now)
{
    struct tnl_shaper *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->refs = 1;
    tnl_strlcpy(s->name, name, sizeof s->name);
    s->cfg = *cfg;
    if (s->cfg.rate > 0 && s->cfg.burst <= 0)
        s->cfg.burst = s->cfg.rate / 4 > 65536 ? s->cfg.rate / 4 : 65536;
    if (s->cfg.quota > 0 && s->cfg.trickle <= 0)
        s->cfg.trickle = 65536;
    if (s->cfg.window <= 0)
        s->cfg.window = 3600;
    s->at = s->window_start = now;
    s->tokens = s->cfg.burst;
    return s;
}

void tnl_shaper_ref(struct tnl_shaper *s)
{
    s->refs++;
}

void tnl_shaper_unref(struct tnl_shaper *s)
{
    if (s && --s->refs == 0)
        free(s);
}

double tnl_shaper_rate(const struct tnl_shaper *s)
{
    if (s->over_quota)
        return s->cfg.trickle;
    return s->cfg.rate;
}

static void turn_window(struct tnl_shaper *s, double now)
{
    if (s->cfg.quota <= 0 || now - s->window_start < s->cfg.window)
        return;
    s->window_start = now;
    s->window_bytes = 0;
    if (s->over_quota) {
        s->over_quota = 0;
        tnl_logf(TNL_LOG_INFO, "quota_reset", "%s: new quota window, back to the full rate", s->name);
    }
}

/* The burst in force (smaller over quota), and the chunk a paused reader
 * waits for: enough to move a useful amount, not a byte at a time. */
static double burst_of(const struct tnl_shaper *s)
{
    return s->over_quota ? (s->cfg.trickle / 4 > 4096 ? s->cfg.trickle / 4 : 4096) : s->cfg.burst;
}

static double chunk_of(const struct tnl_shaper *s)
{
    double burst = burst_of(s);
    return burst / 4 > 1024 ? burst / 4 : 1024;
}

double tnl_shaper_turn(const struct tnl_shaper *s)
{
    double rate = tnl_shaper_rate(s);
    return rate > 0 ? chunk_of(s) / rate : 0;
}

double tnl_shaper_refill(const struct tnl_shaper *s)
{
    double rate = tnl_shaper_rate(s);
    double t = rate > 0 ? (chunk_of(s) - s->tokens) / rate : 0;
    return t > 0.001 ? t : (t > 0 ? 0.001 : 0);
}

size_t tnl_shaper_allow(struct tnl_shaper *s, size_t want, double now, double *wait)
{
    turn_window(s, now);
    double rate = tnl_shaper_rate(s);
    *wait = 0;
    if (rate <= 0)
        return want;
    double burst = burst_of(s);
    s->tokens += (now - s->at) * rate;
    if (s->tokens > burst)
        s->tokens = burst;
    s->at = now;
    if (s->tokens >= 1) {
        double share = s->tokens / (s->waiting + 1);
        if (share < 1)
            share = 1;
        return want < (size_t)share ? want : (size_t)share;
    }
    tnl_metrics.shaper_waits++;
    *wait = (chunk_of(s) - s->tokens) / rate;
    if (*wait < 0.001)
        *wait = 0.001;
    return 0;
}

void tnl_shaper_wait(struct tnl_shaper *s, int on)
{
    s->waiting += on ? 1 : -1;
    if (s->waiting < 0)
        s->waiting = 0;
}

void tnl_shaper_consume(struct tnl_shaper *s, size_t n)
{
    s->tokens -= (double)n;
    s->bytes += n;
    if (s->cfg.quota <= 0)
        return;
    s->window_bytes += (double)n;
    if (!s->over_quota && s->window_bytes >= s->cfg.quota) {
        s->over_quota = 1;
        tnl_metrics.quota_exceeded++;
        tnl_logf(TNL_LOG_WARN, "quota_exceeded", "%s: %.0f bytes this window, down to %.0f bytes/s until the window "
                 "turns over", s->name, s->window_bytes, s->cfg.trickle);
    }
}

/*
 * shaper.h — bandwidth shaping: a token bucket of bytes shared by the
 * connections it limits, with an optional hourly quota.
 *
 *   rate / burst     bytes per second, and how many may pass at once
 *   quota            bytes per window (default one hour); once used up, the
 *                    rate falls to `trickle` (never to zero) until the window
 *                    turns over
 *
 * Shaping never closes or drops anything: a shaped reader simply reads less
 * (io_shaped.c), so TCP's own flow control slows the sender down.
 */
#ifndef TNL_SHAPER_H
#define TNL_SHAPER_H

#include <stddef.h>
#include <stdint.h>

struct tnl_shaper_cfg {
    double rate;                /* bytes/s, 0: unlimited */
    double burst;               /* bytes, default rate/4 (at least 64 KiB) */
    double quota;               /* bytes per window, 0: none */
    double window;              /* seconds, default 3600 */
    double trickle;             /* bytes/s once over quota (default 64 KiB/s) */
};

struct tnl_shaper {
    int refs;
    char name[96];              /* for logs and status: "session 3", "service web" */
    struct tnl_shaper_cfg cfg;
    double tokens, at;          /* the bucket */
    double window_start, window_bytes;
    uint64_t bytes;             /* everything that passed */
    int over_quota;
    int waiting;                /* readers paused for tokens (tnl_shaper_wait) */
};

/* `now` is monotonic seconds (tnl_now() in the runtime; tests pass their own). */
struct tnl_shaper *tnl_shaper_new(const char *name, const struct tnl_shaper_cfg *cfg, double now);
void tnl_shaper_ref(struct tnl_shaper *s);
void tnl_shaper_unref(struct tnl_shaper *s);

/* How many of `want` bytes may pass now (0: wait *wait seconds). */
size_t tnl_shaper_allow(struct tnl_shaper *s, size_t want, double now, double *wait);
/* A reader pauses for tokens (on = 1) or resumes (on = 0). While readers
 * wait, whoever reads takes only a fair part of the tokens, then pauses for
 * one turn (tnl_shaper_turn: the time a paused reader waits for a useful
 * chunk) behind the others, so that the first to wake does not take
 * everything each time and starve them. */
void tnl_shaper_wait(struct tnl_shaper *s, int on);
double tnl_shaper_turn(const struct tnl_shaper *s);
/* Seconds until a useful chunk is back in the bucket (0: it is there).
 * A read that the bucket cut short pauses this long, rather than coming
 * back at once for the few bytes that trickled in meanwhile. */
double tnl_shaper_refill(const struct tnl_shaper *s);
/* Account for n bytes that passed. */
void tnl_shaper_consume(struct tnl_shaper *s, size_t n);

/* The rate in force now (bytes/s; 0: unlimited). */
double tnl_shaper_rate(const struct tnl_shaper *s);

#endif

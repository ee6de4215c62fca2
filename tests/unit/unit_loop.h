/*
 * unit_loop.h — for unit tests that drive the event loop (loop/loop.h):
 * a monotonic clock and RUN_UNTIL(cond, secs), which steps the loop until
 * cond holds and fails the test after secs.
 */
#ifndef TNL_UNIT_LOOP_H
#define TNL_UNIT_LOOP_H

#include <time.h>

#include "loop/loop.h"

static inline double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define RUN_UNTIL(cond, secs) do { \
        double end_ = mono() + (secs); \
        while (!(cond)) { \
            if (mono() > end_) \
                fail_msg("timed out waiting for %s", #cond); \
            tnl_loop_step(0.005); \
        } \
    } while (0)

#endif

/*
 * duration.c — human durations (see duration.h).
 */
#include "util/duration.h"

#include <errno.h>

int tnl_duration_parse(const char *s, int64_t *seconds)
{
    int64_t v = 0;
    const char *p = s;
    if (!*p)
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > INT64_MAX / 10 - 10)
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (p == s)
        return -EINVAL;
    int64_t unit;
    switch (*p) {
    case 0:
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return -EINVAL;
    }
    if (*p && p[1])
        return -EINVAL;
    if (v > INT64_MAX / unit)
        return -EINVAL;
    *seconds = v * unit;
    return 0;
}

/*
 * duration.h — "90s", "30m", "24h", "7d" (or plain seconds) to seconds.
 */
#ifndef TNL_DURATION_H
#define TNL_DURATION_H

#include <stdint.h>

/* 0, or -EINVAL for anything else (empty, no digits, unknown unit, overflow). */
int tnl_duration_parse(const char *s, int64_t *seconds);

#endif

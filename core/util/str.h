/*
 * str.h — bounded string copy (cuts, always terminates).
 */
#ifndef TNL_STR_H
#define TNL_STR_H

#include <stddef.h>
#include <string.h>

/* Copy src into dst[cap]; returns strlen(src) (>= cap means it was cut). */
static inline size_t tnl_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap > 0) {
        size_t m = n < cap - 1 ? n : cap - 1;
        memcpy(dst, src, m);
        dst[m] = 0;
    }
    return n;
}

#endif

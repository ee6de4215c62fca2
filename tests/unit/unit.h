/*
 * unit.h — shared includes and helpers for the cmocka unit tests.
 * Each tests/unit/test_<module>.c tests one C module and links libtunnel.a.
 */
#ifndef TNL_UNIT_H
#define TNL_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <cmocka.h>

/* Decode a hex string into a freshly malloc'ed buffer; *len gets its size. */
static inline uint8_t *unit_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = malloc(n ? n : 1);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    *len = n;
    return out;
}

/* Copy exactly n bytes to a malloc'ed buffer of exactly n bytes, so that ASan
 * catches any read past the end. */
static inline uint8_t *unit_exact(const uint8_t *p, size_t n)
{
    uint8_t *out = malloc(n ? n : 1);
    assert_non_null(out);
    if (n)
        memcpy(out, p, n);
    return out;
}

#define assert_slice_equal(slice, cstr) do { \
        const char *want_ = (cstr); \
        assert_int_equal((slice).n, strlen(want_)); \
        assert_memory_equal((slice).p, want_, strlen(want_)); \
    } while (0)

#endif

/*
 * jsonw.c — JSON writer (see jsonw.h).
 */
#include "util/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

void tnl_jsonw_init(struct tnl_jsonw *j)
{
    memset(j, 0, sizeof *j);
}

void tnl_jsonw_free(struct tnl_jsonw *j)
{
    free(j->buf);
    memset(j, 0, sizeof *j);
}

static int room(struct tnl_jsonw *j, size_t n)
{
    if (j->failed)
        return -1;
    if (j->len + n + 1 <= j->cap)
        return 0;
    size_t cap = j->cap ? j->cap : 1024;
    while (cap < j->len + n + 1)
        cap *= 2;
    char *b = realloc(j->buf, cap);
    if (!b) {
        j->failed = 1;
        return -1;
    }
    j->buf = b;
    j->cap = cap;
    return 0;
}

static void raw(struct tnl_jsonw *j, const char *s, size_t n)
{
    if (room(j, n) < 0)
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = 0;
}

static void quoted(struct tnl_jsonw *j, const char *s)
{
    size_t n = strlen(s);
    if (room(j, 6 * n + 2) < 0)
        return;
    j->buf[j->len++] = '"';
    tnl_json_escape(j->buf, j->cap, &j->len, s, n);
    j->buf[j->len++] = '"';
    j->buf[j->len] = 0;
}

static void key(struct tnl_jsonw *j, const char *k)
{
    if (j->need_comma)
        raw(j, ",", 1);
    j->need_comma = 1;
    if (k) {
        quoted(j, k);
        raw(j, ":", 1);
    }
}

void tnl_jsonw_obj(struct tnl_jsonw *j, const char *k)
{
    key(j, k);
    raw(j, "{", 1);
    j->need_comma = 0;
}

void tnl_jsonw_arr(struct tnl_jsonw *j, const char *k)
{
    key(j, k);
    raw(j, "[", 1);
    j->need_comma = 0;
}

void tnl_jsonw_end(struct tnl_jsonw *j, char close)
{
    raw(j, &close, 1);
    j->need_comma = 1;
}

void tnl_jsonw_str(struct tnl_jsonw *j, const char *k, const char *v)
{
    key(j, k);
    if (v)
        quoted(j, v);
    else
        raw(j, "null", 4);
}

void tnl_jsonw_num(struct tnl_jsonw *j, const char *k, double v)
{
    char tmp[48];
    int n = tnl_json_number(tmp, sizeof tmp, v);
    key(j, k);
    raw(j, tmp, (size_t)n);
}

void tnl_jsonw_bool(struct tnl_jsonw *j, const char *k, int v)
{
    key(j, k);
    raw(j, v ? "true" : "false", v ? 4 : 5);
}

/*
 * log.c — JSON-lines logger (see log.h).
 */
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum tnl_log_level tnl_log_level = TNL_LOG_INFO;
int tnl_log_worker;
static int log_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

int tnl_log_level_parse(const char *s, enum tnl_log_level *out)
{
    for (int i = 0; i <= TNL_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum tnl_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = TNL_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *tnl_log_level_name(enum tnl_log_level l)
{
    return (unsigned)l <= TNL_LOG_OFF ? level_names[l] : "?";
}

void tnl_log_set_fd(int fd)
{
    log_fd = fd;
}

int tnl_json_escape(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc = 0;
        switch (c) {
        case '"': esc = '"'; break;
        case '\\': esc = '\\'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        case '\t': esc = 't'; break;
        default: break;
        }
        if (esc) {
            if (p + 2 > cap)
                return -1;
            out[p++] = '\\';
            out[p++] = esc;
        } else if (c < 0x20 || c == 0x7f || c >= 0x80) {
            /* Bytes outside printable ASCII are escaped one by one: logs carry
             * attacker-chosen bytes (SNI, Host) and must stay valid JSON. */
            if (p + 6 > cap)
                return -1;
            memcpy(out + p, "\\u00", 4);
            out[p + 4] = hex[c >> 4];
            out[p + 5] = hex[c & 15];
            p += 6;
        } else {
            if (p + 1 > cap)
                return -1;
            out[p++] = (char)c;
        }
    }
    *pos = p;
    return 0;
}

/* Room kept at the end of the buffer for ,"truncated":true}\n */
enum { LOG_RESERVE = 24 };

static int put(struct tnl_log *l, const char *s, size_t n)
{
    if (l->truncated || l->n + n > TNL_LOG_LINE_MAX - LOG_RESERVE) {
        l->truncated = 1;
        return -1;
    }
    memcpy(l->buf + l->n, s, n);
    l->n += n;
    return 0;
}

/* Start a field: ,"key": — rolled back by the caller if the value does not fit. */
static int key(struct tnl_log *l, const char *k, size_t *mark)
{
    *mark = l->n;
    if (put(l, ",\"", 2) < 0)
        return -1;
    if (tnl_json_escape(l->buf, TNL_LOG_LINE_MAX - LOG_RESERVE, &l->n, k, strlen(k)) < 0 ||
        put(l, "\":", 2) < 0) {
        l->n = *mark;
        l->truncated = 1;
        return -1;
    }
    return 0;
}

void tnl_log_strn(struct tnl_log *l, const char *k, const char *v, size_t n)
{
    size_t mark;
    if (!v) {
        tnl_log_raw(l, k, "null", 4);
        return;
    }
    if (key(l, k, &mark) < 0)
        return;
    if (put(l, "\"", 1) < 0 ||
        tnl_json_escape(l->buf, TNL_LOG_LINE_MAX - LOG_RESERVE, &l->n, v, n) < 0 ||
        put(l, "\"", 1) < 0) {
        l->n = mark;
        l->truncated = 1;
    }
}

void tnl_log_str(struct tnl_log *l, const char *k, const char *v)
{
    tnl_log_strn(l, k, v, v ? strlen(v) : 0);
}

void tnl_log_raw(struct tnl_log *l, const char *k, const char *json, size_t n)
{
    size_t mark;
    if (key(l, k, &mark) < 0)
        return;
    if (put(l, json, n) < 0)
        l->n = mark;
}

void tnl_log_int(struct tnl_log *l, const char *k, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    tnl_log_raw(l, k, tmp, (size_t)n);
}

void tnl_log_uint(struct tnl_log *l, const char *k, unsigned long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v);
    tnl_log_raw(l, k, tmp, (size_t)n);
}

int tnl_json_number(char *out, size_t cap, double v)
{
    if (v != v || v - v != 0)          /* NaN or infinity are not JSON */
        return snprintf(out, cap, "null");
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v)   /* range first: the cast is UB outside */
        return snprintf(out, cap, "%lld", (long long)v);       /* counts, times, ports */
    if (v > -1e6 && v < 1e6)
        return snprintf(out, cap, "%.6g", v);                 /* durations, rates */
    if (v > -1e15 && v < 1e15)
        return snprintf(out, cap, "%.3f", v);                  /* Unix times to the ms */
    return snprintf(out, cap, "%.17g", v);
}

void tnl_log_num(struct tnl_log *l, const char *k, double v)
{
    char tmp[48];
    int n = tnl_json_number(tmp, sizeof tmp, v);
    tnl_log_raw(l, k, tmp, (size_t)n);
}

void tnl_log_bool(struct tnl_log *l, const char *k, int v)
{
    tnl_log_raw(l, k, v ? "true" : "false", v ? 4 : 5);
}

int tnl_log_begin(struct tnl_log *l, enum tnl_log_level level, const char *event)
{
    if (level < tnl_log_level)
        return 0;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    l->truncated = 0;
    l->n = (size_t)snprintf(l->buf, sizeof l->buf,
                            "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, tnl_log_level_name(level));
    tnl_log_str(l, "event", event);
    if (tnl_log_worker)
        tnl_log_int(l, "worker", tnl_log_worker);
    return 1;
}

void tnl_log_end(struct tnl_log *l)
{
    static const char trunc[] = ",\"truncated\":true";
    if (l->truncated) {
        memcpy(l->buf + l->n, trunc, sizeof trunc - 1);
        l->n += sizeof trunc - 1;
    }
    l->buf[l->n++] = '}';
    l->buf[l->n++] = '\n';
    ssize_t w;
    do {
        w = write(log_fd, l->buf, l->n);
    } while (w < 0 && errno == EINTR);
}

void tnl_logf(enum tnl_log_level level, const char *event, const char *fmt, ...)
{
    struct tnl_log l;
    char msg[2048];
    if (!tnl_log_begin(&l, level, event))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tnl_log_str(&l, "msg", msg);
    tnl_log_end(&l);
}

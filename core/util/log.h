/*
 * log.h — structured logs: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-22T10:00:00.123Z","level":"info","event":"accept","conn":7,...}
 *
 * A line is built field by field into a fixed buffer and written with a single
 * write(2), so lines from one process never interleave. Strings are escaped;
 * a line that would not fit is cut at a field boundary and marked "truncated".
 *
 *   struct tnl_log l;
 *   if (tnl_log_begin(&l, TNL_LOG_INFO, "accept")) {
 *       tnl_log_str(&l, "src", "127.0.0.1:5000");
 *       tnl_log_end(&l);
 *   }
 */
#ifndef TNL_LOG_H
#define TNL_LOG_H

#include <stddef.h>
#include <stdint.h>

enum tnl_log_level {
    TNL_LOG_DEBUG = 0,
    TNL_LOG_INFO = 1,
    TNL_LOG_WARN = 2,
    TNL_LOG_ERROR = 3,
    TNL_LOG_OFF = 4,
};

enum { TNL_LOG_LINE_MAX = 4096 };

struct tnl_log {
    char buf[TNL_LOG_LINE_MAX];
    size_t n;
    int truncated;
};

/* Current threshold; lines below it are not built at all. */
extern enum tnl_log_level tnl_log_level;

/* Parse "debug" / "info" / "warn" / "error" / "off". Returns 0 or -EINVAL. */
int tnl_log_level_parse(const char *s, enum tnl_log_level *out);
const char *tnl_log_level_name(enum tnl_log_level l);

/* tunnel run --workers: lines carry "worker":N (0: not a worker). */
extern int tnl_log_worker;

/* Where lines go (default 2, stderr). */
void tnl_log_set_fd(int fd);

/* Returns 0 when the level is filtered out: skip building the line. */
int tnl_log_begin(struct tnl_log *l, enum tnl_log_level level, const char *event);
void tnl_log_str(struct tnl_log *l, const char *key, const char *val);
void tnl_log_strn(struct tnl_log *l, const char *key, const char *val, size_t n);
void tnl_log_int(struct tnl_log *l, const char *key, long long v);
void tnl_log_uint(struct tnl_log *l, const char *key, unsigned long long v);
void tnl_log_num(struct tnl_log *l, const char *key, double v);
void tnl_log_bool(struct tnl_log *l, const char *key, int v);
/* A value that is already JSON (from Lua's log helper); the caller vouches for it. */
void tnl_log_raw(struct tnl_log *l, const char *key, const char *json, size_t n);
void tnl_log_end(struct tnl_log *l);

/* One-liner: {"event":event,"msg":<formatted>} */
void tnl_logf(enum tnl_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A number as JSON: integers without a fraction, NaN/inf as null. */
int tnl_json_number(char *out, size_t cap, double v);

/* Append s[0..n) to out (capacity cap, at offset *pos) as a JSON string body
 * (no quotes). Returns 0, or -1 if it did not fit (out is then unchanged). */
int tnl_json_escape(char *out, size_t cap, size_t *pos, const char *s, size_t n);

#endif

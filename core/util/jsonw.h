/*
 * jsonw.h — building a JSON document into a growing buffer (status pages).
 * Commas are inserted automatically; strings are escaped as in log.h.
 *
 *   struct tnl_jsonw j; tnl_jsonw_init(&j);
 *   tnl_jsonw_obj(&j, NULL); tnl_jsonw_str(&j, "name", "x"); tnl_jsonw_end(&j, '}');
 *   ... j.buf, j.len ...; tnl_jsonw_free(&j);
 */
#ifndef TNL_JSONW_H
#define TNL_JSONW_H

#include <stddef.h>

struct tnl_jsonw {
    char *buf;
    size_t len, cap;
    int need_comma;
    int failed;                 /* out of memory: the document is unusable */
};

void tnl_jsonw_init(struct tnl_jsonw *j);
void tnl_jsonw_free(struct tnl_jsonw *j);
/* Open an object or array; key is NULL inside arrays and at the top. */
void tnl_jsonw_obj(struct tnl_jsonw *j, const char *key);
void tnl_jsonw_arr(struct tnl_jsonw *j, const char *key);
void tnl_jsonw_end(struct tnl_jsonw *j, char close);
void tnl_jsonw_str(struct tnl_jsonw *j, const char *key, const char *v);
void tnl_jsonw_num(struct tnl_jsonw *j, const char *key, double v);
void tnl_jsonw_bool(struct tnl_jsonw *j, const char *key, int v);

#endif

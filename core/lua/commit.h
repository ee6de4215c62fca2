/*
 * commit.h — apply a staged ctx (reload, first load, go-live), or discard it.
 */
#ifndef TNL_COMMIT_H
#define TNL_COMMIT_H

#include <stddef.h>

#include "lua/ctx.h"

/* 0, or -1 with err; on failure nothing running changed. */
int tnl_commit(struct tnl_ctx *ctx, char *err, size_t cap);
/* Drop declarations that will never be committed (failed load, --check). */
void tnl_commit_discard(struct tnl_ctx *ctx);

#endif

/*
 * io_shaped.h — wrap an io so that reading from it goes through shapers
 * (limit/shaper.h; at most 3, NULLs skipped). The wrapper owns inner.
 * NULL if out of memory (inner is then untouched).
 */
#ifndef TNL_IO_SHAPED_H
#define TNL_IO_SHAPED_H

#include "limit/shaper.h"
#include "net/io.h"

struct tnl_io *tnl_io_shaped_new(struct tnl_io *inner, struct tnl_shaper *const *shapers, int n);

#endif

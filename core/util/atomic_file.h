/*
 * atomic_file.h — replace a file so that a crash at any point leaves either
 * the old content or the new, never a torn mix: write a temporary file in the
 * same folder, fsync it, set its mode, rename it over the target, fsync the
 * folder.
 */
#ifndef TNL_ATOMIC_FILE_H
#define TNL_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* 0, or -errno with a message naming the path in err. */
int tnl_file_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t cap);

/* Read a whole file (at most max bytes) into a malloc'ed, NUL-terminated
 * buffer. NULL with err set on failure. */
char *tnl_file_read(const char *path, size_t max, size_t *len, char *err, size_t cap);

/* mkdir -p with mode for the last component; 0 or -errno. */
int tnl_mkdirs(const char *path, mode_t mode, char *err, size_t cap);

#endif

/*
 * atomic_file.c — crash-safe file replacement (see atomic_file.h).
 */
#include "util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/str.h"

static int fail(char *err, size_t cap, const char *what, const char *path)
{
    int e = errno;
    snprintf(err, cap, "%s %s: %s", what, path, strerror(e));
    return -e;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int tnl_file_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t cap)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return fail(err, cap, "cannot write", path);
    }
    int fd = mkstemp(tmp);
    if (fd < 0)
        return fail(err, cap, "cannot create a temporary file for", path);
    if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        int rc = fail(err, cap, "cannot write", tmp);
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int rc = fail(err, cap, "cannot replace", path);
        unlink(tmp);
        return rc;
    }
    tnl_strlcpy(dir, path, sizeof dir);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);     /* make the rename itself durable */
        close(dfd);
    }
    return 0;
}

char *tnl_file_read(const char *path, size_t max, size_t *len, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, cap, "cannot open", path);
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > max) {
        snprintf(err, cap, "%s %s", !buf ? "out of memory reading" : bad ? "cannot read" : "file too large:", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int tnl_mkdirs(const char *path, mode_t mode, char *err, size_t cap)
{
    char p[PATH_MAX];
    tnl_strlcpy(p, path, sizeof p);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return fail(err, cap, "cannot create folder", p);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return fail(err, cap, "cannot create folder", p);
    return 0;
}

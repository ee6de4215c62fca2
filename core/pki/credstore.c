/*
 * credstore.c — crash-safe credential generations (see credstore.h).
 */
#include "pki/credstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "pki/pki.h"
#include "util/atomic_file.h"
#include "util/log.h"
#include "util/str.h"

void tnl_cred_paths(const char *dir, struct tnl_cred_paths *p)
{
    snprintf(p->cert, sizeof p->cert, "%s/current/cert.pem", dir);
    snprintf(p->key, sizeof p->key, "%s/current/key.pem", dir);
    snprintf(p->ca, sizeof p->ca, "%s/current/ca.pem", dir);
}

void tnl_cred_current(const char *dir, char *out, size_t cap)
{
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/current", dir);
    ssize_t n = readlink(link, out, cap - 1);
    out[n > 0 ? n : 0] = 0;
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int gen_number(const char *name)
{
    char *end;
    if (strncmp(name, "gen-", 4) != 0)
        return -1;
    long v = strtol(name + 4, &end, 10);
    return *end || v < 0 || v > 1000000000 ? -1 : (int)v;
}

static int next_gen(const char *dir)
{
    int max = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int n = gen_number(e->d_name);
        if (n > max)
            max = n;
    }
    if (d)
        closedir(d);
    return max + 1;
}

int tnl_cred_stage(const char *dir, EVP_PKEY *key, char *gen, size_t cap, char *err, size_t errcap)
{
    char path[PATH_MAX];
    if (tnl_mkdirs(dir, 0700, err, errcap) < 0)
        return -EIO;
    snprintf(gen, cap, "%s/gen-%d", dir, next_gen(dir));
    if (mkdir(gen, 0700) < 0) {
        snprintf(err, errcap, "cannot create %s: %s", gen, strerror(errno));
        return -errno;
    }
    snprintf(path, sizeof path, "%s/key.pem", gen);
    return tnl_pki_key_save(key, path, err, errcap);
}

static int cert_matches_key(const char *gen, const char *cert_pem, size_t cert_len, char *err, size_t errcap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/key.pem", gen);
    EVP_PKEY *key = tnl_pki_key_load(path, err, errcap);
    X509 *cert = key ? tnl_pki_cert_parse(cert_pem, cert_len, err, errcap) : NULL;
    int ok = cert && X509_check_private_key(cert, key) == 1;
    ERR_clear_error();
    if (cert && !ok)
        snprintf(err, errcap, "the certificate received does not belong to the key staged in %s", gen);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok ? 0 : -EINVAL;
}

/* Ours in a generation folder: the three files, and the temporaries a crash
 * in the middle of writing one leaves behind (key.pem.tmp.XXXXXX). */
static int generation_file(const char *name)
{
    static const char *const names[] = { "key.pem", "cert.pem", "ca.pem" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(name, names[i], n) == 0 && (name[n] == 0 || strncmp(name + n, ".tmp.", 5) == 0))
            return 1;
    }
    return 0;
}

/* Remove generations other than the current one and the one before it. */
static void prune(const char *dir, const char *keep1, const char *keep2)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX], file[PATH_MAX + 300];
    while (d && (e = readdir(d))) {
        if (gen_number(e->d_name) < 0 || strcmp(e->d_name, keep1) == 0 || strcmp(e->d_name, keep2) == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        DIR *g = opendir(path);
        struct dirent *f;
        while (g && (f = readdir(g)))
            if (generation_file(f->d_name)) {
                snprintf(file, sizeof file, "%s/%s", path, f->d_name);
                unlink(file);
            }
        if (g)
            closedir(g);
        if (rmdir(path) < 0)
            tnl_logf(TNL_LOG_WARN, "credentials_prune", "cannot remove old generation %s: %s", path, strerror(errno));
    }
    if (d)
        closedir(d);
}

int tnl_cred_commit(const char *dir, const char *gen, const char *cert_pem, size_t cert_len,
                    const char *ca_pem, size_t ca_len, char *err, size_t errcap)
{
    char path[PATH_MAX], tmp[PATH_MAX], prev[PATH_MAX];
    if (cert_matches_key(gen, cert_pem, cert_len, err, errcap) < 0)
        return -EINVAL;
    snprintf(path, sizeof path, "%s/cert.pem", gen);
    if (tnl_file_replace(path, cert_pem, cert_len, 0644, err, errcap) < 0)
        return -EIO;
    snprintf(path, sizeof path, "%s/ca.pem", gen);
    if (tnl_file_replace(path, ca_pem, ca_len, 0644, err, errcap) < 0)
        return -EIO;
    fsync_path(gen);
    tnl_cred_current(dir, prev, sizeof prev);
    /* The switch: a new symlink renamed over `current`, then DIR fsynced. */
    const char *base = strrchr(gen, '/') ? strrchr(gen, '/') + 1 : gen;
    snprintf(tmp, sizeof tmp, "%s/current.tmp", dir);
    snprintf(path, sizeof path, "%s/current", dir);
    unlink(tmp);
    if (symlink(base, tmp) < 0 || rename(tmp, path) < 0) {
        snprintf(err, errcap, "cannot switch %s to %s: %s", path, base, strerror(errno));
        unlink(tmp);
        return -EIO;
    }
    fsync_path(dir);
    prune(dir, base, prev);
    return 0;
}

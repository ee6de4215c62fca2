/*
 * files.c — CA folders and issued certificate files (see files.h).
 */
#include "pki/files.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util/atomic_file.h"

int tnl_pki_ca_init_dir(const char *dir, enum tnl_key_type type, const char *name, int64_t ttl,
                        char *err, size_t cap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/ca.key", dir);
    if (access(path, F_OK) == 0) {
        snprintf(err, cap, "%s exists; refusing to replace a CA key", path);
        return -EEXIST;
    }
    if (tnl_mkdirs(dir, 0700, err, cap) < 0)
        return -EIO;
    EVP_PKEY *key = tnl_pki_keygen(type, err, cap);
    X509 *ca = key ? tnl_pki_ca_create(key, name, time(NULL) + ttl, err, cap) : NULL;
    int rc = ca ? tnl_pki_key_save(key, path, err, cap) : -EINVAL;
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/ca.crt", dir);
        rc = tnl_pki_cert_save(ca, path, err, cap);
    }
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

int tnl_pki_issue_files(const struct tnl_issue_files *o, char *err, size_t cap)
{
    char path[PATH_MAX];
    if (tnl_mkdirs(o->out, 0700, err, cap) < 0)
        return -EIO;
    snprintf(path, sizeof path, "%s/ca.key", o->ca_dir);
    EVP_PKEY *ca_key = tnl_pki_key_load(path, err, cap);
    snprintf(path, sizeof path, "%s/ca.crt", o->ca_dir);
    X509 *ca = ca_key ? tnl_pki_cert_load(path, err, cap) : NULL;
    EVP_PKEY *key = !ca ? NULL : o->key ? tnl_pki_key_load(o->key, err, cap) : tnl_pki_keygen(TNL_KEY_P256, err, cap);
    struct tnl_issue req = {
        .name = o->name, .role = o->role, .not_before = time(NULL), .not_after = time(NULL) + o->ttl,
        .usage = o->server ? TNL_CERT_SERVER : TNL_CERT_CLIENT, .dns = o->dns,
    };
    X509 *cert = key ? tnl_pki_issue(ca, ca_key, key, &req, err, cap) : NULL;
    int rc = cert ? 0 : -EINVAL;
    if (rc == 0 && !o->key) {
        snprintf(path, sizeof path, "%s/%s.key", o->out, o->name);
        rc = tnl_pki_key_save(key, path, err, cap);
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s.crt", o->out, o->name);
        rc = tnl_pki_cert_save(cert, path, err, cap);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

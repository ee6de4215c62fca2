/*
 * credstore.h — an agent's credentials as a folder of generations:
 *
 *   DIR/current -> gen-7          (a symlink, swapped atomically)
 *   DIR/gen-7/key.pem (0600), cert.pem, ca.pem
 *
 * A new pair is staged in a fresh gen-N folder (key first), completed with
 * its certificate, every file and the folder fsynced, then `current` is
 * pointed at it by renaming a new symlink over the old one and fsyncing DIR.
 * A crash at any point leaves `current` naming a complete pair, old or new,
 * never a key with the wrong certificate. Older generations are removed once
 * the switch is durable (the previous one is kept).
 */
#ifndef TNL_CREDSTORE_H
#define TNL_CREDSTORE_H

#include <limits.h>
#include <stddef.h>
#include <openssl/evp.h>

struct tnl_cred_paths {
    char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
};

void tnl_cred_paths(const char *dir, struct tnl_cred_paths *p);

/* Stage a new generation holding key; gen receives its folder path. */
int tnl_cred_stage(const char *dir, EVP_PKEY *key, char *gen, size_t cap, char *err, size_t errcap);

/* Complete a staged generation with its certificate and CA, check that the
 * certificate belongs to the staged key, and make it current. */
int tnl_cred_commit(const char *dir, const char *gen, const char *cert_pem, size_t cert_len,
                    const char *ca_pem, size_t ca_len, char *err, size_t errcap);

/* The generation `current` points to ("gen-7"), or "" if none. */
void tnl_cred_current(const char *dir, char *out, size_t cap);

#endif

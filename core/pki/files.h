/*
 * files.h — credentials as files in folders, shared by the CLI (tunnel ca
 * init, tunnel cert issue) and Lua (tunnel.pki, used by the quickstart).
 *
 *   CA folder:      ca.key (0600), ca.crt
 *   issued:         OUT/NAME.key (0600, unless an existing key was given), OUT/NAME.crt
 */
#ifndef TNL_PKI_FILES_H
#define TNL_PKI_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "pki/pki.h"

int tnl_pki_ca_init_dir(const char *dir, enum tnl_key_type type, const char *name, int64_t ttl,
                        char *err, size_t cap);

struct tnl_issue_files {
    const char *ca_dir;
    const char *name;
    const char *role;           /* may be NULL */
    int server;
    const char *const *dns;     /* NULL-terminated, may be NULL */
    int64_t ttl;                /* seconds */
    const char *key;            /* existing key file, or NULL to generate one */
    const char *out;            /* folder */
};

int tnl_pki_issue_files(const struct tnl_issue_files *o, char *err, size_t cap);

#endif

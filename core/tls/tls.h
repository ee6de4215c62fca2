/*
 * tls.h — TLS 1.3 over a non-blocking socket, as a tnl_io (OpenSSL).
 *
 * Glossary
 *   tls ctx    the configuration one side uses for all its sessions: its
 *              certificate and key, the CA that peers must chain to, and/or a
 *              pinned SHA-256 fingerprint of the peer's certificate. A relay's
 *              ctx requires a client certificate (mutual TLS).
 *   identity   what the peer's certificate proves, as handed to Lua:
 *              name (subject CN), role (subject OU: organizationalUnitName),
 *              fingerprint (SHA-256 of the DER certificate, lowercase hex),
 *              expires (notAfter, Unix seconds), via = "cert".
 *
 * Only TLS 1.3 is offered or accepted; AES-128-GCM is preferred (AES-NI).
 * The handshake runs inside the io; when it ends, done(io, NULL) or
 * done(io, reason) is called once (the io must then be closed by the owner on
 * failure). After a successful handshake the io reads and writes plaintext
 * with the tnl_io contract of net/io.h.
 */
#ifndef TNL_TLS_H
#define TNL_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "net/io.h"

enum { TNL_FPR_HEX = 64 };

struct tnl_tls_cfg {
    int server;                 /* accept side (relay) */
    const char *cert;           /* PEM certificate chain file (required for a server; a client's is optional) */
    const char *key;            /* PEM private key file */
    const char *ca;             /* PEM CA file peers must chain to (may be NULL when pin is set) */
    const char *pin;            /* expected peer certificate SHA-256, hex (colons allowed) */
    int require_client_cert;    /* server: 1 mutual TLS; 2 a certificate is optional but verified if sent */
};

struct tnl_identity {
    char name[256];
    char role[64];
    char fingerprint[TNL_FPR_HEX + 1];
    int64_t expires;
    int64_t issued;             /* notBefore, Unix seconds */
    char via[8];
};

struct tnl_tls_ctx;

/* NULL on error, with a message naming the file or setting in err. */
struct tnl_tls_ctx *tnl_tls_ctx_new(const struct tnl_tls_cfg *cfg, char *err, size_t cap);
void tnl_tls_ctx_ref(struct tnl_tls_ctx *c);
void tnl_tls_ctx_unref(struct tnl_tls_ctx *c);

typedef void (*tnl_tls_done_fn)(struct tnl_io *io, const char *err, void *arg);

/* Start a handshake on a connected socket (fd is owned by the io). NULL if out
 * of memory (fd closed). */
struct tnl_io *tnl_tls_new(struct tnl_tls_ctx *ctx, int fd, tnl_tls_done_fn done, void *arg);

/* Client side, right after tnl_tls_new: send SNI `name` and, when verifying by
 * CA, require the relay's certificate to be for that name. 0 or -EINVAL. */
int tnl_tls_set_server_name(struct tnl_io *io, const char *name);

/* The peer's identity after a successful handshake: 0, or -ENOENT if the peer
 * sent no certificate. */
int tnl_tls_peer_identity(struct tnl_io *io, struct tnl_identity *id);

/* For command-line tools: a blocking TLS 1.3 client on a connected blocking
 * socket, verified as the ctx says (CA and server_name, or pin). Returns an
 * SSL * (SSL_free and close the fd when done) or NULL with err. */
struct ssl_st *tnl_tls_connect_blocking(struct tnl_tls_ctx *ctx, int fd, const char *server_name, char *err,
                                        size_t cap);

/* Identity of a PEM certificate file (used by the CLI and tests). */
int tnl_tls_file_identity(const char *path, struct tnl_identity *id, char *err, size_t cap);

/* Normalize a fingerprint (strip colons, lowercase); 0 or -EINVAL. */
int tnl_fpr_parse(const char *in, char out[TNL_FPR_HEX + 1]);

#endif

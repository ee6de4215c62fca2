/*
 * pki.h — keys, a small CA, certificates and CSRs (OpenSSL).
 *
 * Glossary
 *   key     EC P-256 (default) or RSA-2048. Private keys are written with mode
 *           0600, atomically (util/atomic_file.h).
 *   CA      a self-signed certificate (basicConstraints CA:TRUE, keyCertSign)
 *           that the relay requires client certificates to chain to.
 *   issue   a certificate for a public key: subject CN = name and, for agent
 *           certificates, OU = role (that is where the role lives); a random
 *           128-bit serial; NotBefore 5 minutes in the past (clock skew);
 *           extendedKeyUsage clientAuth (agents) or serverAuth (relays, with
 *           subjectAltName DNS/IP entries).
 *   CSR     a PKCS#10 request: we check its signature, that its key is strong
 *           enough (P-256 or RSA >= 2048) and read its CN.
 */
#ifndef TNL_PKI_H
#define TNL_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

enum tnl_key_type { TNL_KEY_P256 = 0, TNL_KEY_RSA2048 = 1 };
enum tnl_cert_usage { TNL_CERT_CLIENT = 0, TNL_CERT_SERVER = 1 };

struct tnl_issue {
    const char *name;           /* CN */
    const char *role;           /* OU, may be NULL */
    int64_t not_before;         /* Unix seconds */
    int64_t not_after;
    enum tnl_cert_usage usage;
    const char *const *dns;     /* subjectAltName DNS names / IP literals (server), NULL-terminated, may be NULL */
};

EVP_PKEY *tnl_pki_keygen(enum tnl_key_type type, char *err, size_t cap);
X509 *tnl_pki_ca_create(EVP_PKEY *key, const char *name, int64_t not_after, char *err, size_t cap);
X509 *tnl_pki_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *subject_key, const struct tnl_issue *req,
                    char *err, size_t cap);

X509_REQ *tnl_pki_csr_create(EVP_PKEY *key, const char *name, char *err, size_t cap);
/* Verify the CSR's signature and key strength; copy its CN. 0 or -EINVAL. */
int tnl_pki_csr_check(X509_REQ *req, char *cn, size_t cn_cap, char *err, size_t cap);

/* PEM in memory <-> objects. */
char *tnl_pki_key_pem(EVP_PKEY *key, size_t *len);           /* private key (PKCS#8) */
char *tnl_pki_cert_pem(X509 *cert, size_t *len);
char *tnl_pki_csr_pem(X509_REQ *req, size_t *len);
EVP_PKEY *tnl_pki_key_load(const char *path, char *err, size_t cap);
X509 *tnl_pki_cert_load(const char *path, char *err, size_t cap);
X509_REQ *tnl_pki_csr_parse(const char *pem, size_t len, char *err, size_t cap);
X509 *tnl_pki_cert_parse(const char *pem, size_t len, char *err, size_t cap);

/* Write key (0600) / certificate (0644) files atomically. */
int tnl_pki_key_save(EVP_PKEY *key, const char *path, char *err, size_t cap);
int tnl_pki_cert_save(X509 *cert, const char *path, char *err, size_t cap);

#endif

/*
 * key.c — key generation and PEM (de)serialisation (see pki.h).
 */
#include "pki/pki.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "util/atomic_file.h"

static void ossl_err(char *err, size_t cap, const char *what)
{
    char detail[200] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    snprintf(err, cap, "%s: %s", what, detail);
}

EVP_PKEY *tnl_pki_keygen(enum tnl_key_type type, char *err, size_t cap)
{
    EVP_PKEY *key = type == TNL_KEY_RSA2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    if (!key)
        ossl_err(err, cap, "key generation failed");
    return key;
}

/* Serialise through a memory BIO into a malloc'ed, NUL-terminated string. */
static char *bio_string(BIO *b, int ok, size_t *len)
{
    char *out = NULL;
    if (ok) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        out = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (out) {
            memcpy(out, data, (size_t)n);
            out[n] = 0;
            if (len)
                *len = (size_t)n;
        }
    }
    /* The BIO held private key bytes: wipe before freeing. */
    char *data;
    long n = BIO_get_mem_data(b, &data);
    if (n > 0)
        OPENSSL_cleanse(data, (size_t)n);
    BIO_free(b);
    return out;
}

char *tnl_pki_key_pem(EVP_PKEY *key, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    return b ? bio_string(b, PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1, len) : NULL;
}

char *tnl_pki_cert_pem(X509 *cert, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    return b ? bio_string(b, PEM_write_bio_X509(b, cert) == 1, len) : NULL;
}

char *tnl_pki_csr_pem(X509_REQ *req, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    return b ? bio_string(b, PEM_write_bio_X509_REQ(b, req) == 1, len) : NULL;
}

static FILE *open_pem(const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
    return f;
}

EVP_PKEY *tnl_pki_key_load(const char *path, char *err, size_t cap)
{
    FILE *f = open_pem(path, err, cap);
    if (!f)
        return NULL;
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key) {
        char what[300];
        snprintf(what, sizeof what, "%s is not a PEM private key", path);
        ossl_err(err, cap, what);
    }
    return key;
}

X509 *tnl_pki_cert_load(const char *path, char *err, size_t cap)
{
    FILE *f = open_pem(path, err, cap);
    if (!f)
        return NULL;
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert) {
        char what[300];
        snprintf(what, sizeof what, "%s is not a PEM certificate", path);
        ossl_err(err, cap, what);
    }
    return cert;
}

X509_REQ *tnl_pki_csr_parse(const char *pem, size_t len, char *err, size_t cap)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!req)
        ossl_err(err, cap, "not a PEM certificate request");
    return req;
}

X509 *tnl_pki_cert_parse(const char *pem, size_t len, char *err, size_t cap)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!cert)
        ossl_err(err, cap, "not a PEM certificate");
    return cert;
}

int tnl_pki_key_save(EVP_PKEY *key, const char *path, char *err, size_t cap)
{
    size_t len;
    char *pem = tnl_pki_key_pem(key, &len);
    if (!pem) {
        snprintf(err, cap, "cannot encode the key for %s", path);
        return -ENOMEM;
    }
    int rc = tnl_file_replace(path, pem, len, 0600, err, cap);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

int tnl_pki_cert_save(X509 *cert, const char *path, char *err, size_t cap)
{
    size_t len;
    char *pem = tnl_pki_cert_pem(cert, &len);
    if (!pem) {
        snprintf(err, cap, "cannot encode the certificate for %s", path);
        return -ENOMEM;
    }
    int rc = tnl_file_replace(path, pem, len, 0644, err, cap);
    free(pem);
    return rc;
}

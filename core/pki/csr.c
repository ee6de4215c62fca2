/*
 * csr.c — certificate requests: create (agent side) and check (relay side).
 */
#include "pki/pki.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

X509_REQ *tnl_pki_csr_create(EVP_PKEY *key, const char *name, char *err, size_t cap)
{
    X509_REQ *req = X509_REQ_new();
    if (!req || X509_REQ_set_version(req, 0) != 1 ||
        !X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)name, -1, -1, 0) ||
        X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) == 0) {
        ERR_clear_error();
        snprintf(err, cap, "cannot create a certificate request for '%s'", name);
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

/* Strong enough: EC on P-256 or larger, RSA of 2048 bits or more. */
static int key_ok(EVP_PKEY *key, char *err, size_t cap)
{
    int id = EVP_PKEY_get_base_id(key);
    int bits = EVP_PKEY_get_bits(key);
    if (id == EVP_PKEY_EC && bits >= 256)
        return 0;
    if (id == EVP_PKEY_RSA && bits >= 2048)
        return 0;
    if (id == EVP_PKEY_ED25519)
        return 0;
    snprintf(err, cap, "the request's key is too weak (%s, %d bits); use P-256 or RSA-2048 or more",
             id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "EC" : "other type", bits);
    return -EINVAL;
}

int tnl_pki_csr_check(X509_REQ *req, char *cn, size_t cn_cap, char *err, size_t cap)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    if (!key) {
        snprintf(err, cap, "the request carries no public key");
        return -EINVAL;
    }
    if (X509_REQ_verify(req, key) != 1) {
        ERR_clear_error();
        snprintf(err, cap, "the request's signature does not verify");
        return -EINVAL;
    }
    if (key_ok(key, err, cap) < 0)
        return -EINVAL;
    X509_NAME *subject = X509_REQ_get_subject_name(req);
    int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0) {
        snprintf(err, cap, "the request must carry exactly one CN");
        return -EINVAL;
    }
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (n <= 0 || (size_t)n >= cn_cap || memchr(utf8, 0, (size_t)n)) {
        OPENSSL_free(utf8);
        snprintf(err, cap, "the request's CN is empty, too long or malformed");
        return -EINVAL;
    }
    memcpy(cn, utf8, (size_t)n);
    cn[n] = 0;
    OPENSSL_free(utf8);
    return 0;
}

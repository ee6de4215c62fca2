/*
 * cert.c — a small CA: self-signed root and issued certificates (see pki.h).
 */
#include "pki/pki.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>

enum { SKEW_SECONDS = 300 };

static int inet_pton_any(const char *s, unsigned char *out)
{
    return inet_pton(AF_INET, s, out) == 1 || inet_pton(AF_INET6, s, out) == 1;
}

static void ossl_err(char *err, size_t cap, const char *what)
{
    char detail[200] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    snprintf(err, cap, "%s: %s", what, detail);
}

/* A random positive 128-bit serial (RFC 5280 allows up to 20 octets). */
static int random_serial(X509 *cert)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    raw[0] &= 0x7f;
    raw[0] |= 0x01;     /* never zero, never negative */
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int set_name(X509_NAME *n, const char *cn, const char *ou)
{
    if (ou && *ou &&
        !X509_NAME_add_entry_by_NID(n, NID_organizationalUnitName, MBSTRING_UTF8, (const unsigned char *)ou, -1, -1, 0))
        return -1;
    return X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
               ? 0 : -1;
}

static X509 *new_cert(EVP_PKEY *subject_key, const char *cn, const char *ou, int64_t nb, int64_t na)
{
    X509 *cert = X509_new();
    if (!cert || X509_set_version(cert, 2) != 1 || random_serial(cert) < 0 ||
        !X509_time_adj_ex(X509_getm_notBefore(cert), 0, (long)(nb - time(NULL)), NULL) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), 0, (long)(na - time(NULL)), NULL) ||
        X509_set_pubkey(cert, subject_key) != 1 || set_name(X509_get_subject_name(cert), cn, ou) < 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

X509 *tnl_pki_ca_create(EVP_PKEY *key, const char *name, int64_t not_after, char *err, size_t cap)
{
    X509 *ca = new_cert(key, name, NULL, time(NULL) - SKEW_SECONDS, not_after);
    if (!ca || X509_set_issuer_name(ca, X509_get_subject_name(ca)) != 1 ||
        add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
        add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(ca, ca, NID_subject_key_identifier, "hash") < 0 ||
        X509_sign(ca, key, EVP_sha256()) == 0) {
        ossl_err(err, cap, "cannot create the CA certificate");
        X509_free(ca);
        return NULL;
    }
    return ca;
}

/* subjectAltName value: "DNS:a,IP:127.0.0.1,..." */
static void san_value(const char *const *dns, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (; dns && *dns; dns++) {
        unsigned char tmp[16];
        int ip = inet_pton_any(*dns, tmp);
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s:%s", n ? "," : "", ip ? "IP" : "DNS", *dns);
    }
}

X509 *tnl_pki_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *subject_key, const struct tnl_issue *req,
                    char *err, size_t cap)
{
    char san[1024];
    X509 *cert = new_cert(subject_key, req->name, req->role, req->not_before - SKEW_SECONDS, req->not_after);
    int server = req->usage == TNL_CERT_SERVER;
    san_value(req->dns, san, sizeof san);
    if (!cert || X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1 ||
        add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(cert, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
        add_ext(cert, ca, NID_ext_key_usage, server ? "serverAuth" : "clientAuth") < 0 ||
        add_ext(cert, ca, NID_authority_key_identifier, "keyid") < 0 ||
        (san[0] && add_ext(cert, ca, NID_subject_alt_name, san) < 0) ||
        X509_sign(cert, ca_key, EVP_sha256()) == 0) {
        ossl_err(err, cap, "cannot issue the certificate");
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/*
 * credentials.c — the agent's own certificate: loading it (static files or
 * an enrolled folder of generations) and renewing it.
 *
 * Renewal, driven by lua/tunnel/agent.lua at about two thirds of the
 * certificate's life: a new key is generated here and staged in a new
 * generation folder (it never leaves the machine, nor enters Lua), its CSR is
 * sent over the control channel (cert.renew), and the certificate that comes
 * back is committed: the folder's `current` switches atomically. The running
 * session is not touched; the next connection uses the new pair.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "pki/credstore.h"
#include "pki/pki.h"
#include "util/log.h"
#include "util/str.h"

int tnl_agent_tls_load(struct tnl_agent_cfg *cfg, char *err, size_t cap)
{
    struct tnl_cred_paths p;
    tnl_cred_paths(cfg->cred_dir, &p);
    struct tnl_tls_cfg tc = {
        .server = 0, .cert = p.cert, .key = p.key,
        .ca = cfg->ca[0] ? cfg->ca : cfg->pin[0] ? NULL : p.ca,
        .pin = cfg->pin[0] ? cfg->pin : NULL,
    };
    char gen[64];
    tnl_cred_current(cfg->cred_dir, gen, sizeof gen);
    if (!gen[0]) {
        snprintf(err, cap, "%s holds no credentials yet (tunnel enroll --out %s ...)", cfg->cred_dir, cfg->cred_dir);
        return -1;
    }
    struct tnl_tls_ctx *tls = tnl_tls_ctx_new(&tc, err, cap);
    if (!tls)
        return -1;
    tnl_tls_ctx_unref(cfg->tls);
    cfg->tls = tls;
    tnl_strlcpy(cfg->cred_gen, gen, sizeof cfg->cred_gen);
    return 0;
}

char *tnl_agent_renew_begin(struct tnl_agent *a, char *err, size_t cap)
{
    struct tnl_cred_paths p;
    struct tnl_identity id;
    if (!a->cfg->cred_dir[0]) {
        snprintf(err, cap, "renewal needs enrolled credentials (tls = { dir = ... })");
        return NULL;
    }
    tnl_cred_paths(a->cfg->cred_dir, &p);
    if (tnl_tls_file_identity(p.cert, &id, err, cap) < 0)
        return NULL;
    EVP_PKEY *key = tnl_pki_keygen(TNL_KEY_P256, err, cap);
    X509_REQ *csr = key ? tnl_pki_csr_create(key, id.name, err, cap) : NULL;
    char *pem = csr ? tnl_pki_csr_pem(csr, NULL) : NULL;
    if (pem && tnl_cred_stage(a->cfg->cred_dir, key, a->renew_gen, sizeof a->renew_gen, err, cap) < 0) {
        free(pem);
        pem = NULL;
    }
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    return pem;
}

int tnl_agent_renew_commit(struct tnl_agent *a, const char *cert, size_t cert_len, const char *ca, size_t ca_len,
                           char *err, size_t cap)
{
    if (!a->renew_gen[0]) {
        snprintf(err, cap, "no renewal in progress");
        return -1;
    }
    int rc = tnl_cred_commit(a->cfg->cred_dir, a->renew_gen, cert, cert_len, ca, ca_len, err, cap);
    a->renew_gen[0] = 0;
    if (rc < 0)
        return -1;
    /* New sessions use the new pair; this one goes on as it is. */
    if (tnl_agent_tls_load(a->cfg, err, cap) < 0)
        tnl_logf(TNL_LOG_ERROR, "renew_error", "agent '%s': %s", a->cfg->name, err);
    return 0;
}

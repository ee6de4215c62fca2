/*
 * agent.h — the agent: behind NAT, listens on nothing; connects out to a
 * relay over mutual TLS 1.3, keeps one yamux session, exposes its services
 * over the control channel, and dials a local target for every stream the
 * relay opens.
 *
 * Glossary
 *   agent cfg   what tunnel.agent{} declared: relays (tried in order, failing
 *               over to the next), TLS (our certificate, the relay's CA or
 *               pinned fingerprint), the services with their local targets, the
 *               optional dial hook, reconnect backoff, mux settings, and the
 *               Lua dispatcher (lua/tunnel/agent.lua). Swapped on reload.
 *   target      the local "host:port" a service forwards to. The agent dials
 *               only addresses its config allows (the services' targets and the
 *               `allow` list): it is not an open proxy, whatever the relay or
 *               the dial hook asks for.
 *   backoff     after a failure: min * 2^n, capped at max, times a random
 *               factor in [0.8, 1.2]; reset once a session has lasted 10 s.
 */
#ifndef TNL_AGENT_H
#define TNL_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "loop/loop.h"
#include "lua/ctx.h"
#include "mux/mux.h"
#include "net/connect.h"
#include "net/splice.h"
#include "session/control.h"
#include "tls/tls.h"
#include "util/addr.h"

enum { TNL_AGENT_RELAYS_MAX = 8, TNL_AGENT_SERVICES_MAX = 64, TNL_AGENT_ALLOW_MAX = 64 };

struct tnl_agent_service {
    char name[64];
    struct tnl_hostport target;
    int send_proxy;             /* pass the public client's address on (PROXY v2) */
};

struct tnl_agent_cfg {
    int refs;
    struct tnl_ctx *ctx;                /* referenced */
    int events_ref;                     /* Lua dispatcher */
    int dial_ref;                       /* operator's dial hook, LUA_NOREF if none */
    char name[64];
    struct tnl_hostport relays[TNL_AGENT_RELAYS_MAX];
    int nrelays;
    char server_name[256];              /* SNI / name checked against the relay's certificate */
    struct tnl_tls_ctx *tls;            /* referenced; rebuilt when cred_dir's current generation moves */
    char cred_dir[1024];                /* enrolled credentials (pki/credstore.h), "" if static files */
    char cred_gen[64];                  /* the generation tls was built from */
    char ca[1024], pin[128];            /* how to verify the relay (kept to rebuild tls) */
    char token[1100];                   /* token authentication instead of a certificate ("" if none); wiped on free */
    struct tnl_mux_cfg mux;
    double backoff_min, backoff_max;
    double connect_timeout;
    struct tnl_agent_service services[TNL_AGENT_SERVICES_MAX];
    int nservices;
    struct tnl_hostport allow[TNL_AGENT_ALLOW_MAX];
    int nallow;
    uint64_t handle;
    struct tnl_agent_cfg *next_decl;
};

enum tnl_agent_state {
    TNL_AGENT_IDLE,
    TNL_AGENT_CONNECTING,
    TNL_AGENT_HANDSHAKE,
    TNL_AGENT_OPEN,
    TNL_AGENT_BACKOFF,
    TNL_AGENT_STOPPED,
};

struct tnl_dial;

struct tnl_agent {
    struct tnl_agent *next;
    struct tnl_agent_cfg *cfg;          /* referenced; swapped on reload */
    enum tnl_agent_state state;
    int relay_idx;                      /* relay being tried / in use */
    unsigned failures;                  /* consecutive */
    struct tnl_connect connect;
    struct tnl_io *transport;           /* TLS io until the mux owns it */
    struct tnl_mux *mux;
    struct tnl_control *control;
    struct tnl_identity relay_id;
    ev_timer timer;                     /* backoff, handshake timeout */
    double connected_at;
    uint64_t session;                   /* counts sessions, for logs */
    struct tnl_dial *dials;             /* inbound streams being served */
    unsigned streams_open;
    unsigned long long streams_total;
    int draining;
    int counted;                        /* holds a unit of loop work while a session is up */
    char renew_gen[1100];               /* generation staged for a renewal in flight, "" if none */
};

extern struct tnl_agent *tnl_agents;

struct tnl_agent_cfg *tnl_agent_cfg_new(struct tnl_ctx *ctx);
void tnl_agent_cfg_ref(struct tnl_agent_cfg *cfg);
void tnl_agent_cfg_unref(struct tnl_agent_cfg *cfg);
/* Staging: record; live: start now. Takes the caller's reference. */
int tnl_agent_declare(struct tnl_agent_cfg *cfg, char *err, size_t cap);
/* Reload: agents declared again (same name) keep their session and take the
 * new cfg (Lua is told, and exposes again); others stop; new ones start. */
void tnl_agents_apply(struct tnl_ctx *ctx);
void tnl_agent_decls_free(struct tnl_ctx *ctx);
struct tnl_agent *tnl_agent_by_handle(uint64_t handle);
void tnl_agents_drain(void);
void tnl_agents_abort(void);
void tnl_agents_close_all(void);

int tnl_agent_send(struct tnl_agent *a, const char *line, size_t len);

/* TLS context for cfg's credentials (static files, or cred_dir's current
 * generation). 0 or -1 with err. */
int tnl_agent_tls_load(struct tnl_agent_cfg *cfg, char *err, size_t cap);
/* Renewal: stage a new key and return its CSR (malloc'ed PEM); then commit
 * the certificate the relay signed. */
char *tnl_agent_renew_begin(struct tnl_agent *a, char *err, size_t cap);
int tnl_agent_renew_commit(struct tnl_agent *a, const char *cert, size_t cert_len, const char *ca, size_t ca_len,
                           char *err, size_t cap);
/* The connection or session failed or ended: log, tell Lua, retry later. */
void tnl_agent_session_lost(struct tnl_agent *a, const char *why);

/* dial.c: serve one inbound stream (the relay's PROXY v2 header first). */
void tnl_agent_stream(struct tnl_agent *a, struct tnl_io *stream);
void tnl_agent_dials_abort(struct tnl_agent *a);
/* Is hp a target this agent may dial? */
int tnl_agent_allowed(const struct tnl_agent_cfg *cfg, const struct tnl_hostport *hp);

/* The dial hook's answer (l_agent.c calls these back). */
void tnl_dial_target(struct tnl_dial *d, const struct tnl_hostport *hp);
void tnl_dial_refuse(struct tnl_dial *d, const char *why);
void tnl_dial_set_hook(struct tnl_dial *d, void *run);

#endif

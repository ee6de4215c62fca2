/*
 * relay.h — the relay: agents connect to it over mutual TLS 1.3, multiplex
 * streams over yamux, and expose services that public connections reach.
 *
 * Glossary
 *   relay cfg   what one tunnel.relay{} declared: the agent listener address,
 *               the TLS context, mux settings, the grace period, and the Lua
 *               dispatcher (lua/tunnel/relay.lua) that speaks the control
 *               protocol and calls the operator's hooks. Swapped on reload;
 *               live sessions stay.
 *   session     one agent's connection: TLS io -> mux -> a control stream
 *               plus one stream per public connection. The C side is the truth
 *               about sessions and services (a reloaded script finds them here).
 *   service     something an agent exposed: http (by Host), tls (by SNI) or
 *               tcp (its own public port). While its agent is gone it is
 *               "offline" for the grace period (HTTP 502, same port kept), then
 *               removed (the port is released).
 *   stream      opened by the relay per public connection; it starts with a
 *               PROXY v2 header: the public client's address, TLVs 0xE0
 *               (service name), 0xE1 (sniffed protocol), 0x02 (SNI or Host).
 */
#ifndef TNL_RELAY_H
#define TNL_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "loop/loop.h"
#include "lua/ctx.h"
#include "limit/shaper.h"
#include "mux/mux.h"
#include "net/listener.h"
#include "session/control.h"
#include "tls/tls.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

enum tnl_service_kind { TNL_SVC_HTTP = 0, TNL_SVC_TLS = 1, TNL_SVC_TCP = 2 };

enum { TNL_SERVICE_NAME_MAX = 64, TNL_SERVICE_HOSTS_MAX = 32, TNL_PP2_TYPE_TNL_PROTO = 0xE1 };

struct tnl_relay;
struct tnl_session;
struct tnl_entry;

struct tnl_service {
    struct tnl_service *next;           /* in the relay's registry */
    int refs;                           /* the registry's, plus one per open connection */
    int removed;                        /* out of the registry, freed at the last reference */
    struct tnl_relay *relay;            /* NULL once removed */
    struct tnl_session *session;        /* NULL while offline */
    char owner[256];                    /* identity name of the agent that exposed it */
    char name[TNL_SERVICE_NAME_MAX];
    enum tnl_service_kind kind;
    char *hosts[TNL_SERVICE_HOSTS_MAX]; /* owned, lowercase; "*.suffix" allowed */
    int nhosts;
    uint16_t port;                      /* tcp: public port */
    int send_proxy;                     /* (informational: the agent applies it) */
    struct tnl_entry *port_entry;       /* tcp: the public listener */
    struct tnl_shaper *shape_in, *shape_out;   /* per-service bandwidth (client->agent, agent->client), or NULL */
    double offline_since;
    ev_timer grace;
    unsigned long long conns, conns_open;
    unsigned long long bytes_in, bytes_out;
};

struct tnl_relay_cfg {
    int refs;
    struct tnl_ctx *ctx;                /* referenced */
    int events_ref;                     /* Lua dispatcher function(event, ...) */
    struct tnl_tls_ctx *tls;            /* referenced */
    struct tnl_mux_cfg mux;
    double grace;                       /* seconds an offline service keeps its names/port */
    double handshake_timeout;
    unsigned max_sessions;
    char tcp_bind[TNL_ADDR_HOST_MAX];   /* where tcp service ports listen ("0.0.0.0") */
    char addr[TNL_ADDR_HOST_MAX + 8];
    struct sockaddr_storage bind;
    socklen_t bindlen;
    char name[64];
    uint64_t handle;
    struct tnl_relay_cfg *next_decl;    /* in the ctx's relay declarations */

    /* Certificates this relay issues (enrollment, renewal): its CA, loaded
     * when the relay is declared. NULL without `ca`. */
    X509 *ca_cert;
    EVP_PKEY *ca_key;
    double cert_ttl;                    /* seconds, default 24 h */
    /* Enrollment listener (TLS, server certificate only): "" if none. */
    char enroll_addr[TNL_ADDR_HOST_MAX + 8];
    struct sockaddr_storage enroll_bind;
    socklen_t enroll_bindlen;
    struct tnl_tls_ctx *enroll_tls;     /* referenced */
    /* Agents may authenticate with a signed token instead of a certificate
     * (token_len > 0). Wiped when the cfg is freed. */
    uint8_t token_secret[256];
    size_t token_len;
    /* Shaping (per session, per service; each direction) and idle limits. */
    struct tnl_shaper_cfg shape_session, shape_service;
    double stream_idle;                 /* public connections to services, seconds (0: none) */
    double session_idle;                /* a session with no stream and no control message, seconds (0: none) */
};

struct tnl_session {
    struct tnl_session *next, *prev;
    struct tnl_relay *relay;
    uint64_t id;
    struct tnl_io *transport;           /* TLS io until the mux owns it */
    struct tnl_mux *mux;
    struct tnl_control *control;
    struct tnl_identity peer;
    char peer_addr[TNL_ADDR_STR_MAX];
    char hello[512];                    /* what the agent said about itself (JSON), for status */
    double started, last_active;
    ev_timer handshake_timer;
    int state;                          /* TNL_SESSION_* */
    unsigned streams_open;
    unsigned long long streams_total;
    struct tnl_shaper *shape_in, *shape_out;   /* per-session bandwidth, or NULL */
    ev_timer idle_timer;                /* idle limit; then the deadline of an orderly close */
    char closing_why[96];               /* why the relay began an orderly close ("" if it did not) */
};

/* HANDSHAKE: TLS; AUTH: no client certificate, waiting for the agent's token
 * (the first control line, "AUTH <token>"); OPEN; CLOSING: GoAway sent. */
enum { TNL_SESSION_HANDSHAKE, TNL_SESSION_AUTH, TNL_SESSION_OPEN, TNL_SESSION_CLOSING };

struct tnl_relay {
    struct tnl_relay *next;
    struct tnl_relay_cfg *cfg;          /* referenced; swapped on reload */
    struct tnl_listener l;
    struct tnl_listener enroll_l;       /* fd < 0 when not enrolling */
    struct tnl_session *sessions;
    unsigned nsessions;
    struct tnl_service *services;
    int draining;
    /* The handles of the cfgs this relay had before its last reloads: a
     * public connection accepted under one of them but routed after the
     * reload still finds its relay (tnl_relay_of_entry). */
    uint64_t past_handles[16];
    unsigned npast;
};

extern struct tnl_relay *tnl_relays;

/* ---- configuration and lifecycle (relay.c) ----------------------------- */

struct tnl_relay_cfg *tnl_relay_cfg_new(struct tnl_ctx *ctx);
void tnl_relay_cfg_ref(struct tnl_relay_cfg *cfg);
void tnl_relay_cfg_unref(struct tnl_relay_cfg *cfg);
/* Staging: record; live: open now. Takes the caller's reference. */
int tnl_relay_declare(struct tnl_relay_cfg *cfg, char *err, size_t cap);
/* Reload commit in two phases, like tnl_entries_prepare/apply/abort. */
int tnl_relays_prepare(struct tnl_ctx *ctx, struct tnl_relay **opened, char *err, size_t cap);
void tnl_relays_apply(struct tnl_ctx *ctx, struct tnl_relay *opened);
void tnl_relays_abort_opened(struct tnl_relay *opened);
void tnl_relay_decls_free(struct tnl_ctx *ctx);
struct tnl_relay *tnl_relay_by_handle(uint64_t handle);
/* The relay of a public entry's cfg, which may be from before a reload. */
struct tnl_relay *tnl_relay_of_entry(uint64_t handle);
struct tnl_relay_cfg *tnl_relay_decl_by_handle(struct tnl_ctx *ctx, uint64_t handle);
/* Drain: stop accepting, GoAway to every session. */
void tnl_relays_drain(void);
void tnl_relays_abort(void);
/* Shutdown: close every relay, its sessions and services. */
void tnl_relays_close_all(void);

struct tnl_session *tnl_session_by_id(uint64_t id);
/* Send one control line to the agent; 0 or -errno. */
int tnl_session_send(struct tnl_session *s, const char *line, size_t len);
/* End a session now (reason logged). */
void tnl_session_close(struct tnl_session *s, const char *why);

/* ---- services (registry.c) --------------------------------------------- */

struct tnl_service_spec {
    const char *name;
    enum tnl_service_kind kind;
    const char *const *hosts;
    int nhosts;
    uint16_t port;
    int send_proxy;
};

/*
 * Register (or refresh) a service for a session. The same agent identity may
 * take over its own services (a reconnect); another identity's names or port
 * are refused with a message naming the holder. 0 or -errno with err.
 */
int tnl_service_expose(struct tnl_session *s, const struct tnl_service_spec *spec, char *err, size_t cap);
int tnl_service_unexpose(struct tnl_session *s, const char *name);
/* The session went away: its services go offline for the grace period. */
void tnl_services_session_gone(struct tnl_session *s);

/* The service a public connection reaches by name: kind http for proto
 * "http" (Host), tls for "tls" (SNI). Exact names first, then the longest
 * wildcard. NULL if none. */
struct tnl_service *tnl_service_by_name(struct tnl_relay *r, const char *proto, const char *name, size_t n);
struct tnl_service *tnl_service_find(struct tnl_relay *r, const char *agent, const char *service);

/* Open a stream to the service's agent; NULL if the service is offline or the
 * session refuses new streams. */
struct tnl_io *tnl_service_open_stream(struct tnl_service *svc);
void tnl_service_ref(struct tnl_service *svc);
/* A connection to the service ended, with its byte counts. */
void tnl_service_unref(struct tnl_service *svc, uint64_t in, uint64_t out);

const char *tnl_service_kind_name(enum tnl_service_kind k);

/* Issue a client certificate for a CSR with this relay's CA: name must be the
 * CSR's CN (checked), role goes to OU. PEM of the certificate and of the CA
 * in malloc'ed strings. 0 or -errno with err. */
int tnl_relay_issue(struct tnl_relay_cfg *cfg, const char *csr_pem, size_t csr_len, const char *name,
                    const char *role, double ttl, char **cert_pem, char **ca_pem, char *err, size_t cap);

/* enroll/server.c: the enrollment listener of a relay. */
int tnl_enroll_open(struct tnl_relay *r, char *err, size_t cap);
void tnl_enroll_close(struct tnl_relay *r);

/* route.c: a public connection's default service (by SNI or Host), and the
 * routing of a relay entry without a route hook. */
struct tnl_conn;
struct tnl_service *tnl_relay_default_service(struct tnl_relay *r, const struct tnl_conn *c);
void tnl_relay_route(struct tnl_conn *c);

/* relay.c: open a tcp service's public listener; tell Lua a service is gone
 * for good (its port may be handed to someone else). */
int tnl_relay_open_port(struct tnl_service *svc, char *err, size_t cap);
void tnl_relay_service_released(struct tnl_relay *r, struct tnl_service *svc);

#endif

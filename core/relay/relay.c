/*
 * relay.c — relay lifecycle and agent sessions (see relay.h).
 *
 * A session goes: accept -> TLS 1.3 handshake (client certificate required)
 * -> authorize(id, "connect") in Lua -> yamux (server side) -> the agent's
 * first stream becomes the control channel. Its end (transport lost,
 * keepalive timeout, GoAway drained, protocol error) takes its services
 * offline for the grace period.
 */
#include "relay/relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include <sodium.h>
#include <unistd.h>

#include "limit/admission.h"
#include "lua/l_relay.h"
#include "pki/pki.h"
#include "token/token.h"
#include "router/entry.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"

struct tnl_relay *tnl_relays;
static uint64_t next_session_id;

/* ---- configuration ------------------------------------------------------ */

struct tnl_relay_cfg *tnl_relay_cfg_new(struct tnl_ctx *ctx)
{
    struct tnl_relay_cfg *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->refs = 1;
    cfg->ctx = ctx;
    tnl_ctx_ref(ctx);
    cfg->events_ref = LUA_NOREF;
    tnl_mux_cfg_defaults(&cfg->mux);
    cfg->mux.client = 0;
    cfg->grace = 60;
    cfg->handshake_timeout = 10;
    cfg->max_sessions = 10000;
    cfg->cert_ttl = 86400;
    tnl_strlcpy(cfg->tcp_bind, "0.0.0.0", sizeof cfg->tcp_bind);
    cfg->handle = tnl_entry_new_handle();
    return cfg;
}

void tnl_relay_cfg_ref(struct tnl_relay_cfg *cfg)
{
    cfg->refs++;
}

void tnl_relay_cfg_unref(struct tnl_relay_cfg *cfg)
{
    if (!cfg || --cfg->refs > 0)
        return;
    tnl_ctx_unref_value(cfg->ctx, cfg->events_ref);
    tnl_tls_ctx_unref(cfg->tls);
    tnl_tls_ctx_unref(cfg->enroll_tls);
    X509_free(cfg->ca_cert);
    EVP_PKEY_free(cfg->ca_key);         /* OpenSSL clears key material on free */
    sodium_memzero(cfg->token_secret, sizeof cfg->token_secret);
    tnl_ctx_unref(cfg->ctx);
    free(cfg);
}

/* ---- sessions ----------------------------------------------------------- */

static void log_session(enum tnl_log_level lvl, const char *event, struct tnl_session *s, const char *why)
{
    struct tnl_log l;
    if (strcmp(event, "handshake_failed") == 0)
        tnl_metrics.handshake_failures++;
    else if (strcmp(event, "session") == 0)
        tnl_metrics.sessions_opened++;
    if (!tnl_log_begin(&l, lvl, event))
        return;
    tnl_log_uint(&l, "session", s->id);
    tnl_log_str(&l, "src", s->peer_addr);
    if (s->peer.name[0]) {
        tnl_log_str(&l, "agent", s->peer.name);
        tnl_log_str(&l, "role", s->peer.role);
        tnl_log_str(&l, "via", s->peer.via);
        if (s->peer.fingerprint[0])
            tnl_log_str(&l, "fingerprint", s->peer.fingerprint);
    }
    if (why)
        tnl_log_str(&l, "reason", why);
    if (s->state != TNL_SESSION_HANDSHAKE)
        tnl_log_num(&l, "duration", tnl_now() - s->started);
    tnl_log_end(&l);
}

static void session_free(struct tnl_session *s)
{
    struct tnl_relay *r = s->relay;
    ev_timer_stop(tnl_ev, &s->handshake_timer);
    ev_timer_stop(tnl_ev, &s->idle_timer);
    tnl_shaper_unref(s->shape_in);
    tnl_shaper_unref(s->shape_out);
    tnl_control_free(s->control);
    s->control = NULL;
    if (s->mux)
        tnl_mux_free(s->mux);
    else if (s->transport)
        tnl_io_close(s->transport, 1);
    if (s->prev)
        s->prev->next = s->next;
    else
        r->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    r->nsessions--;
    free(s);
    tnl_loop_work_done();
}

static void session_end(struct tnl_session *s, const char *why);
static void session_retire(struct tnl_session *s, const char *why);

enum { RETIRE_DEADLINE = 10 };    /* seconds an orderly close may take before it is cut */

/* A session with no stream but its control stream and no control message
 * for session_idle seconds is retired (its agent reconnects when it needs
 * to). Once retiring, the same timer is the deadline. */
static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_session *s = w->data;
    struct tnl_mux_stats st;
    double limit = s->relay->cfg->session_idle;
    if (s->state == TNL_SESSION_CLOSING) {
        session_end(s, s->closing_why[0] ? s->closing_why : "close deadline");
        return;
    }
    if (limit <= 0 || !s->mux)
        return;
    tnl_mux_stats(s->mux, &st);
    double idle = tnl_now() - s->last_active;
    if (st.streams <= 1 && idle >= limit) {
        session_retire(s, "session idle timeout");
        return;
    }
    ev_timer_set(w, st.streams <= 1 ? limit - idle : limit, 0);
    ev_timer_start(tnl_ev, w);
}

static void session_opened(struct tnl_session *s)
{
    struct tnl_relay_cfg *cfg = s->relay->cfg;
    char name[96];
    snprintf(name, sizeof name, "session %llu (%s) in", (unsigned long long)s->id, s->peer.name);
    if (cfg->shape_session.rate > 0) {
        s->shape_in = tnl_shaper_new(name, &cfg->shape_session, tnl_now());
        snprintf(name, sizeof name, "session %llu (%s) out", (unsigned long long)s->id, s->peer.name);
        s->shape_out = tnl_shaper_new(name, &cfg->shape_session, tnl_now());
    }
    if (cfg->session_idle > 0) {
        ev_timer_init(&s->idle_timer, idle_cb, cfg->session_idle, 0);
        s->idle_timer.data = s;
        ev_timer_start(tnl_ev, &s->idle_timer);
    }
}

/* The one way a session ends. After an orderly close the relay began, the
 * log gives its reason rather than the transport's ("GoAway", "EOF"). */
static void session_end(struct tnl_session *s, const char *why)
{
    int was_open = s->state == TNL_SESSION_OPEN || s->state == TNL_SESSION_CLOSING;
    if (s->closing_why[0])
        why = s->closing_why;
    if (was_open) {
        tnl_services_session_gone(s);
        log_session(TNL_LOG_INFO, "session_end", s, why);
        tnl_lua_relay_end(s->relay, s, why);
    }
    session_free(s);
}

void tnl_session_close(struct tnl_session *s, const char *why)
{
    session_end(s, why);
}

/* An orderly close: tell the agent why (a session.closing notification, which
 * it logs), end the control stream after it, GoAway; the session ends when
 * the streams in flight have finished, or at the deadline (drain has its own). */
static void session_retire(struct tnl_session *s, const char *why)
{
    if (!s->mux) {
        session_end(s, why);
        return;
    }
    if (s->state == TNL_SESSION_CLOSING)
        return;
    s->state = TNL_SESSION_CLOSING;
    tnl_strlcpy(s->closing_why, why, sizeof s->closing_why);
    if (s->control) {
        struct tnl_jsonw j;
        tnl_jsonw_init(&j);
        tnl_jsonw_obj(&j, NULL);
        tnl_jsonw_str(&j, "jsonrpc", "2.0");
        tnl_jsonw_str(&j, "method", "session.closing");
        tnl_jsonw_obj(&j, "params");
        tnl_jsonw_str(&j, "reason", why);
        tnl_jsonw_end(&j, '}');
        tnl_jsonw_end(&j, '}');
        if (j.buf)
            tnl_control_send(s->control, j.buf, j.len);
        tnl_jsonw_free(&j);
        tnl_control_shutdown(s->control);
    }
    tnl_mux_goaway(s->mux, 0);
    ev_timer_stop(tnl_ev, &s->idle_timer);
    ev_timer_init(&s->idle_timer, idle_cb, RETIRE_DEADLINE, 0);
    s->idle_timer.data = s;
    ev_timer_start(tnl_ev, &s->idle_timer);
}

struct tnl_session *tnl_session_by_id(uint64_t id)
{
    for (struct tnl_relay *r = tnl_relays; r; r = r->next)
        for (struct tnl_session *s = r->sessions; s; s = s->next)
            if (s->id == id)
                return s;
    return NULL;
}

int tnl_session_send(struct tnl_session *s, const char *line, size_t len)
{
    if (!s->control)
        return -ENOTCONN;
    return tnl_control_send(s->control, line, len);
}

/* A session without a client certificate proves itself with its first
 * control line: "AUTH <token>". The token is checked here, in C; Lua only
 * sees the identity it proves (via = "token"). */
static void authenticate(struct tnl_session *s, const char *line, size_t len)
{
    struct tnl_relay_cfg *cfg = s->relay->cfg;
    struct tnl_token t;
    const char *why = "the first message must be AUTH <token>";
    char refusal[256];
    if (len > 5 && memcmp(line, "AUTH ", 5) == 0 &&
        tnl_token_verify(line + 5, len - 5, cfg->token_secret, cfg->token_len, (int64_t)time(NULL), &t, &why) ==
            TNL_TOKEN_OK) {
        tnl_strlcpy(s->peer.name, t.id, sizeof s->peer.name);
        tnl_strlcpy(s->peer.role, t.role, sizeof s->peer.role);
        s->peer.expires = t.exp;
        tnl_strlcpy(s->peer.via, "token", sizeof s->peer.via);
        if (tnl_lua_relay_session(s->relay, s, refusal, sizeof refusal) == 0) {
            s->state = TNL_SESSION_OPEN;
            s->started = s->last_active = tnl_now();
            ev_timer_stop(tnl_ev, &s->handshake_timer);
            session_opened(s);
            log_session(TNL_LOG_INFO, "session", s, NULL);
            return;
        }
        why = refusal;
        log_session(TNL_LOG_WARN, "session_refused", s, why);
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "token: %s", why);
        log_session(TNL_LOG_WARN, "handshake_failed", s, msg);
    }
    session_free(s);
}

static void control_line(struct tnl_control *c, const char *line, size_t len, void *arg)
{
    (void)c;
    struct tnl_session *s = arg;
    if (s->state == TNL_SESSION_AUTH) {
        authenticate(s, line, len);
        return;
    }
    s->last_active = tnl_now();
    tnl_lua_relay_line(s->relay, s, line, len);
}

static void control_end(struct tnl_control *c, int err, const char *why, void *arg)
{
    (void)c; (void)err;
    struct tnl_session *s = arg;
    /* The agent closed its control stream: it is leaving (drain). Close ours
     * too and send GoAway; the session ends once the streams in flight have
     * finished. Any other end of the control channel ends the session now. */
    if (err == 0 && s->mux) {
        tnl_control_free(s->control);
        s->control = NULL;
        s->state = TNL_SESSION_CLOSING;
        tnl_mux_goaway(s->mux, 0);
        return;
    }
    session_end(s, why);
}

static const struct tnl_control_cbs control_cbs = { control_line, control_end };

static void mux_stream(struct tnl_mux *m, struct tnl_io *stream, void *arg)
{
    (void)m;
    struct tnl_session *s = arg;
    if (s->control || (s->state != TNL_SESSION_OPEN && s->state != TNL_SESSION_AUTH)) {
        tnl_io_close(stream, 1);    /* agents open only the control stream */
        return;
    }
    s->control = tnl_control_new(stream, &control_cbs, s);
    if (!s->control)
        session_end(s, "out of memory");
    else if (s->state == TNL_SESSION_OPEN)
        ev_timer_stop(tnl_ev, &s->handshake_timer);     /* token sessions: once authenticated */
}

static void mux_close(struct tnl_mux *m, int err, const char *why, void *arg)
{
    (void)m; (void)err;
    session_end(arg, why);
}

static const struct tnl_mux_cbs mux_cbs = { mux_stream, mux_close };

static void tls_done(struct tnl_io *io, const char *err, void *arg)
{
    (void)io;
    struct tnl_session *s = arg;
    char why[256];
    if (err) {
        log_session(TNL_LOG_WARN, "handshake_failed", s, err);
        session_free(s);
        return;
    }
    if (tnl_tls_peer_identity(s->transport, &s->peer) < 0) {
        if (s->relay->cfg->token_len == 0) {
            log_session(TNL_LOG_WARN, "handshake_failed", s, "no client certificate");
            session_free(s);
            return;
        }
        s->state = TNL_SESSION_AUTH;    /* the token comes on the control stream */
    } else if (tnl_lua_relay_session(s->relay, s, why, sizeof why) < 0) {
        log_session(TNL_LOG_WARN, "session_refused", s, why);
        session_free(s);
        return;
    } else {
        s->state = TNL_SESSION_OPEN;
    }
    s->started = s->last_active = tnl_now();
    s->mux = tnl_mux_new(s->transport, &s->relay->cfg->mux, &mux_cbs, s);
    s->transport = NULL;        /* the mux owns it now */
    if (!s->mux) {
        session_end(s, "out of memory");
        return;
    }
    if (s->state == TNL_SESSION_OPEN) {
        session_opened(s);
        log_session(TNL_LOG_INFO, "session", s, NULL);
    }
}

static void handshake_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_session *s = w->data;
    if (s->state == TNL_SESSION_HANDSHAKE || s->state == TNL_SESSION_AUTH)
        log_session(TNL_LOG_WARN, "handshake_failed", s,
                    s->state == TNL_SESSION_AUTH ? "no token within the handshake timeout" : "handshake timeout");
    session_end(s, "no control stream within the handshake timeout");
}

static void on_accept(struct tnl_listener *l, int fd, const struct sockaddr *peer, socklen_t plen)
{
    (void)plen;
    struct tnl_relay *r = l->owner;
    if (!tnl_admit_handshake(peer, "agent handshake rate limit for this address")) {
        close(fd);
        return;
    }
    if (r->draining || r->nsessions >= r->cfg->max_sessions) {
        tnl_logf(TNL_LOG_WARN, "session_refused", "%s", r->draining ? "draining" : "max_sessions reached");
        close(fd);
        return;
    }
    struct tnl_session *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return;
    }
    s->relay = r;
    s->id = ++next_session_id;
    tnl_addr_format(peer, s->peer_addr, sizeof s->peer_addr);
    s->next = r->sessions;
    if (r->sessions)
        r->sessions->prev = s;
    r->sessions = s;
    r->nsessions++;
    tnl_loop_work_add();
    ev_timer_init(&s->handshake_timer, handshake_timeout_cb, r->cfg->handshake_timeout, 0);
    s->handshake_timer.data = s;
    ev_timer_start(tnl_ev, &s->handshake_timer);
    s->transport = tnl_tls_new(r->cfg->tls, fd, tls_done, s);
    if (!s->transport)
        session_free(s);
}

/* ---- declaration, reload, drain ---------------------------------------- */

static int same_addr(const struct tnl_relay_cfg *a, const struct sockaddr_storage *b, socklen_t blen)
{
    return a->bindlen == blen && memcmp(&a->bind, b, blen) == 0;
}

static struct tnl_relay *relay_open(struct tnl_relay_cfg *cfg, char *err, size_t cap)
{
    struct tnl_relay *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    int rc = tnl_listener_open(&r->l, (struct sockaddr *)&cfg->bind, cfg->bindlen, on_accept, r);
    if (rc < 0) {
        snprintf(err, cap, "relay '%s': cannot listen on %s: %s", cfg->name, cfg->addr, strerror(-rc));
        free(r);
        return NULL;
    }
    r->cfg = cfg;
    if (tnl_enroll_open(r, err, cap) < 0) {
        tnl_listener_close(&r->l);
        free(r);
        return NULL;
    }
    tnl_relay_cfg_ref(cfg);
    return r;
}

static void relay_link(struct tnl_relay *r)
{
    r->next = tnl_relays;
    tnl_relays = r;
    tnl_logf(TNL_LOG_INFO, "relay_listen", "relay '%s' accepting agents on %s", r->cfg->name, r->l.addr_str);
}

static void relay_close(struct tnl_relay *r)
{
    for (struct tnl_relay **pp = &tnl_relays; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    tnl_listener_close(&r->l);
    tnl_enroll_close(r);
    while (r->sessions)
        session_end(r->sessions, "relay removed from the script");
    while (r->services) {
        struct tnl_service *svc = r->services;
        r->services = svc->next;
        ev_timer_stop(tnl_ev, &svc->grace);
        if (svc->port_entry)
            tnl_entry_close(svc->port_entry);
        svc->relay = NULL;
        svc->removed = 1;
        tnl_service_unref(svc, 0, 0);
    }
    tnl_relay_cfg_unref(r->cfg);
    free(r);
}

int tnl_relay_declare(struct tnl_relay_cfg *cfg, char *err, size_t cap)
{
    struct tnl_ctx *ctx = cfg->ctx;
    if (ctx->staging) {
        struct tnl_relay_cfg **pp = &ctx->relay_decls;
        while (*pp)
            pp = &(*pp)->next_decl;
        *pp = cfg;
        return 0;
    }
    struct tnl_relay *r = relay_open(cfg, err, cap);
    tnl_relay_cfg_unref(cfg);
    if (!r)
        return -EADDRNOTAVAIL;
    relay_link(r);
    return 0;
}

static struct tnl_relay *find_live(const struct tnl_relay_cfg *d)
{
    for (struct tnl_relay *r = tnl_relays; r; r = r->next)
        if (same_addr(d, &r->cfg->bind, r->cfg->bindlen) || same_addr(d, &r->l.addr, r->l.addrlen))
            return r;
    return NULL;
}

int tnl_relays_prepare(struct tnl_ctx *ctx, struct tnl_relay **opened, char *err, size_t cap)
{
    *opened = NULL;
    for (struct tnl_relay_cfg *d = ctx->relay_decls; d; d = d->next_decl) {
        if (find_live(d))
            continue;
        struct tnl_relay *r = relay_open(d, err, cap);
        if (!r) {
            tnl_relays_abort_opened(*opened);
            *opened = NULL;
            return -EADDRNOTAVAIL;
        }
        r->next = *opened;
        *opened = r;
    }
    return 0;
}

void tnl_relays_abort_opened(struct tnl_relay *opened)
{
    while (opened) {
        struct tnl_relay *next = opened->next;
        tnl_listener_close(&opened->l);
        tnl_enroll_close(opened);
        tnl_relay_cfg_unref(opened->cfg);
        free(opened);
        opened = next;
    }
}

/* Relays not declared again close (their sessions end); kept ones take the
 * new cfg (hooks, TLS files re-read for new sessions); new ones start. */
void tnl_relays_apply(struct tnl_ctx *ctx, struct tnl_relay *opened)
{
    for (struct tnl_relay *r = tnl_relays, *next; r; r = next) {
        next = r->next;
        struct tnl_relay_cfg *d = ctx->relay_decls;
        while (d && !(same_addr(d, &r->cfg->bind, r->cfg->bindlen) || same_addr(d, &r->l.addr, r->l.addrlen)))
            d = d->next_decl;
        if (!d) {
            relay_close(r);
            continue;
        }
        struct tnl_relay_cfg *old = r->cfg;
        tnl_relay_cfg_ref(d);
        r->cfg = d;
        r->past_handles[r->npast++ % (sizeof r->past_handles / sizeof r->past_handles[0])] = old->handle;
        /* The enrollment listener follows the new cfg (its address is rarely
         * changed; a failure to bind the new one is logged, not fatal). */
        int same = old->enroll_bindlen == d->enroll_bindlen &&
                   memcmp(&old->enroll_bind, &d->enroll_bind, d->enroll_bindlen) == 0 &&
                   (r->enroll_l.fd >= 0) == (d->enroll_addr[0] != 0);
        if (!same) {
            char err[300];
            tnl_enroll_close(r);
            if (tnl_enroll_open(r, err, sizeof err) < 0)
                tnl_logf(TNL_LOG_ERROR, "reload", "%s", err);
        }
        tnl_relay_cfg_unref(old);
    }
    while (opened) {
        struct tnl_relay *next = opened->next;
        relay_link(opened);
        opened = next;
    }
    tnl_relay_decls_free(ctx);
}

void tnl_relay_decls_free(struct tnl_ctx *ctx)
{
    struct tnl_relay_cfg *d = ctx->relay_decls;
    ctx->relay_decls = NULL;
    while (d) {
        struct tnl_relay_cfg *next = d->next_decl;
        d->next_decl = NULL;
        tnl_relay_cfg_unref(d);
        d = next;
    }
}

struct tnl_relay *tnl_relay_by_handle(uint64_t handle)
{
    for (struct tnl_relay *r = tnl_relays; r; r = r->next)
        if (r->cfg->handle == handle)
            return r;
    return NULL;
}

struct tnl_relay *tnl_relay_of_entry(uint64_t handle)
{
    struct tnl_relay *r = tnl_relay_by_handle(handle);
    if (r || !handle)
        return r;
    enum { N = sizeof r->past_handles / sizeof r->past_handles[0] };
    for (r = tnl_relays; r; r = r->next)
        for (unsigned i = 0; i < N && i < r->npast; i++)
            if (r->past_handles[i] == handle)
                return r;
    return NULL;
}

struct tnl_relay_cfg *tnl_relay_decl_by_handle(struct tnl_ctx *ctx, uint64_t handle)
{
    for (struct tnl_relay_cfg *d = ctx ? ctx->relay_decls : NULL; d; d = d->next_decl)
        if (d->handle == handle)
            return d;
    return NULL;
}

void tnl_relays_drain(void)
{
    for (struct tnl_relay *r = tnl_relays; r; r = r->next) {
        r->draining = 1;
        tnl_listener_close(&r->l);
        tnl_enroll_close(r);
        for (struct tnl_session *s = r->sessions, *next; s; s = next) {
            next = s->next;
            if (!s->mux) {
                session_end(s, "draining");
                continue;
            }
            session_retire(s, "relay draining");
            ev_timer_stop(tnl_ev, &s->idle_timer);   /* the drain deadline rules */
        }
    }
}

void tnl_relays_close_all(void)
{
    while (tnl_relays)
        relay_close(tnl_relays);
}

void tnl_relays_abort(void)
{
    for (struct tnl_relay *r = tnl_relays; r; r = r->next)
        while (r->sessions)
            session_end(r->sessions, "drain deadline");
}

/* ---- tcp service ports -------------------------------------------------- */

int tnl_relay_open_port(struct tnl_service *svc, char *err, size_t cap)
{
    struct tnl_relay *r = svc->relay;
    struct tnl_entry_cfg *cfg = tnl_entry_cfg_new(NULL);
    if (!cfg) {
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    snprintf(cfg->name, sizeof cfg->name, "%s/%s", svc->owner, svc->name);
    snprintf(cfg->addr, sizeof cfg->addr, strchr(r->cfg->tcp_bind, ':') ? "[%s]:%u" : "%s:%u",
             r->cfg->tcp_bind, svc->port);
    if (tnl_addr_numeric(r->cfg->tcp_bind, svc->port, &cfg->bind, &cfg->bindlen) < 0) {
        snprintf(err, cap, "relay tcp_bind '%s' is not an IP address", r->cfg->tcp_bind);
        tnl_entry_cfg_unref(cfg);
        return -EINVAL;
    }
    cfg->no_sniff = 1;
    cfg->service = svc;
    tnl_service_ref(svc);
    svc->port_entry = tnl_entry_open_dynamic(cfg, err, cap);
    tnl_entry_cfg_unref(cfg);
    return svc->port_entry ? 0 : -EADDRINUSE;
}

void tnl_relay_service_released(struct tnl_relay *r, struct tnl_service *svc)
{
    tnl_lua_relay_released(r, svc);
}

/* ---- certificates --------------------------------------------------------- */

int tnl_relay_issue(struct tnl_relay_cfg *cfg, const char *csr_pem, size_t csr_len, const char *name,
                    const char *role, double ttl, char **cert_pem, char **ca_pem, char *err, size_t cap)
{
    char cn[256];
    *cert_pem = *ca_pem = NULL;
    if (!cfg->ca_cert || !cfg->ca_key) {
        snprintf(err, cap, "this relay has no CA to issue certificates (relay option 'ca')");
        return -ENOENT;
    }
    X509_REQ *csr = tnl_pki_csr_parse(csr_pem, csr_len, err, cap);
    if (!csr || tnl_pki_csr_check(csr, cn, sizeof cn, err, cap) < 0) {
        X509_REQ_free(csr);
        return -EINVAL;
    }
    if (strcmp(cn, name) != 0) {
        X509_REQ_free(csr);
        snprintf(err, cap, "the request's CN '%s' differs from the identity's name '%s'", cn, name);
        return -EPERM;
    }
    int64_t now = (int64_t)time(NULL);
    struct tnl_issue req = { .name = name, .role = role && *role ? role : NULL, .not_before = now,
                             .not_after = now + (int64_t)ttl, .usage = TNL_CERT_CLIENT };
    X509 *cert = tnl_pki_issue(cfg->ca_cert, cfg->ca_key, X509_REQ_get0_pubkey(csr), &req, err, cap);
    X509_REQ_free(csr);
    if (!cert)
        return -EINVAL;
    *cert_pem = tnl_pki_cert_pem(cert, NULL);
    *ca_pem = tnl_pki_cert_pem(cfg->ca_cert, NULL);
    X509_free(cert);
    if (!*cert_pem || !*ca_pem) {
        free(*cert_pem);
        free(*ca_pem);
        *cert_pem = *ca_pem = NULL;
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

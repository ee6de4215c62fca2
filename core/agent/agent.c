/*
 * agent.c — the agent's connection to its relays (see agent.h).
 *
 *   IDLE -> CONNECTING (TCP, within connect_timeout)
 *        -> HANDSHAKE  (TLS 1.3; the relay verified by CA or pin)
 *        -> OPEN       (yamux client; stream 1 is the control channel; Lua
 *                       says hello and exposes the services)
 *   any failure or the session's end -> BACKOFF -> CONNECTING (next relay)
 */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <lauxlib.h>

#include "lua/l_agent.h"
#include "pki/credstore.h"
#include "router/entry.h"
#include "util/log.h"
#include "util/str.h"

struct tnl_agent *tnl_agents;

enum { STABLE_SECONDS = 10, HANDSHAKE_SECONDS = 10 };

/* ---- configuration ------------------------------------------------------ */

struct tnl_agent_cfg *tnl_agent_cfg_new(struct tnl_ctx *ctx)
{
    struct tnl_agent_cfg *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->refs = 1;
    cfg->ctx = ctx;
    tnl_ctx_ref(ctx);
    cfg->events_ref = cfg->dial_ref = LUA_NOREF;
    tnl_mux_cfg_defaults(&cfg->mux);
    cfg->mux.client = 1;
    cfg->backoff_min = 0.2;
    cfg->backoff_max = 5;
    cfg->connect_timeout = 5;
    cfg->handle = tnl_entry_new_handle();
    return cfg;
}

void tnl_agent_cfg_ref(struct tnl_agent_cfg *cfg)
{
    cfg->refs++;
}

void tnl_agent_cfg_unref(struct tnl_agent_cfg *cfg)
{
    if (!cfg || --cfg->refs > 0)
        return;
    tnl_ctx_unref_value(cfg->ctx, cfg->events_ref);
    tnl_ctx_unref_value(cfg->ctx, cfg->dial_ref);
    sodium_memzero(cfg->token, sizeof cfg->token);
    tnl_tls_ctx_unref(cfg->tls);
    tnl_ctx_unref(cfg->ctx);
    free(cfg);
}

/* ---- logs ----------------------------------------------------------------- */

static const char *relay_str(struct tnl_agent *a, char *buf, size_t cap)
{
    const struct tnl_hostport *hp = &a->cfg->relays[a->relay_idx % a->cfg->nrelays];
    tnl_hostport_format(hp, buf, cap);
    return buf;
}

static void log_agent(enum tnl_log_level lvl, const char *event, struct tnl_agent *a, const char *why)
{
    struct tnl_log l;
    char relay[300];
    if (!tnl_log_begin(&l, lvl, event))
        return;
    tnl_log_str(&l, "agent", a->cfg->name);
    tnl_log_str(&l, "relay", relay_str(a, relay, sizeof relay));
    tnl_log_uint(&l, "session", a->session);
    if (why)
        tnl_log_str(&l, "reason", why);
    tnl_log_end(&l);
}

/* ---- connection state machine ------------------------------------------- */

static void try_connect(struct tnl_agent *a);

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct tnl_agent *a = w->data;
    if (a->state == TNL_AGENT_BACKOFF)
        try_connect(a);
    else if (a->state == TNL_AGENT_HANDSHAKE)
        tnl_agent_session_lost(a, "handshake timeout");
}

static void release_work(struct tnl_agent *a)
{
    if (a->counted) {
        a->counted = 0;
        tnl_loop_work_done();
    }
}

/* Drop whatever connection there is and schedule the next attempt. */
static void backoff(struct tnl_agent *a, const char *why)
{
    int was_open = a->state == TNL_AGENT_OPEN;
    tnl_connect_cancel(&a->connect);
    tnl_control_free(a->control);
    a->control = NULL;
    if (a->mux)
        tnl_mux_free(a->mux);
    else if (a->transport)
        tnl_io_close(a->transport, 1);
    a->mux = NULL;
    a->transport = NULL;
    if (was_open) {
        if (tnl_now() - a->connected_at >= STABLE_SECONDS)
            a->failures = 0;
        tnl_lua_agent_event(a, "disconnected", why);
    }
    release_work(a);
    ev_timer_stop(tnl_ev, &a->timer);
    if (a->draining || a->state == TNL_AGENT_STOPPED) {
        a->state = TNL_AGENT_STOPPED;
        return;
    }
    /* Fail over: the next attempt goes to the next relay in the list. */
    a->relay_idx = (a->relay_idx + 1) % a->cfg->nrelays;
    double delay = a->cfg->backoff_min;
    for (unsigned i = 0; i < a->failures && delay < a->cfg->backoff_max; i++)
        delay *= 2;
    if (delay > a->cfg->backoff_max)
        delay = a->cfg->backoff_max;
    delay *= 0.8 + 0.4 * (randombytes_uniform(1000001) / 1e6);
    a->failures++;
    a->state = TNL_AGENT_BACKOFF;
    ev_timer_set(&a->timer, delay, 0);
    ev_timer_start(tnl_ev, &a->timer);
    struct tnl_log l;
    char relay[300];
    if (tnl_log_begin(&l, was_open ? TNL_LOG_WARN : TNL_LOG_INFO, "agent_retry")) {
        tnl_log_str(&l, "agent", a->cfg->name);
        tnl_log_str(&l, "reason", why);
        tnl_log_str(&l, "next_relay", relay_str(a, relay, sizeof relay));
        tnl_log_num(&l, "in", delay);
        tnl_log_end(&l);
    }
}

void tnl_agent_session_lost(struct tnl_agent *a, const char *why)
{
    if (a->state == TNL_AGENT_OPEN)
        log_agent(TNL_LOG_WARN, "agent_disconnected", a, why);
    else
        log_agent(TNL_LOG_WARN, "agent_connect_failed", a, why);
    backoff(a, why);
}

static void control_line(struct tnl_control *c, const char *line, size_t len, void *arg)
{
    (void)c;
    tnl_lua_agent_line(arg, line, len);
}

static void control_end(struct tnl_control *c, int err, const char *why, void *arg)
{
    (void)c; (void)err;
    struct tnl_agent *a = arg;
    /* An orderly end (the relay drains, or answers our own drain): close our
     * side, GoAway, and let the streams in flight finish; the mux's end then
     * brings the reconnect (or, draining, the exit). */
    if (err == 0 && a->mux) {
        tnl_control_free(a->control);
        a->control = NULL;
        tnl_mux_goaway(a->mux, 0);
        log_agent(TNL_LOG_INFO, "agent_goaway", a, why);
        return;
    }
    /* The control stream dies with its session: say why the session ended
     * (a TLS alert from the relay, say) when it did. */
    const char *end = a->mux ? tnl_mux_end_reason(a->mux) : NULL;
    tnl_agent_session_lost(a, end ? end : why);
}

static const struct tnl_control_cbs control_cbs = { control_line, control_end };

static void mux_stream(struct tnl_mux *m, struct tnl_io *stream, void *arg)
{
    (void)m;
    struct tnl_agent *a = arg;
    if (a->draining) {
        tnl_io_close(stream, 1);
        return;
    }
    tnl_agent_stream(a, stream);
}

static void mux_close(struct tnl_mux *m, int err, const char *why, void *arg)
{
    (void)m; (void)err;
    tnl_agent_session_lost(arg, why);
}

static const struct tnl_mux_cbs mux_cbs = { mux_stream, mux_close };

static void tls_done(struct tnl_io *io, const char *err, void *arg)
{
    (void)io;
    struct tnl_agent *a = arg;
    if (err) {
        tnl_agent_session_lost(a, err);
        return;
    }
    tnl_tls_peer_identity(a->transport, &a->relay_id);
    a->mux = tnl_mux_new(a->transport, &a->cfg->mux, &mux_cbs, a);
    a->transport = NULL;
    struct tnl_io *ctl = a->mux ? tnl_mux_open(a->mux) : NULL;
    a->control = ctl ? tnl_control_new(ctl, &control_cbs, a) : NULL;
    if (!a->control) {
        tnl_agent_session_lost(a, "out of memory");
        return;
    }
    if (a->cfg->token[0]) {
        /* Token authentication: the first control line, before Lua's hello. */
        char line[sizeof a->cfg->token + 8];
        int n = snprintf(line, sizeof line, "AUTH %s", a->cfg->token);
        tnl_control_send(a->control, line, (size_t)n);
        sodium_memzero(line, sizeof line);
    }
    ev_timer_stop(tnl_ev, &a->timer);
    a->state = TNL_AGENT_OPEN;
    a->connected_at = tnl_now();
    a->counted = 1;
    tnl_loop_work_add();
    log_agent(TNL_LOG_INFO, "agent_connected", a, NULL);
    tnl_lua_agent_event(a, "connected", NULL);
}

static void tcp_done(struct tnl_connect *cn, int fd, const char *err)
{
    struct tnl_agent *a = cn->owner;
    if (fd < 0) {
        tnl_agent_session_lost(a, err);
        return;
    }
    a->state = TNL_AGENT_HANDSHAKE;
    a->transport = tnl_tls_new(a->cfg->tls, fd, tls_done, a);
    if (!a->transport) {
        tnl_agent_session_lost(a, "out of memory");
        return;
    }
    if (a->cfg->server_name[0])
        tnl_tls_set_server_name(a->transport, a->cfg->server_name);
    ev_timer_set(&a->timer, HANDSHAKE_SECONDS, 0);
    ev_timer_start(tnl_ev, &a->timer);
}

static void try_connect(struct tnl_agent *a)
{
    char gen[64], err[512];
    /* Enrolled credentials may have been renewed (or replaced by a new
     * enrollment) since the TLS context was built. */
    if (a->cfg->cred_dir[0]) {
        tnl_cred_current(a->cfg->cred_dir, gen, sizeof gen);
        if (strcmp(gen, a->cfg->cred_gen) != 0 && tnl_agent_tls_load(a->cfg, err, sizeof err) < 0)
            tnl_logf(TNL_LOG_ERROR, "agent_error", "agent '%s': %s", a->cfg->name, err);
    }
    a->session++;
    a->state = TNL_AGENT_CONNECTING;
    tnl_connect_start(&a->connect, &a->cfg->relays[a->relay_idx % a->cfg->nrelays], a->cfg->connect_timeout,
                      NULL, 0, tcp_done, a);
}

int tnl_agent_send(struct tnl_agent *a, const char *line, size_t len)
{
    if (!a->control || a->state != TNL_AGENT_OPEN)
        return -ENOTCONN;
    return tnl_control_send(a->control, line, len);
}

/* ---- declaration, reload, drain ---------------------------------------- */

static void agent_start(struct tnl_agent_cfg *cfg)
{
    struct tnl_agent *a = calloc(1, sizeof *a);
    if (!a) {
        tnl_logf(TNL_LOG_ERROR, "agent_error", "agent '%s': out of memory", cfg->name);
        return;
    }
    a->cfg = cfg;
    tnl_agent_cfg_ref(cfg);
    ev_timer_init(&a->timer, timer_cb, 0, 0);
    a->timer.data = a;
    a->next = tnl_agents;
    tnl_agents = a;
    try_connect(a);
}

static void agent_stop(struct tnl_agent *a, const char *why)
{
    for (struct tnl_agent **pp = &tnl_agents; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    a->draining = 1;
    tnl_agent_dials_abort(a);
    backoff(a, why);        /* closes the connection; draining: no retry */
    tnl_agent_cfg_unref(a->cfg);
    free(a);
}

int tnl_agent_declare(struct tnl_agent_cfg *cfg, char *err, size_t cap)
{
    (void)err; (void)cap;
    struct tnl_ctx *ctx = cfg->ctx;
    if (ctx->staging) {
        struct tnl_agent_cfg **pp = &ctx->agent_decls;
        while (*pp)
            pp = &(*pp)->next_decl;
        *pp = cfg;
        return 0;
    }
    agent_start(cfg);
    tnl_agent_cfg_unref(cfg);
    return 0;
}

void tnl_agents_apply(struct tnl_ctx *ctx)
{
    for (struct tnl_agent *a = tnl_agents, *next; a; a = next) {
        next = a->next;
        struct tnl_agent_cfg *d = ctx->agent_decls;
        while (d && strcmp(d->name, a->cfg->name) != 0)
            d = d->next_decl;
        if (!d) {
            agent_stop(a, "agent removed from the script");
            continue;
        }
        struct tnl_agent_cfg *old = a->cfg;
        tnl_agent_cfg_ref(d);
        a->cfg = d;
        tnl_agent_cfg_unref(old);
        if (a->state == TNL_AGENT_OPEN)
            tnl_lua_agent_event(a, "reconfigured", NULL);
    }
    for (struct tnl_agent_cfg *d = ctx->agent_decls; d; d = d->next_decl) {
        struct tnl_agent *a = tnl_agents;
        while (a && a->cfg != d)
            a = a->next;
        if (!a)
            agent_start(d);
    }
    tnl_agent_decls_free(ctx);
}

void tnl_agent_decls_free(struct tnl_ctx *ctx)
{
    struct tnl_agent_cfg *d = ctx->agent_decls;
    ctx->agent_decls = NULL;
    while (d) {
        struct tnl_agent_cfg *next = d->next_decl;
        d->next_decl = NULL;
        tnl_agent_cfg_unref(d);
        d = next;
    }
}

struct tnl_agent *tnl_agent_by_handle(uint64_t handle)
{
    for (struct tnl_agent *a = tnl_agents; a; a = a->next)
        if (a->cfg->handle == handle)
            return a;
    return NULL;
}

/* SIGTERM: tell the relay (GoAway), close the control channel, let the
 * streams in flight finish; the session's end releases the loop. */
void tnl_agents_drain(void)
{
    for (struct tnl_agent *a = tnl_agents; a; a = a->next) {
        a->draining = 1;
        if (a->state != TNL_AGENT_OPEN) {
            backoff(a, "draining");
            continue;
        }
        tnl_mux_goaway(a->mux, 0);
        if (a->control)     /* gone already when the relay said goodbye first */
            tnl_control_shutdown(a->control);
    }
}

void tnl_agents_close_all(void)
{
    while (tnl_agents)
        agent_stop(tnl_agents, "shutdown");
}

void tnl_agents_abort(void)
{
    for (struct tnl_agent *a = tnl_agents; a; a = a->next) {
        a->draining = 1;
        tnl_agent_dials_abort(a);
        backoff(a, "drain deadline");
    }
}

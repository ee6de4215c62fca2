/*
 * registry.c — what agents exposed, and how public connections find it
 * (see relay.h).
 */
#include "relay/relay.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/entry.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"

const char *tnl_service_kind_name(enum tnl_service_kind k)
{
    return k == TNL_SVC_HTTP ? "http" : k == TNL_SVC_TLS ? "tls" : "tcp";
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Does pattern (exact or "*.suffix") cover name[0..n)? Returns the length of
 * what matched (longer is more specific), 0 for no. */
static size_t host_match(const char *pattern, const char *name, size_t n)
{
    size_t pl = strlen(pattern);
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t sl = pl - 1;             /* ".suffix" */
        if (n > sl && strncasecmp(name + n - sl, pattern + 1, sl) == 0)
            return sl;
        return 0;
    }
    return pl == n && strncasecmp(pattern, name, n) == 0 ? pl + 1000 : 0;
}

struct tnl_service *tnl_service_by_name(struct tnl_relay *r, const char *proto, const char *name, size_t n)
{
    enum tnl_service_kind kind;
    if (strcmp(proto, "http") == 0)
        kind = TNL_SVC_HTTP;
    else if (strcmp(proto, "tls") == 0)
        kind = TNL_SVC_TLS;
    else
        return NULL;
    /* Host may carry a port: "app.example.com:8080". A trailing dot is the same name. */
    const char *colon = memchr(name, ':', n);
    if (colon && name[0] != '[')
        n = (size_t)(colon - name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    struct tnl_service *best = NULL;
    size_t best_len = 0;
    for (struct tnl_service *s = r->services; s; s = s->next) {
        if (s->kind != kind)
            continue;
        for (int i = 0; i < s->nhosts; i++) {
            size_t m = host_match(s->hosts[i], name, n);
            if (m > best_len) {
                best = s;
                best_len = m;
            }
        }
    }
    return best;
}

struct tnl_service *tnl_service_find(struct tnl_relay *r, const char *agent, const char *service)
{
    struct tnl_service *found = NULL;
    for (struct tnl_service *s = r->services; s; s = s->next) {
        if (strcmp(s->name, service) != 0 || (agent && strcmp(s->owner, agent) != 0))
            continue;
        if (!found || (s->session && !found->session))
            found = s;      /* prefer an online one when several agents use the name */
    }
    return found;
}

void tnl_service_ref(struct tnl_service *svc)
{
    svc->refs++;
}

static void service_free(struct tnl_service *svc)
{
    tnl_shaper_unref(svc->shape_in);
    tnl_shaper_unref(svc->shape_out);
    for (int i = 0; i < svc->nhosts; i++)
        free(svc->hosts[i]);
    free(svc);
}

void tnl_service_unref(struct tnl_service *svc, uint64_t in, uint64_t out)
{
    svc->bytes_in += in;
    svc->bytes_out += out;
    if (svc->session)
        svc->session->last_active = tnl_now();    /* a stream just ended: idle counts from here */
    if (svc->conns_open > 0)
        svc->conns_open--;
    if (--svc->refs == 0)
        service_free(svc);
}

static void log_service(const char *event, struct tnl_service *svc, const char *why)
{
    struct tnl_log l;
    if (!tnl_log_begin(&l, TNL_LOG_INFO, event))
        return;
    tnl_log_str(&l, "service", svc->name);
    tnl_log_str(&l, "kind", tnl_service_kind_name(svc->kind));
    tnl_log_str(&l, "agent", svc->owner);
    if (svc->kind == TNL_SVC_TCP)
        tnl_log_uint(&l, "port", svc->port);
    else if (svc->nhosts)
        tnl_log_str(&l, "host", svc->hosts[0]);
    if (why)
        tnl_log_str(&l, "reason", why);
    tnl_log_end(&l);
}

/* Take a service out of the registry: its port closes, open connections finish. */
static void service_remove(struct tnl_service *svc, const char *why)
{
    struct tnl_relay *r = svc->relay;
    for (struct tnl_service **pp = &r->services; *pp; pp = &(*pp)->next) {
        if (*pp == svc) {
            *pp = svc->next;
            break;
        }
    }
    ev_timer_stop(tnl_ev, &svc->grace);
    if (svc->port_entry)
        tnl_entry_close(svc->port_entry);
    svc->port_entry = NULL;
    svc->relay = NULL;
    svc->session = NULL;
    svc->removed = 1;
    log_service("service_removed", svc, why);
    tnl_relay_service_released(r, svc);
    tnl_service_unref(svc, 0, 0);
}

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    service_remove(w->data, "grace period over, agent did not come back");
}

/* A name or port held by another agent identity. */
static struct tnl_service *conflict(struct tnl_relay *r, const struct tnl_service_spec *spec,
                                    const char *owner, char *what, size_t cap)
{
    for (struct tnl_service *s = r->services; s; s = s->next) {
        int same_owner = strcmp(s->owner, owner) == 0;
        if (same_owner && strcmp(s->name, spec->name) == 0)
            continue;       /* our own: a refresh or a reconnect */
        if (spec->kind == TNL_SVC_TCP && s->kind == TNL_SVC_TCP && s->port == spec->port) {
            snprintf(what, cap, "port %u", spec->port);
            return s;
        }
        if (spec->kind == TNL_SVC_TCP || s->kind != spec->kind)
            continue;
        for (int i = 0; i < spec->nhosts; i++) {
            for (int j = 0; j < s->nhosts; j++) {
                if (strcasecmp(spec->hosts[i], s->hosts[j]) == 0) {
                    snprintf(what, cap, "host '%s'", s->hosts[j]);
                    return s;
                }
            }
        }
    }
    return NULL;
}

static int set_hosts(struct tnl_service *svc, const struct tnl_service_spec *spec)
{
    for (int i = 0; i < svc->nhosts; i++)
        free(svc->hosts[i]);
    svc->nhosts = 0;
    for (int i = 0; i < spec->nhosts && i < TNL_SERVICE_HOSTS_MAX; i++) {
        svc->hosts[i] = strdup(spec->hosts[i]);
        if (!svc->hosts[i])
            return -ENOMEM;
        lower(svc->hosts[i]);
        svc->nhosts = i + 1;
    }
    return 0;
}

int tnl_service_expose(struct tnl_session *s, const struct tnl_service_spec *spec, char *err, size_t cap)
{
    struct tnl_relay *r = s->relay;
    char what[300];
    struct tnl_service *holder = conflict(r, spec, s->peer.name, what, sizeof what);
    if (holder) {
        snprintf(err, cap, "%s is already exposed by agent '%s' (service '%s')", what, holder->owner, holder->name);
        return -EADDRINUSE;
    }
    struct tnl_service *svc = tnl_service_find(r, s->peer.name, spec->name);
    int fresh = svc == NULL;
    if (svc && svc->kind == TNL_SVC_TCP && (spec->kind != TNL_SVC_TCP || svc->port != spec->port))
        service_remove(svc, "re-exposed with another kind or port"), svc = NULL, fresh = 1;
    if (!svc) {
        svc = calloc(1, sizeof *svc);
        if (!svc) {
            snprintf(err, cap, "out of memory");
            return -ENOMEM;
        }
        svc->refs = 1;
        svc->relay = r;
        tnl_strlcpy(svc->owner, s->peer.name, sizeof svc->owner);
        tnl_strlcpy(svc->name, spec->name, sizeof svc->name);
        ev_timer_init(&svc->grace, grace_cb, r->cfg->grace, 0);
        svc->grace.data = svc;
        if (r->cfg->shape_service.rate > 0) {
            char name[128];
            snprintf(name, sizeof name, "service %s/%s in", svc->owner, svc->name);
            svc->shape_in = tnl_shaper_new(name, &r->cfg->shape_service, tnl_now());
            snprintf(name, sizeof name, "service %s/%s out", svc->owner, svc->name);
            svc->shape_out = tnl_shaper_new(name, &r->cfg->shape_service, tnl_now());
        }
    }
    svc->kind = spec->kind;
    svc->port = spec->port;
    svc->send_proxy = spec->send_proxy;
    svc->session = s;
    svc->offline_since = 0;
    ev_timer_stop(tnl_ev, &svc->grace);
    if (set_hosts(svc, spec) < 0 ||
        (svc->kind == TNL_SVC_TCP && !svc->port_entry && tnl_relay_open_port(svc, err, cap) < 0)) {
        if (!err[0])
            snprintf(err, cap, "out of memory");
        if (fresh)
            service_free(svc);
        else
            service_remove(svc, err);
        return -EADDRNOTAVAIL;
    }
    if (fresh) {
        svc->next = r->services;
        r->services = svc;
    }
    log_service(fresh ? "expose" : "expose_refresh", svc, NULL);
    return 0;
}

int tnl_service_unexpose(struct tnl_session *s, const char *name)
{
    struct tnl_service *svc = tnl_service_find(s->relay, s->peer.name, name);
    if (!svc || svc->session != s)
        return -ENOENT;
    service_remove(svc, "unexposed by its agent");
    return 0;
}

void tnl_services_session_gone(struct tnl_session *s)
{
    for (struct tnl_service *svc = s->relay->services; svc; svc = svc->next) {
        if (svc->session != s)
            continue;
        svc->session = NULL;
        svc->offline_since = tnl_now();
        ev_timer_set(&svc->grace, s->relay->cfg->grace, 0);
        ev_timer_start(tnl_ev, &svc->grace);
        log_service("service_offline", svc, "agent session ended");
    }
}

struct tnl_io *tnl_service_open_stream(struct tnl_service *svc)
{
    struct tnl_session *s = svc->session;
    if (!s || !s->mux || s->state != TNL_SESSION_OPEN)
        return NULL;
    struct tnl_io *io = tnl_mux_open(s->mux);
    if (!io)
        return NULL;
    s->last_active = tnl_now();
    svc->conns++;
    svc->conns_open++;
    tnl_metrics.streams_opened++;
    s->streams_total++;
    s->last_active = tnl_now();
    return io;
}

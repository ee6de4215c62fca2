/*
 * status.c — GET /status: the runtime's state as JSON, built from the C
 * structures (so it is right even while a script reloads).
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "limit/admission.h"
#include "loop/loop.h"
#include "mgmt/mgmt.h"
#include "relay/relay.h"
#include "router/conn.h"
#include "router/entry.h"
#include "util/metrics.h"

double tnl_started_at;      /* wall clock, set by tnl_runtime_init */

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void identity(struct tnl_jsonw *j, const struct tnl_identity *id)
{
    tnl_jsonw_obj(j, "identity");
    tnl_jsonw_str(j, "name", id->name);
    tnl_jsonw_str(j, "role", id->role);
    tnl_jsonw_str(j, "via", id->via);
    if (id->fingerprint[0])
        tnl_jsonw_str(j, "fingerprint", id->fingerprint);
    tnl_jsonw_num(j, "expires", (double)id->expires);
    tnl_jsonw_end(j, '}');
}

/* "shaping": {"in": {...}, "out": {...}} when either direction is limited. */
static void shaper(struct tnl_jsonw *j, const char *key, const struct tnl_shaper *sh)
{
    if (!sh)
        return;
    tnl_jsonw_obj(j, key);
    tnl_jsonw_num(j, "rate", tnl_shaper_rate(sh));
    tnl_jsonw_num(j, "bytes", (double)sh->bytes);
    if (sh->cfg.quota > 0) {
        /* The window turns over lazily, on the next byte: show it turned. */
        double age = tnl_now() - sh->window_start;
        int turned = age >= sh->cfg.window;
        tnl_jsonw_num(j, "quota", sh->cfg.quota);
        tnl_jsonw_num(j, "quota_used", turned ? 0 : sh->window_bytes);
        tnl_jsonw_num(j, "window_left", turned ? sh->cfg.window : sh->cfg.window - age);
        tnl_jsonw_bool(j, "over_quota", !turned && sh->over_quota);
    }
    tnl_jsonw_end(j, '}');
}

static void shaping(struct tnl_jsonw *j, const struct tnl_shaper *in, const struct tnl_shaper *out)
{
    if (!in && !out)
        return;
    tnl_jsonw_obj(j, "shaping");
    shaper(j, "in", in);
    shaper(j, "out", out);
    tnl_jsonw_end(j, '}');
}

static void session(struct tnl_jsonw *j, const struct tnl_session *s)
{
    struct tnl_mux_stats st;
    tnl_jsonw_obj(j, NULL);
    tnl_jsonw_num(j, "id", (double)s->id);
    identity(j, &s->peer);
    tnl_jsonw_str(j, "src", s->peer_addr);
    tnl_jsonw_str(j, "state", s->state == TNL_SESSION_CLOSING ? "closing" : "open");
    tnl_jsonw_num(j, "uptime", tnl_now() - s->started);
    tnl_jsonw_num(j, "idle", tnl_now() - s->last_active);
    tnl_jsonw_num(j, "last_activity", wall() - (tnl_now() - s->last_active));
    if (s->mux) {
        tnl_mux_stats(s->mux, &st);
        tnl_jsonw_num(j, "streams", st.streams);
        tnl_jsonw_num(j, "streams_total", (double)st.streams_opened);
        tnl_jsonw_num(j, "bytes_in", (double)st.bytes_in);
        tnl_jsonw_num(j, "bytes_out", (double)st.bytes_out);
        if (st.rtt >= 0)
            tnl_jsonw_num(j, "rtt", st.rtt);
    }
    shaping(j, s->shape_in, s->shape_out);
    tnl_jsonw_end(j, '}');
}

static void service(struct tnl_jsonw *j, const struct tnl_service *svc)
{
    tnl_jsonw_obj(j, NULL);
    tnl_jsonw_str(j, "service", svc->name);
    tnl_jsonw_str(j, "agent", svc->owner);
    tnl_jsonw_str(j, "kind", tnl_service_kind_name(svc->kind));
    if (svc->kind == TNL_SVC_TCP)
        tnl_jsonw_num(j, "port", svc->port);
    tnl_jsonw_arr(j, "hosts");
    for (int i = 0; i < svc->nhosts; i++)
        tnl_jsonw_str(j, NULL, svc->hosts[i]);
    tnl_jsonw_end(j, ']');
    tnl_jsonw_bool(j, "online", svc->session != NULL);
    if (!svc->session)
        tnl_jsonw_num(j, "offline_for", tnl_now() - svc->offline_since);
    tnl_jsonw_num(j, "connections", (double)svc->conns);
    tnl_jsonw_num(j, "connections_open", (double)svc->conns_open);
    uint64_t in, out;
    tnl_conn_live_bytes(svc, &in, &out);
    tnl_jsonw_num(j, "bytes_in", (double)(svc->bytes_in + in));
    tnl_jsonw_num(j, "bytes_out", (double)(svc->bytes_out + out));
    shaping(j, svc->shape_in, svc->shape_out);
    tnl_jsonw_end(j, '}');
}

static void relays(struct tnl_jsonw *j)
{
    tnl_jsonw_arr(j, "relays");
    for (struct tnl_relay *r = tnl_relays; r; r = r->next) {
        tnl_jsonw_obj(j, NULL);
        tnl_jsonw_str(j, "name", r->cfg->name);
        tnl_jsonw_str(j, "addr", r->l.fd >= 0 ? r->l.addr_str : r->cfg->addr);
        if (r->enroll_l.fd >= 0)
            tnl_jsonw_str(j, "enroll", r->enroll_l.addr_str);
        tnl_jsonw_arr(j, "sessions");
        for (struct tnl_session *s = r->sessions; s; s = s->next)
            if (s->state == TNL_SESSION_OPEN || s->state == TNL_SESSION_CLOSING)
                session(j, s);
        tnl_jsonw_end(j, ']');
        tnl_jsonw_arr(j, "services");
        for (struct tnl_service *svc = r->services; svc; svc = svc->next)
            service(j, svc);
        tnl_jsonw_end(j, ']');
        tnl_jsonw_end(j, '}');
    }
    tnl_jsonw_end(j, ']');
}

static const char *agent_state(enum tnl_agent_state s)
{
    static const char *const names[] = { "idle", "connecting", "handshake", "open", "backoff", "stopped" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

static void agents(struct tnl_jsonw *j)
{
    tnl_jsonw_arr(j, "agents");
    for (struct tnl_agent *a = tnl_agents; a; a = a->next) {
        const struct tnl_hostport *hp = &a->cfg->relays[a->relay_idx % a->cfg->nrelays];
        char relay[300];
        tnl_hostport_format(hp, relay, sizeof relay);
        tnl_jsonw_obj(j, NULL);
        tnl_jsonw_str(j, "name", a->cfg->name);
        tnl_jsonw_str(j, "state", agent_state(a->state));
        tnl_jsonw_str(j, "relay", relay);
        tnl_jsonw_num(j, "streams", a->streams_open);
        tnl_jsonw_num(j, "streams_total", (double)a->streams_total);
        if (a->state == TNL_AGENT_OPEN)
            tnl_jsonw_num(j, "uptime", tnl_now() - a->connected_at);
        tnl_jsonw_end(j, '}');
    }
    tnl_jsonw_end(j, ']');
}

static void connections(struct tnl_jsonw *j)
{
    tnl_jsonw_arr(j, "listeners");
    for (struct tnl_entry *e = tnl_entries; e; e = e->next) {
        tnl_jsonw_obj(j, NULL);
        tnl_jsonw_str(j, "name", e->cfg->name);
        tnl_jsonw_str(j, "addr", e->l.addr_str);
        tnl_jsonw_num(j, "accepted", (double)e->l.accepted);
        if (e->cfg->service)
            tnl_jsonw_str(j, "service", e->cfg->service->name);
        tnl_jsonw_end(j, '}');
    }
    tnl_jsonw_end(j, ']');
    tnl_jsonw_obj(j, "connections");
    tnl_jsonw_num(j, "open", tnl_conn_count());
    tnl_jsonw_num(j, "accepted", (double)tnl_metrics.conns_accepted);
    tnl_jsonw_obj(j, "rejected");
    for (int i = 0; i < TNL_R_MAX; i++)
        tnl_jsonw_num(j, tnl_reason_names[i], (double)tnl_metrics.conns_rejected[i]);
    tnl_jsonw_end(j, '}');
    uint64_t in, out;
    tnl_conn_live_bytes(NULL, &in, &out);
    tnl_jsonw_num(j, "bytes_in", (double)(tnl_metrics.bytes_in + in));
    tnl_jsonw_num(j, "bytes_out", (double)(tnl_metrics.bytes_out + out));
    tnl_jsonw_end(j, '}');
}

void tnl_mgmt_status(struct tnl_jsonw *j)
{
    tnl_jsonw_obj(j, NULL);
    tnl_jsonw_str(j, "version", TNL_VERSION);
    tnl_jsonw_num(j, "pid", (double)getpid());
    tnl_jsonw_num(j, "uptime", tnl_started_at ? wall() - tnl_started_at : 0);
    tnl_jsonw_bool(j, "draining", tnl_loop_draining());
    connections(j);
    relays(j);
    agents(j);
    tnl_admission_status(j);
    tnl_jsonw_end(j, '}');
}

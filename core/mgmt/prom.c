/*
 * prom.c — GET /metrics in the Prometheus text exposition format (0.0.4):
 * every family with HELP and TYPE lines; counters end in _total; histogram
 * buckets are cumulative with an +Inf bucket, _sum and _count.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lua/hook.h"
#include "mgmt/mgmt.h"
#include "relay/relay.h"
#include "router/conn.h"
#include "util/metrics.h"

static void put(struct tnl_jsonw *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The writer's buffer, used for plain text. */
static void put(struct tnl_jsonw *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || o->failed)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8192;
        while (cap < o->len + (size_t)n + 1)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->failed = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, line, (size_t)n + 1);
    o->len += (size_t)n;
}

static void family(struct tnl_jsonw *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct tnl_jsonw *o, const char *name, const char *help, unsigned long long v)
{
    family(o, name, "counter", help);
    put(o, "%s %llu\n", name, v);
}

static void gauge(struct tnl_jsonw *o, const char *name, const char *help, double v)
{
    family(o, name, "gauge", help);
    put(o, "%s %.17g\n", name, v);
}

static void hook_histograms(struct tnl_jsonw *o)
{
    family(o, "tunnel_hook_duration_seconds", "histogram", "CPU time spent in Lua hooks, per call.");
    for (int h = 0; h < TNL_HK_MAX; h++) {
        const struct tnl_histogram *hist = &tnl_metrics.hook_latency[h];
        unsigned long long cum = 0;
        for (int b = 0; b < TNL_HIST_BUCKETS; b++) {
            cum += hist->counts[b];
            put(o, "tunnel_hook_duration_seconds_bucket{hook=\"%s\",le=\"%g\"} %llu\n", tnl_hook_kind_names[h],
                tnl_hist_bounds[b], cum);
        }
        cum += hist->counts[TNL_HIST_BUCKETS];
        put(o, "tunnel_hook_duration_seconds_bucket{hook=\"%s\",le=\"+Inf\"} %llu\n", tnl_hook_kind_names[h], cum);
        put(o, "tunnel_hook_duration_seconds_sum{hook=\"%s\"} %.9g\n", tnl_hook_kind_names[h], hist->sum);
        put(o, "tunnel_hook_duration_seconds_count{hook=\"%s\"} %llu\n", tnl_hook_kind_names[h], hist->count);
    }
}

static void live_gauges(struct tnl_jsonw *o)
{
    unsigned sessions = 0, streams = 0, agents_up = 0;
    struct tnl_mux_stats st;
    for (struct tnl_relay *r = tnl_relays; r; r = r->next) {
        for (struct tnl_session *s = r->sessions; s; s = s->next) {
            if (s->state != TNL_SESSION_OPEN && s->state != TNL_SESSION_CLOSING)
                continue;
            sessions++;
            if (s->mux) {
                tnl_mux_stats(s->mux, &st);
                streams += st.streams;
            }
        }
    }
    for (struct tnl_agent *a = tnl_agents; a; a = a->next) {
        if (a->state == TNL_AGENT_OPEN)
            agents_up++;
        streams += a->streams_open;
    }
    gauge(o, "tunnel_sessions", "Agent sessions open on this relay.", sessions);
    gauge(o, "tunnel_streams", "Multiplexed streams open (relay sessions and agents).", streams);
    gauge(o, "tunnel_agents_connected", "Agents of this process with a session to a relay.", agents_up);
    gauge(o, "tunnel_connections_open", "Public connections open (sniffing, routing or spliced).", tnl_conn_count());
}

void tnl_mgmt_metrics(struct tnl_jsonw *o)
{
    const struct tnl_metrics *m = &tnl_metrics;
    counter(o, "tunnel_connections_accepted_total", "Public connections accepted.", m->conns_accepted);
    family(o, "tunnel_connections_rejected_total", "counter", "Public connections refused, by reason.");
    for (int i = 0; i < TNL_R_MAX; i++)
        put(o, "tunnel_connections_rejected_total{reason=\"%s\"} %llu\n", tnl_reason_names[i], m->conns_rejected[i]);
    family(o, "tunnel_bytes_total", "counter", "Bytes of public connections, from (in) and to (out) clients.");
    uint64_t in, out;
    tnl_conn_live_bytes(NULL, &in, &out);
    put(o, "tunnel_bytes_total{direction=\"in\"} %llu\n", (unsigned long long)(m->bytes_in + in));
    put(o, "tunnel_bytes_total{direction=\"out\"} %llu\n", (unsigned long long)(m->bytes_out + out));
    counter(o, "tunnel_streams_opened_total", "Streams the relay opened to agents.", m->streams_opened);
    counter(o, "tunnel_sessions_opened_total", "Agent sessions established.", m->sessions_opened);
    counter(o, "tunnel_handshake_failures_total", "Agent handshakes that failed (TLS, certificate, token).",
            m->handshake_failures);
    counter(o, "tunnel_hook_errors_total", "Hook calls that failed (raised, over budget, bad result).",
            tnl_hook_errors);
    family(o, "tunnel_admission_refused_total", "counter", "New work refused by admission limits, by kind.");
    put(o, "tunnel_admission_refused_total{kind=\"connection\"} %llu\n", m->admission_rejected_conn);
    put(o, "tunnel_admission_refused_total{kind=\"handshake\"} %llu\n", m->admission_rejected_handshake);
    family(o, "tunnel_enrollments_total", "counter", "Enrollment requests, by result.");
    put(o, "tunnel_enrollments_total{result=\"issued\"} %llu\n", m->enrollments);
    put(o, "tunnel_enrollments_total{result=\"refused\"} %llu\n", m->enrollments_refused);
    counter(o, "tunnel_renewals_total", "Certificates renewed for agents.", m->renewals);
    counter(o, "tunnel_shaping_waits_total", "Times a bandwidth limit paused reading from a sender.",
            m->shaper_waits);
    counter(o, "tunnel_quota_exceeded_total", "Times a session or service used up its quota and fell to the trickle.",
            m->quota_exceeded);
    counter(o, "tunnel_management_requests_total", "Requests to the management endpoint.", m->mgmt_requests);
    hook_histograms(o);
    live_gauges(o);
}

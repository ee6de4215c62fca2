#!/bin/bash
# 300-ops-metrics — the management endpoint of a relay with an agent (in its
# namespace) and real traffic: /health; /metrics is valid Prometheus text
# (promtool check metrics) and its counters move with the traffic (accepted,
# bytes, streams, no-route refusals, handshake failures, hook errors), the
# byte counter even while a long transfer is still running; /status has the
# session (identity as the certificate says, source address, bytes, last
# activity) and the services (tcp port, http hosts, bytes, connections);
# `tunnel status` prints them for humans and --json for programs; with a
# token_file (applied by a reload), requests without the right Bearer token
# get 401 and with it 200. The agent's own endpoint (where it runs) shows it
# connected.
. "$(dirname "$0")/ops_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert box web || bail "agent cert"

P_AG=$(free_port); P_PUB=$(free_port); P_M=$(free_port); P_PUMP=$(free_port); P_WEB=$(free_port)
P_AM=$(free_port)     # the agent's own endpoint, on the loopback where it runs
read -r R_LO R_HI < <(free_range 3) || bail "no port range"
M=127.0.0.1:$P_M
ns_pump pump "$P_PUMP" || bail "pump server"
ns_http web "$P_WEB" "metered page" || bail "nginx"

# relay_script [TOKEN-FILE]
relay_script() {
  local tok=
  [ -n "${1:-}" ] && tok=", token_file = \"$1\""
  write_script "$WORK/relay.lua.tmp" <<EOF
local tunnel = require "tunnel"
tunnel.config{ management = { addr = "$M"$tok } }
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(relay_tls),
  ports = { range = { $R_LO, $R_HI }, bind = "127.0.0.1" },
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB", route = function(conn)
  if conn.host == "boom.test" then error("boom on purpose") end
  return conn.service
end }
EOF
  mv "$WORK/relay.lua.tmp" "$WORK/relay.lua"
}
relay_script
write_script "$WORK/agent.lua" <<EOF
local tunnel = require "tunnel"
tunnel.config{ management = { addr = "127.0.0.1:$P_AM" } }
tunnel.agent{
  name = "box",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $(agent_tls box),
  services = {
    { service = "bulk", kind = "tcp", port = "auto", target = "127.0.0.1:$P_PUMP" },
    { service = "web", kind = "http", hosts = { "app.test" }, target = "127.0.0.1:$P_WEB" },
  },
}
EOF
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
wait_exposed "$RLOG" bulk && wait_exposed "$RLOG" web || bail "the agent did not expose its services"
SP=$(exposed_port "$RLOG" bulk)
wait_port "$SP" 5 127.0.0.1 || bail "the relay does not listen on the bulk port $SP"

# --- /health ----------------------------------------------------------------------
expect_eq "GET /health: 200" 200 "$(mcode "$M" /health)"
expect_eq "... body {\"status\":\"ok\"}" '{"status":"ok"}' "$(mbody "$M" /health)"
expect_eq "an unknown path: 404" 404 "$(mcode "$M" /nope)"

# --- /metrics before and after traffic ----------------------------------------------
scrape "$M" "$WORK/m0.prom"
ctype=$(curl -s -o /dev/null -D - --max-time 5 "http://$M/metrics" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-type" { print $2 }')
expect_eq "/metrics is served as Prometheus text 0.0.4" "text/plain; version=0.0.4; charset=utf-8" "$ctype"

# Traffic: 5 HTTP requests, 1 no-route, 1 hook error, an 8 MiB upload and a
# paced 24 MiB download (4 MiB/s, 6 s) scraped twice while it runs.
codes=
for i in 1 2 3 4 5; do codes+="$(hcode app.test "$P_PUB") "; done
expect_eq "5 requests through the relay's public entry" "200 200 200 200 200 " "$codes"
expect_eq "a Host nobody exposes: 404" 404 "$(hcode nobody.test "$P_PUB")"
expect_eq "a Host whose route hook raises: 502" 502 "$(hcode boom.test "$P_PUB")"
sleep 0.5 | timeout 10 openssl s_client -connect "$RELAY_IP:$P_AG" -servername relay.test \
  -CAfile "$TPKI/ca/ca.crt" -tls1_3 > /dev/null 2>&1
wait_jlog "$RLOG" 5 event=handshake_failed || diag "no handshake_failed logged for a certificate-less client"
up=$(ops send 127.0.0.1 "$SP" "SINK -" --bytes $((8 << 20)) --max 30)
expect_match "an 8 MiB upload through the bulk tcp service arrives whole" '"reply": "n=8388608 ' "$up"
scrape "$M" "$WORK/m1.prom"
expect_between "right after the upload, bytes_total{in} has moved by its 8 MiB" $((8 << 20)) $(((8 << 20) + 65536)) \
  "$(mdelta "$WORK/m0.prom" "$WORK/m1.prom" 'tunnel_bytes_total{direction="in"}')"

start dl "$PY" "$OPS_PY" recv 127.0.0.1 "$SP" "SRC 4194304 0 25165824" --samples "$WORK/dl.smp" --max 30
size_gt() { [ "$(tail -n 1 "$1" 2>/dev/null | awk '{ print $2 }')" -gt "$2" ] 2>/dev/null; }
wait_until 10 size_gt "$WORK/dl.smp" $((2 << 20)) || diag "the paced download did not start"
scrape "$M" "$WORK/mA.prom"; tA=$(now)
mbody "$M" /status > "$WORK/sA.json"
sleep 2
scrape "$M" "$WORK/mB.prom"; tB=$(now)
mbody "$M" /status > "$WORK/sB.json"
alive dl || diag "the download ended before the second scrape: the check below proves less"
live=$(mdelta "$WORK/mA.prom" "$WORK/mB.prom" 'tunnel_bytes_total{direction="out"}')
want=$(calc "4194304 * ($tB - $tA)")
expect_between "bytes_total{out} grows DURING a 4 MiB/s download (2 scrapes $(calc "$tB - $tA") s apart: bytes)" \
  "$(calc "$want * 0.6")" "$(calc "$want * 1.4")" "$live"
expect_eq "... connections_open is 1 while it runs" 1 "$(mval "$WORK/mB.prom" tunnel_connections_open)"
expect_between "... tunnel_streams counts its stream (and the control stream)" 2 3 "$(mval "$WORK/mB.prom" tunnel_streams)"
svc_live() { jq_py "[s for s in d['relays'][0]['services'] if s['service'] == 'bulk'][0]['$1']" < "$2"; }
expect_eq "... /status: the bulk service has 1 connection open" 1 "$(svc_live connections_open "$WORK/sB.json")"
grow=$(awk -v a="$(svc_live bytes_out "$WORK/sA.json")" -v b="$(svc_live bytes_out "$WORK/sB.json")" 'BEGIN { print b - a }')
check "... and its bytes_out grows while the connection is open ($grow bytes in $(calc "$tB - $tA") s)" \
  test "$grow" -gt $((4 << 20))
wait_exit dl 20
dl=$(cat "$WORK/dl.log")
expect_match "the paced download ran to its end (24 MiB in 6 s)" '"bytes": 25165824, .*"end": "eof"' "$dl"
sleep 0.3
scrape "$M" "$WORK/m2.prom"

if command -v promtool >/dev/null; then
  check "promtool check metrics: the scrape after traffic is valid and lint-clean" \
    bash -c "promtool check metrics < '$WORK/m2.prom'"
  check "... and so is the one taken during the transfer" bash -c "promtool check metrics < '$WORK/mB.prom'"
else
  skip "promtool check metrics" "promtool not installed (Debian: prometheus)"
fi
for fam in tunnel_connections_accepted_total tunnel_connections_rejected_total tunnel_bytes_total \
    tunnel_streams_opened_total tunnel_sessions_opened_total tunnel_handshake_failures_total \
    tunnel_hook_errors_total tunnel_admission_refused_total tunnel_hook_duration_seconds \
    tunnel_sessions tunnel_streams tunnel_connections_open; do
  grep -q "^# TYPE $fam " "$WORK/m2.prom" || missing+=" $fam"
done
expect_eq "every documented family has a TYPE line" "" "${missing:-}"

d() { mdelta "$WORK/m0.prom" "$WORK/m2.prom" "$1"; }
# 5 + 1 + 1 HTTP connections, the upload, the download
expect_eq "connections_accepted_total moved by the 9 connections made" 9 "$(d tunnel_connections_accepted_total)"
expect_eq "streams_opened_total moved by the 7 that reached the agent" 7 "$(d tunnel_streams_opened_total)"
expect_eq "connections_rejected_total{no_route} counted the unknown Host" 1 \
  "$(d 'tunnel_connections_rejected_total{reason="no_route"}')"
expect_eq "hook_errors_total counted the raising route hook" 1 "$(d tunnel_hook_errors_total)"
expect_eq "connections_rejected_total{hook} too" 1 "$(d 'tunnel_connections_rejected_total{reason="hook"}')"
expect_eq "handshake_failures_total counted the client without a certificate" 1 "$(d tunnel_handshake_failures_total)"
in_d=$(d 'tunnel_bytes_total{direction="in"}'); out_d=$(d 'tunnel_bytes_total{direction="out"}')
expect_between "bytes_total{in} moved by the upload (8 MiB) and the requests" $((8 << 20)) $(((8 << 20) + 65536)) "$in_d"
expect_between "bytes_total{out} moved by the download (24 MiB) and the pages" $((24 << 20)) $(((24 << 20) + 65536)) "$out_d"
hk=$(awk '/^tunnel_hook_duration_seconds_count\{hook="route"\}/ { print $2 }' "$WORK/m2.prom")
check "the hook latency histogram counted the route hook calls ($hk)" test "${hk:-0}" -ge 7
expect_eq "gauges at rest: 1 session, 0 connections open" "1 0" \
  "$(mval "$WORK/m2.prom" tunnel_sessions) $(mval "$WORK/m2.prom" tunnel_connections_open)"
expect_eq "sessions_opened_total is 1" 1 "$(mval "$WORK/m2.prom" tunnel_sessions_opened_total)"

# --- /status ---------------------------------------------------------------------------
mbody "$M" /status > "$WORK/s.json"
st() { jq_py "$1" < "$WORK/s.json" 2>&1; }
FP=$("$TUNNEL" cert show "$TPKI/box/box.crt" | awk '$1 == "fingerprint:" { print $2 }')
S0="d['relays'][0]['sessions'][0]"
expect_eq "/status: one session, identity box / web / via cert" "1 box web cert" \
  "$(st "len(d['relays'][0]['sessions']), ${S0}['identity']['name'], ${S0}['identity']['role'], ${S0}['identity']['via']" | tr -d "(),'")"
expect_eq "... its fingerprint is the certificate's (tunnel cert show)" "$FP" "$(st "${S0}['identity']['fingerprint']")"
expect_match "... its src is where the agent connected from" "^$AGENT_IP:[0-9]+\$" "$(st "${S0}['src']")"
check "... its bytes (in $(st "${S0}['bytes_in']"), out $(st "${S0}['bytes_out']")) cover the transfers" \
  test "$(st "int(${S0}['bytes_in'] >= 24 << 20 and ${S0}['bytes_out'] >= 8 << 20)")" = 1
la=$(st "${S0}['last_activity']"); nowt=$(date +%s.%N)
expect_between "... its last_activity is a Unix time within 30 s of now (now - last_activity)" 0 30 \
  "$(calc "$nowt - ${la:-0}")"
[ "$(calc "$nowt - ${la:-0} < 0 || $nowt - ${la:-0} > 30")" != 0.000 ] &&
  diag "PRODUCT BUG: /status last_activity = $(grep -o '"last_activity":[^,]*' "$WORK/s.json") (raw JSON): a" \
    "wall time written with %.6g (core/util/log.c tnl_json_number), i.e. only 6 significant digits"
B="[s for s in d['relays'][0]['services'] if s['service'] == 'bulk'][0]"
W="[s for s in d['relays'][0]['services'] if s['service'] == 'web'][0]"
expect_eq "... service bulk: tcp, port $SP, agent box, online" "tcp $SP box True" \
  "$(st "${B}['kind'], ${B}['port'], ${B}['agent'], ${B}['online']" | tr -d "(),'")"
expect_eq "... service web: http, hosts [app.test], online" "http ['app.test'] True" \
  "$(st "${W}['kind'] + ' ' + str(${W}['hosts']) + ' ' + str(${W}['online'])")"
expect_eq "... bulk: 2 connections, 8 MiB in, 24 MiB out (+ the command lines)" "2 1 1" \
  "$(st "${B}['connections'], int(8 << 20 <= ${B}['bytes_in'] < (8 << 20) + 100), int(24 << 20 <= ${B}['bytes_out'] < (24 << 20) + 100)" | tr -d "(),")"
expect_eq "... web: the 5 requests" 5 "$(st "${W}['connections']")"
expect_eq "... connections: accepted and rejected like /metrics" \
  "$(mval "$WORK/m2.prom" tunnel_connections_accepted_total) 1" \
  "$(st "d['connections']['accepted'], d['connections']['rejected']['no_route']" | tr -d "(),")"
check "... listeners: the public entry and the bulk port" \
  test "$(st "sorted(l['addr'] for l in d['listeners']) == sorted(['127.0.0.1:$P_PUB', '127.0.0.1:$SP'])")" = True

# --- tunnel status ---------------------------------------------------------------------
out=$("$TUNNEL" status --management "$M" 2>&1); rc=$?
expect_eq "tunnel status exits 0" 0 "$rc"
expect_match "... prints the session: name, role, via, source" \
  "session 1 +box +role web +via cert +from $AGENT_IP:[0-9]+" "$out"
expect_match "... the tcp service with its port" "service bulk +tcp +agent box +port $SP +online +2 conns" "$out"
expect_match "... the http service with its hosts" "service web +http +agent box +app\.test +online +5 conns" "$out"
expect_match "... the connection counts" "connections: 0 open, [0-9]+ accepted" "$out"
diag "$out"
out=$("$TUNNEL" status --management "$M" --json 2>&1)
expect_eq "tunnel status --json prints /status (the session's fingerprint)" "$FP" \
  "$(printf '%s' "$out" | jq_py "${S0}['identity']['fingerprint']" 2>&1)"

# --- the agent's own endpoint -----------------------------------------------------------
am=$(in_ns curl -s --max-time 5 "http://127.0.0.1:$P_AM/status")
expect_eq "the agent's /status: agent box, open, connected to the relay" "box open $RELAY_IP:$P_AG" \
  "$(jq_py "'%s %s %s' % (d['agents'][0]['name'], d['agents'][0]['state'], d['agents'][0]['relay'])" <<< "$am" 2>&1)"
check "... it counted the streams it served (streams_total >= 7)" \
  test "$(jq_py "d['agents'][0]['streams_total'] >= 7" <<< "$am" 2>&1)" = True
in_ns curl -s --max-time 5 "http://127.0.0.1:$P_AM/metrics" > "$WORK/agent.prom"
expect_eq "the agent's /metrics: tunnel_agents_connected 1" 1 "$(mval "$WORK/agent.prom" tunnel_agents_connected)"
if command -v promtool >/dev/null; then
  check "... promtool check metrics passes on it too" bash -c "promtool check metrics < '$WORK/agent.prom'"
fi

# --- a Bearer token, applied by a reload -----------------------------------------------------
TOKEN=$(openssl rand -hex 24)
printf '%s\n' "$TOKEN" > "$WORK/mgmt.token"
chmod 600 "$WORK/mgmt.token"
relay_script "$WORK/mgmt.token"
signal relay HUP
wait_jlog "$RLOG" 10 event=reload ok=true || bail "the reload with a token_file failed" "$(jlines "$RLOG" event=reload)"
expect_eq "with a token_file: no Authorization header: 401" 401 "$(mcode "$M" /metrics)"
expect_eq "... a wrong token: 401" 401 "$(mcode "$M" /metrics "x$TOKEN")"
expect_eq "... a prefix of the token: 401" 401 "$(mcode "$M" /status "${TOKEN:0:16}")"
expect_eq "... /health too needs it: 401" 401 "$(mcode "$M" /health)"
hdr=$(curl -s -D - -o /dev/null --max-time 5 "http://$M/metrics" | tr -d '\r')
expect_match "... the 401 says how to authenticate" 'WWW-Authenticate: Bearer' "$hdr"
expect_eq "... the right token: 200" 200 "$(mcode "$M" /metrics "$TOKEN")"
expect_eq "... /status with it: 200" 200 "$(mcode "$M" /status "$TOKEN")"
out=$("$TUNNEL" status --management "$M" 2>&1); rc=$?
expect_match "tunnel status without --token-file: fails and says 401" "^1 .*401" "$rc $out"
out=$("$TUNNEL" status --management "$M" --token-file "$WORK/mgmt.token" 2>&1); rc=$?
expect_match "tunnel status --token-file: works" "^0 .*session 1 +box" "$rc $out"
expect_eq "the agent kept its session through the reload" 1 "$(sessions "$RLOG")"
expect_eq "... and still serves" 200 "$(hcode app.test "$P_PUB")"

stop agent
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

#!/bin/bash
# 320-ops-flood — admission limits under a connection flood, while an
# established agent session carries a bulk transfer.
#
# The relay has limits = { connections_per_ip = {rate = 50, burst = 100},
# handshakes_per_ip = {rate = 5, burst = 10}, max_pending_sniffs = 20 }.
# A download through a tcp service is paced at a rate well within what this
# machine can carry (a share of the unpaced rate measured first, so that the
# comparison is about the relay, not about two noisy cores being busy), and
# its throughput is sampled at the receiving end: the median of 250 ms
# intervals over 3 s alone, then again while
#   - 5,000 TCP connection attempts from one source (127.0.0.2) hit another
#     tcp service's public port: most are refused at accept (counted in
#     tunnel_admission_refused_total and rejected{reason="limit"}), about
#     burst + rate x duration are let in, and the transfer keeps >= 80 % of
#     its baseline;
#   - 3,000 connection attempts from 127.0.0.3 hit the relay's agent port:
#     most are refused before any TLS work (admission_refused{handshake}),
#     the agent's session is untouched and the transfer keeps >= 80 %.
# Then max_pending_sniffs: 30 silent connections to the sniffing public
# entry, 20 are held while the rest are refused, and once they are gone
# a request is served again.
# e2e: solo (it measures throughput or timing: tests/run-e2e runs it alone)
. "$(dirname "$0")/ops_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert box web || bail "agent cert"

P_AG=$(free_port); P_PUB=$(free_port); P_M=$(free_port); P_PUMP=$(free_port); P_DOOR=$(free_port)
P_WEB=$(free_port)
read -r R_LO R_HI < <(free_range 3) || bail "no port range"
M=127.0.0.1:$P_M
ns_pump pump "$P_PUMP" || bail "pump server"
ns_pump door "$P_DOOR" || bail "door server"
ns_http web "$P_WEB" "still here" || bail "nginx"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
tunnel.config{
  management = { addr = "$M" },
  limits = {
    connections_per_ip = { rate = 50, burst = 100 },
    handshakes_per_ip = { rate = 5, burst = 10 },
    max_pending_sniffs = 20,
  },
}
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(relay_tls),
  ports = { range = { $R_LO, $R_HI }, bind = "127.0.0.1" },
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
write_script "$WORK/agent.lua" <<EOF
local tunnel = require "tunnel"
tunnel.config{ management = false }
tunnel.agent{
  name = "box",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $(agent_tls box),
  services = {
    { service = "bulk", kind = "tcp", port = "auto", target = "127.0.0.1:$P_PUMP" },
    { service = "door", kind = "tcp", port = "auto", target = "127.0.0.1:$P_DOOR" },
    { service = "web", kind = "http", hosts = { "app.test" }, target = "127.0.0.1:$P_WEB" },
  },
}
EOF
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
for s in bulk door web; do wait_exposed "$RLOG" $s || bail "the agent did not expose $s"; done
BULK=$(exposed_port "$RLOG" bulk); DOOR=$(exposed_port "$RLOG" door)
wait_port "$BULK" 5 && wait_port "$DOOR" 5 || bail "the relay does not listen on the tcp services' ports"

# --- the pace of the bulk transfer -------------------------------------------------------
cap=$(ops recv 127.0.0.1 "$BULK" "SRC 0 0" --max 1.5 | jq_py "int(d['bytes'] / d['seconds'])")
PACE=$(awk -v c="${cap:-0}" 'BEGIN { p = int(c * 0.35); if (p > 100663296) p = 100663296; print p }')
[ "$PACE" -ge 4194304 ] || bail "the tunnel carried only ${cap:-0} B/s unpaced"
diag "unpaced: $(calc "$cap / 1048576") MiB/s; the bulk transfer is paced at $(calc "$PACE / 1048576") MiB/s"

start bulk "$PY" "$OPS_PY" recv 127.0.0.1 "$BULK" "SRC $PACE 0" --samples "$WORK/bulk.smp" --max 50 --stop "$WORK/bulk.stop"
bytes_gt() { [ "$(tail -n 1 "$WORK/bulk.smp" 2>/dev/null | awk '{ print $2 }')" -gt "$1" ] 2>/dev/null; }
wait_until 10 bytes_gt "$PACE" || bail "the bulk transfer did not start" "$(cat "$WORK/bulk.log")"
t0=$(now); sleep 3; t1=$(now)
BASE=$(ops medians "$WORK/bulk.smp" "$t0" "$t1" 0.25)
diag "baseline: median $(calc "$BASE / 1048576") MiB/s over 250 ms intervals, mean $(calc "$(ops rate "$WORK/bulk.smp" "$t0" "$t1") / 1048576") MiB/s"
expect_between "the paced transfer runs at its pace alone (median / pace)" 0.9 1.1 "$(calc "$BASE / $PACE")"

# --- 5,000 connection attempts from one source --------------------------------------------
scrape "$M" "$WORK/m0.prom"
ta=$(now)
FLOOD=$(ops flood 127.0.0.1 "$DOOR" 5000 --src 127.0.0.2 --rate 1700 --conc 400 --hold 0.5)
tb=$(now)
scrape "$M" "$WORK/m1.prom"
secs=$(calc "$tb - $ta")
DUR=$(calc "$(jq_py "d['seconds']" <<< "$FLOOD")")
diag "flood (127.0.0.2 -> door port $DOOR): $FLOOD"
during=$(ops medians "$WORK/bulk.smp" "$ta" "$tb" 0.25)
diag "during the flood: median $(calc "$during / 1048576") MiB/s, mean $(calc "$(ops rate "$WORK/bulk.smp" "$ta" "$tb") / 1048576") MiB/s over $secs s"
expect_between "the bulk transfer keeps >= 80% of its baseline during the connection flood (ratio of medians)" \
  0.8 10 "$(calc "$during / $BASE")"
refused=$(mdelta "$WORK/m0.prom" "$WORK/m1.prom" 'tunnel_admission_refused_total{kind="connection"}')
limit=$(mdelta "$WORK/m0.prom" "$WORK/m1.prom" 'tunnel_connections_rejected_total{reason="limit"}')
acc=$(mdelta "$WORK/m0.prom" "$WORK/m1.prom" tunnel_connections_accepted_total)
expect_between "most of the 5,000 are refused: tunnel_admission_refused_total{kind=\"connection\"} moved by" \
  4000 5000 "$refused"
expect_eq "... and rejected{reason=\"limit\"} by as many" "$refused" "$limit"
expect_between "... those let in are about burst 100 + 50/s x ${DUR}s (accepted_total moved by)" \
  60 "$(calc "100 + 50 * $DUR + 60")" "$acc"
expect_eq "... refused + accepted = the 5,000 attempts" 5000 $((refused + acc))
expect_between "the flooder saw most connections closed at once (of 5,000)" 4000 5000 "$(jq_py "d['closed']" <<< "$FLOOD")"
check "the refusals are logged, rate-limited (admission_refused, src 127.0.0.2, a few lines with 'suppressed')" \
  test "$(jcount "$RLOG" event=admission_refused src=127.0.0.2)" -le 10 -a \
       "$(jcount "$RLOG" event=admission_refused src=127.0.0.2 'suppressed?')" -ge 1
st=$(mbody "$M" /status)
expect_eq "/status limits: connections_per_ip rate 50, burst 100, refused as counted" "50 100 $refused" \
  "$(jq_py "'%d %d %d' % (d['limits']['connections_per_ip']['rate'], d['limits']['connections_per_ip']['burst'], d['limits']['connections_per_ip']['refused'])" <<< "$st")"
expect_eq "another source (127.0.0.1) is still served during the refusals" "still here" "$(hbody app.test "$P_PUB")"

# --- a handshake flood on the agent port ------------------------------------------------------
scrape "$M" "$WORK/m2.prom"
ta=$(now)
FLOOD=$(ops flood "$RELAY_IP" "$P_AG" 3000 --src 127.0.0.3 --rate 1000 --conc 400 --hold 0.5)
tb=$(now)
scrape "$M" "$WORK/m3.prom"
DUR=$(jq_py "d['seconds']" <<< "$FLOOD")
diag "handshake flood (127.0.0.3 -> agent port $RELAY_IP:$P_AG): $FLOOD"
during=$(ops medians "$WORK/bulk.smp" "$ta" "$tb" 0.25)
diag "during it: median $(calc "$during / 1048576") MiB/s"
expect_between "the bulk transfer keeps >= 80% of its baseline during the handshake flood" \
  0.8 10 "$(calc "$during / $BASE")"
hs=$(mdelta "$WORK/m2.prom" "$WORK/m3.prom" 'tunnel_admission_refused_total{kind="handshake"}')
hf=$(mdelta "$WORK/m2.prom" "$WORK/m3.prom" tunnel_handshake_failures_total)
expect_between "most of the 3,000 are refused before TLS: admission_refused_total{kind=\"handshake\"} moved by" \
  2500 3000 "$hs"
expect_between "... the handshakes let in (and failed: no ClientHello) are about burst 10 + 5/s x ${DUR}s" \
  1 "$(calc "10 + 5 * $DUR + 15")" "$hf"
expect_eq "... refused + failed = the 3,000 attempts" 3000 $((hs + hf))
expect_eq "the agent kept its one session through both floods" "1 0" \
  "$(sessions "$RLOG") $(jcount "$RLOG" event=session_end)"
expect_eq "... tunnel_sessions is 1, sessions_opened_total did not move" "1 0" \
  "$(mval "$WORK/m3.prom" tunnel_sessions) $(mdelta "$WORK/m2.prom" "$WORK/m3.prom" tunnel_sessions_opened_total)"

touch "$WORK/bulk.stop"
wait_exit bulk 10
expect_match "the bulk transfer ran throughout (stopped by us, not cut)" '"end": "stop"' "$(cat "$WORK/bulk.log")"

# --- max_pending_sniffs: 20 connections being sniffed at most --------------------------------------
start silent "$PY" -c '
import socket, sys, time
socks = []
for i in range(30):
    s = socket.socket(); s.bind(("127.0.0.4", 0)); s.connect(("127.0.0.1", int(sys.argv[1]))); socks.append(s)
print("connected", flush=True)
time.sleep(3)
' "$P_PUB"
wait_log "$WORK/silent.log" connected 10 || bail "the silent clients did not connect"
sleep 0.5
st=$(mbody "$M" /status)
expect_eq "30 silent connections to the sniffing entry: 20 are held (connections open)" 20 \
  "$(jq_py "d['connections']['open']" <<< "$st")"
check "... the others were refused (admission_refused: too many connections being sniffed)" \
  jhas "$RLOG" event=admission_refused "reason~being sniffed"
code=$(hcode app.test "$P_PUB")
expect_match "... meanwhile a new client is refused too (the cap is global): no answer" '^000$' "$code"
wait_exit silent 10
none_open() { [ "$(mbody "$M" /status | jq_py "d['connections']['open']")" = 0 ]; }
wait_until 5 none_open
expect_eq "... once they are gone, a request is served again" "still here" "$(hbody app.test "$P_PUB")"

stop agent
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

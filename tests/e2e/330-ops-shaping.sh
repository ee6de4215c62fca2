#!/bin/bash
# 330-ops-shaping — bandwidth shaping and quotas on the relay, measured at the
# receiving end (the client for downloads, the server behind the agent for
# uploads).
#
# Relay "rates": shaping = { service = {rate = 1 MiB/s}, session = {rate =
# 1.5 MiB/s} }, one agent with two tcp services:
#   - a download and an upload at once on one service: each direction runs at
#     1 MiB/s (+-10 %) over 10 s, and arrives whole (shaping never drops);
#   - downloads on both services at once: together they are held to the
#     session's 1.5 MiB/s (+-10 %), neither starved;
#   - /status shows the rates in force.
# Relay "quota": shaping.service = {rate = 1 MiB/s, quota = 2.5 MiB, window =
# 6 s, trickle = 128 KiB/s}: a download runs at the full rate until the quota
# is used ("quota_exceeded"), then at the trickle (/status: over_quota) until
# the window turns over ("quota_reset", ~6 s after the first byte), then at
# the full rate again.
# e2e: solo (it measures throughput or timing: tests/run-e2e runs it alone)
. "$(dirname "$0")/ops_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert box web || bail "agent cert"
agent_cert qbox web || bail "agent cert"

P_AG=$(free_port); P_AG2=$(free_port); P_M=$(free_port); P_M2=$(free_port)
P_PUMP=$(free_port)
read -r R_LO R_HI < <(free_range 4) || bail "no port range"
M=127.0.0.1:$P_M; M2=127.0.0.1:$P_M2
MiB=1048576
ns_pump pump "$P_PUMP" || bail "pump server"

write_script "$WORK/rates.lua" <<EOF
local tunnel = require "tunnel"
tunnel.config{ management = { addr = "$M" } }
assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(relay_tls),
  ports = { range = { $R_LO, $((R_LO + 1)) }, bind = "127.0.0.1" },
  shaping = {
    service = { rate = $MiB },
    session = { rate = $((MiB * 3 / 2)) },
  },
})
EOF
write_script "$WORK/quota.lua" <<EOF
local tunnel = require "tunnel"
tunnel.config{ management = { addr = "$M2" } }
assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG2",
  tls = $(relay_tls),
  ports = { range = { $((R_LO + 2)), $R_HI }, bind = "127.0.0.1" },
  shaping = { service = { rate = $MiB, quota = $((MiB * 5 / 2)), window = 6, trickle = 131072 } },
})
EOF
# agent_lua NAME RELAY-PORT SERVICES...
agent_lua() {
  local name=$1 port=$2 svcs='' s
  shift 2
  for s in "$@"; do
    svcs+="{ service = \"$s\", kind = \"tcp\", port = \"auto\", target = \"127.0.0.1:$P_PUMP\" },"
  done
  write_script "$WORK/$name.lua" <<EOF
local tunnel = require "tunnel"
tunnel.config{ management = false }
tunnel.agent{ name = "$name", relays = { "$RELAY_IP:$port" }, tls = $(agent_tls "$name"), services = { $svcs } }
EOF
}
agent_lua box "$P_AG" one two
agent_lua qbox "$P_AG2" q

start_relay rates "$WORK/rates.lua" || bail "relay rates did not start"
start_relay quota "$WORK/quota.lua" || bail "relay quota did not start"
start_agent box "$WORK/box.lua" || bail "agent box did not start"
start_agent qbox "$WORK/qbox.lua" || bail "agent qbox did not start"
for s in one two; do wait_exposed "$WORK/rates.log" $s || bail "box did not expose $s"; done
wait_exposed "$WORK/quota.log" q || bail "qbox did not expose q"
ONE=$(exposed_port "$WORK/rates.log" one); TWO=$(exposed_port "$WORK/rates.log" two)
Q=$(exposed_port "$WORK/quota.log" q)
for p in "$ONE" "$TWO" "$Q"; do wait_port "$p" 5 || bail "the relay does not listen on $p"; done

# first_byte SAMPLES: the time the first bytes arrived.
first_byte() { awk '$2 > 0 { print $1; exit }' "$1"; }
started() { [ -n "$(first_byte "$1" 2>/dev/null)" ]; }
mibs() { calc "$1 / $MiB"; }

# --- one service, both directions at once: 1 MiB/s each ------------------------------------
start down "$PY" "$OPS_PY" recv 127.0.0.1 "$ONE" "SRC 0 0" --samples "$WORK/down.smp" --max 40 --stop "$WORK/one.stop"
start up "$PY" "$OPS_PY" send 127.0.0.1 "$ONE" "SINK $WORK/up.smp" --max 40 --stop "$WORK/one.stop"
wait_until 10 started "$WORK/down.smp" && wait_until 10 started "$WORK/up.smp" ||
  bail "the transfers did not start" "$(cat "$WORK/down.log" "$WORK/up.log")"
sleep 1
mbody "$M" /status > "$WORK/s1.json"
t0=$(now); sleep 10; t1=$(now)
touch "$WORK/one.stop"
rd=$(ops rate "$WORK/down.smp" "$t0" "$t1"); ru=$(ops rate "$WORK/up.smp" "$t0" "$t1")
diag "service rate 1 MiB/s: download $(mibs "$rd") MiB/s, upload $(mibs "$ru") MiB/s over $(calc "$t1 - $t0") s"
expect_between "download through a service shaped to 1 MiB/s, over 10 s at the client (MiB/s)" 0.9 1.1 "$(mibs "$rd")"
expect_between "upload at the same time, over 10 s at the server behind the agent (MiB/s)" 0.9 1.1 "$(mibs "$ru")"
wait_exit up 30
reply=$(jq_py "'%d %s' % (d['sent'], d['reply'])" < "$WORK/up.log" 2>&1)
expect_match "... the upload arrived whole: the server counted every byte sent (shaping drops nothing)" \
  '^([0-9]+) n=\1 sha256=' "$reply"
wait_exit down 10
S="[s for s in d['relays'][0]['services'] if s['service'] == 'one'][0]['shaping']"
expect_eq "/status: service 'one' shaped at 1 MiB/s in and out" "$MiB $MiB" \
  "$(jq_py "'%d %d' % (${S}['in']['rate'], ${S}['out']['rate'])" < "$WORK/s1.json" 2>&1)"
SS="d['relays'][0]['sessions'][0]['shaping']"
expect_eq "/status: the session shaped at 1.5 MiB/s in and out" "$((MiB * 3 / 2)) $((MiB * 3 / 2))" \
  "$(jq_py "'%d %d' % (${SS}['in']['rate'], ${SS}['out']['rate'])" < "$WORK/s1.json" 2>&1)"

# --- two services at once: the session's 1.5 MiB/s ------------------------------------------
start d1 "$PY" "$OPS_PY" recv 127.0.0.1 "$ONE" "SRC 0 0" --samples "$WORK/d1.smp" --max 40 --stop "$WORK/two.stop"
start d2 "$PY" "$OPS_PY" recv 127.0.0.1 "$TWO" "SRC 0 0" --samples "$WORK/d2.smp" --max 40 --stop "$WORK/two.stop"
wait_until 10 started "$WORK/d1.smp" && wait_until 10 started "$WORK/d2.smp" || bail "the downloads did not start"
sleep 1
t0=$(now); sleep 6; t1=$(now)
touch "$WORK/two.stop"
r1=$(ops rate "$WORK/d1.smp" "$t0" "$t1"); r2=$(ops rate "$WORK/d2.smp" "$t0" "$t1")
diag "two services at once: $(mibs "$r1") + $(mibs "$r2") MiB/s"
expect_between "downloads on two services at once are held to the session's 1.5 MiB/s together (MiB/s)" \
  1.35 1.65 "$(mibs "$((r1 + r2))")"
expect_between "... neither is starved (the smaller one's share of the total)" 0.25 0.5 \
  "$(calc "($r1 < $r2 ? $r1 : $r2) / ($r1 + $r2)")"
wait_exit d1 10; wait_exit d2 10

# --- quota, trickle, and the window turning over ---------------------------------------------
start qd "$PY" "$OPS_PY" recv 127.0.0.1 "$Q" "SRC 0 0" --samples "$WORK/q.smp" --max 40 --stop "$WORK/q.stop"
wait_until 10 started "$WORK/q.smp" || bail "the quota download did not start"
T0=$(first_byte "$WORK/q.smp")
QLOG=$WORK/quota.log
if wait_jlog "$QLOG" 10 event=quota_exceeded; then
  TX=$(jts "$QLOG" event=quota_exceeded)
  ok "quota_exceeded is logged: $(jlast "$QLOG" msg event=quota_exceeded)"
else
  bail "no quota_exceeded in 10 s" "$(tail -n 5 "$QLOG")"
fi
expect_between "... once about 2.5 MiB have passed at 1 MiB/s (s after the first byte)" 1.5 3.5 "$(ts_delta "$T0" "$TX")"
sleep 1
mbody "$M2" /status > "$WORK/sq.json"
out=$("$TUNNEL" status --management "$M2" 2>&1)
QS="[s for s in d['relays'][0]['services'] if s['service'] == 'q'][0]['shaping']['out']"
expect_eq "/status while over quota: over_quota true, rate = the trickle, quota 2.5 MiB" \
  "True 131072 $((MiB * 5 / 2))" \
  "$(jq_py "'%s %d %d' % (${QS}['over_quota'], ${QS}['rate'], ${QS}['quota'])" < "$WORK/sq.json" 2>&1)"
check "... quota_used >= quota, 0 < window_left < 6" \
  test "$(jq_py "${QS}['quota_used'] >= ${QS}['quota'] and 0 < ${QS}['window_left'] < 6" < "$WORK/sq.json" 2>&1)" = True
expect_match "tunnel status says it is over quota" "service q .*limit .*out 128\\.0 KiB/s, over quota until" "$out"
if wait_jlog "$QLOG" 10 event=quota_reset; then
  mbody "$M2" /status > "$WORK/sq2.json"
  TR=$(jts "$QLOG" event=quota_reset)
  ok "quota_reset is logged: $(jlast "$QLOG" msg event=quota_reset)"
else
  bail "no quota_reset within 10 s" "$(tail -n 5 "$QLOG")"
fi
expect_between "... when the 6 s window turns over (s after the first byte)" 5.5 7 "$(ts_delta "$T0" "$TR")"
full=$(ops rate "$WORK/q.smp" "$(calc "$T0 + 0.5")" "$(calc "$TX - 0.2")")
trickle=$(ops rate "$WORK/q.smp" "$(calc "$TX + 0.5")" "$(calc "$TR - 0.2")")
expect_between "before the quota: the full 1 MiB/s (MiB/s)" 0.85 1.15 "$(mibs "$full")"
expect_between "over quota: the 128 KiB/s trickle (KiB/s)" 108 148 "$(calc "$trickle / 1024")"
check "... /status just after: over_quota false, quota_used counting again from 0" \
  test "$(jq_py "${QS}['over_quota'] == False and 0 <= ${QS}['quota_used'] < ${QS}['quota'] / 2" < "$WORK/sq2.json" 2>&1)" = True
wait_until 5 past "$(calc "$TR + 1.6")"
back=$(ops rate "$WORK/q.smp" "$(calc "$TR + 0.3")" "$(calc "$TR + 1.5")")
expect_between "after quota_reset: back to the full rate (MiB/s)" 0.85 1.15 "$(mibs "$back")"
touch "$WORK/q.stop"
wait_exit qd 10
expect_match "the quota download was slowed, never cut" '"end": "stop"' "$(cat "$WORK/qd.log")"
diag "quota: full $(mibs "$full") MiB/s, over quota at +$(ts_delta "$T0" "$TX") s, trickle $(calc "$trickle / 1024") KiB/s, reset at +$(ts_delta "$T0" "$TR") s, then $(mibs "$back") MiB/s"

stop box; stop qbox
stop rates; stop quota

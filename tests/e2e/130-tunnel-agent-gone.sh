#!/bin/bash
# 130-tunnel-agent-gone — an agent that dies (kill -9): the relay answers 502
# for its HTTP name and closes connections to its tcp port cleanly; after the
# grace period (grace = 5) the port stops listening, the name is forgotten
# (404) and the log has service_removed. An agent restarted within the grace
# period gets its names and the same port back, without them ever being
# removed.
. "$(dirname "$0")/tunnel_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert leaver web || bail "agent cert"

P_AG=$(free_port); P_PUB=$(free_port); P_WEB=$(free_port); P_ECHO=$(free_port)
read -r R_LO R_HI < <(free_range 3) || bail "no port range"
ns_http web "$P_WEB" "leaver's page" || bail "nginx"
ns_py echo banner "$P_ECHO" "echo-service" || bail "echo server"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(relay_tls),
  ports = { range = { $R_LO, $R_HI }, state = "$WORK/ports.json", bind = "127.0.0.1" },
  grace = 5,                                 -- room for the checks within it on a busy machine
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
write_script "$WORK/agent.lua" <<EOF
local tunnel = require "tunnel"
tunnel.agent{
  name = "leaver",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $(agent_tls leaver),
  services = {
    { service = "web", kind = "http", hosts = { "app.test" }, target = "127.0.0.1:$P_WEB" },
    { service = "echo", kind = "tcp", port = "auto", target = "127.0.0.1:$P_ECHO" },
  },
}
EOF
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
wait_exposed "$RLOG" web && wait_exposed "$RLOG" echo || bail "the agent did not expose"
PORT=$(exposed_port "$RLOG" echo)
expect_eq "while the agent is up: HTTP 200" 200 "$(hcode app.test "$P_PUB")"
expect_eq "while the agent is up: its tcp port $PORT serves" "echo-service|ping" "$(banner_of "$PORT")"

# --- the agent dies ----------------------------------------------------------------
kill9 agent
wait_jlog "$RLOG" 5 event=service_offline service=echo || bail "the relay did not notice the agent's death"
code=$(hcode app.test "$P_PUB")
# 30 clients that send at once (as psql does) and find the relay busy: it is
# stopped (SIGSTOP) for the moment they connect and send, so their bytes are
# there when it gets to them. Each must see a clean close (FIN) or a refusal,
# never a reset (a close with unread bytes is a reset).
clients_connected() { [ "$(ss -Htn state established "( dport = :$PORT )" | wc -l)" -ge 30 ]; }
signal relay STOP
tcp_outcome "$PORT" 30 > "$WORK/burst.out" 2>&1 &
burst=$!
wait_until 5 clients_connected
signal relay CONT
wait "$burst"
out=$(cat "$WORK/burst.out")
t_gone=$(jts "$RLOG" event=service_offline service=echo)
expect_between "the checks below ran within the grace period (s since the relay saw the agent go)" 0 5 "$(elapsed "$t_gone")"
expect_eq "agent gone: the relay answers 502 for its HTTP name" 502 "$code"
check "... and logs why (the agent is offline)" \
  jhas "$RLOG" event=reject "reason~agent 'leaver' of service 'web' is offline"
expect_match "agent gone: connections to its tcp port are closed cleanly (or refused), never reset" \
  '^(closed=30|refused=30)$' "$out"
check "... and the relay logs why" \
  jhas "$RLOG" event=reject listener=leaver/echo "reason~agent 'leaver' of service 'echo' is offline"

if wait_jlog "$RLOG" 9 event=service_removed service=echo; then
  expect_between "service_removed comes after the 5 s grace (s after service_offline, log times)" 4.9 6 \
    "$(ts_delta "$t_gone" "$(jts "$RLOG" event=service_removed service=echo)")"
else
  not_ok "service_removed is logged after the grace period" "$(tail -n 5 "$RLOG")"
fi
check "service_removed for the HTTP service too, with the reason" \
  jhas "$RLOG" event=service_removed service=web "reason~grace"
check "the tcp port is no longer listening" wait_until 2 port_closed "$PORT"
expect_eq "a connection to it is refused" refused "$(tcp_outcome "$PORT")"
expect_eq "the name is forgotten: 404" 404 "$(hcode app.test "$P_PUB")"

# --- it comes back (after the grace: sticky port) ---------------------------------
start_agent agent-b "$WORK/agent.lua" || bail "the agent did not start again"
wait_sessions "$RLOG" 2 10 || bail "no second session"
wait_until 5 hok app.test "$P_PUB"
expect_eq "an agent back after the grace period serves its name again" 200 "$(hcode app.test "$P_PUB")"
wait_until 5 _listening "$PORT"
expect_eq "... and gets its old port back (sticky allocation)" "$PORT" "$(exposed_port "$RLOG" echo)"

# --- kill -9 and restart within the grace period -----------------------------------
removed=$(jcount "$RLOG" event=service_removed)
refreshed=$(jcount "$RLOG" event=expose_refresh)
kill9 agent-b
start_agent agent-c "$WORK/agent.lua" || bail "the agent did not start a third time"
wait_sessions "$RLOG" 3 10 || bail "no third session"
refreshed_twice() { [ "$(jcount "$RLOG" event=expose_refresh)" -ge $((refreshed + 2)) ]; }
if wait_until 5 refreshed_twice; then
  expect_between "restarted within the grace period, it re-exposed (s after service_offline, log times)" 0 4.9 \
    "$(ts_delta "$(jts "$RLOG" event=service_offline service=echo)" "$(jts "$RLOG" event=expose_refresh service=echo)")"
else
  not_ok "the restarted agent re-exposed its services (expose_refresh)" "$(tail -n 8 "$RLOG")"
fi
expect_eq "its names answer at once" 200 "$(hcode app.test "$P_PUB")"
expect_eq "the same port, serving" "echo-service|ping" "$(banner_of "$PORT")"
expect_eq "... the same port in the relay's log" "$PORT" "$(exposed_port "$RLOG" echo)"
sleep 5.5   # past the grace period of the kill -9: nothing may be removed now
expect_eq "nothing was removed: no new service_removed after the grace period" "$removed" \
  "$(jcount "$RLOG" event=service_removed)"
expect_eq "still serving after the grace period" 200 "$(hcode app.test "$P_PUB")"
check "the port still listens" _listening "$PORT"

stop agent-c
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

#!/bin/bash
# 120-tunnel-failover — the agent comes back on its own: after kill -9 and a
# restart of the relay it serves again within 5 s, and its tcp service has
# the same public port (the relay's ports state file); with two relays in its
# list, stopping the first moves it to the second. Throughout, the agent has
# no listening socket (ss -ltunp where it runs).
. "$(dirname "$0")/tunnel_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert roamer web || bail "agent cert"

P_AG1=$(free_port); P_PUB1=$(free_port); P_AG2=$(free_port); P_PUB2=$(free_port)
P_WEB=$(free_port); P_ECHO=$(free_port)
read -r R1_LO R1_HI < <(free_range 3) || bail "no port range"
read -r R2_LO R2_HI < <(free_range 3) || bail "no port range"
ns_http web "$P_WEB" "served by the roaming agent" || bail "nginx"
ns_py echo banner "$P_ECHO" "echo-service" || bail "echo server"

# relay_lua N AGENTS-PORT PUBLIC-PORT LO HI
relay_lua() {
  write_script "$WORK/relay$1.lua" <<EOF
local tunnel = require "tunnel"
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$2",
  tls = $(relay_tls),
  ports = { range = { $4, $5 }, state = "$WORK/ports$1.json", bind = "127.0.0.1" },
})
relay:listen{ name = "public", addr = "127.0.0.1:$3" }
EOF
}
relay_lua 1 "$P_AG1" "$P_PUB1" "$R1_LO" "$R1_HI"
relay_lua 2 "$P_AG2" "$P_PUB2" "$R2_LO" "$R2_HI"
# agent_lua FILE RELAY...
agent_lua() {
  local file=$1 list="" r; shift
  for r in "$@"; do list="$list\"$r\", "; done
  write_script "$file" <<EOF
local tunnel = require "tunnel"
tunnel.agent{
  name = "roamer",
  relays = { $list },
  tls = $(agent_tls roamer),
  services = {
    { service = "web", kind = "http", hosts = { "app.test" }, target = "127.0.0.1:$P_WEB" },
    { service = "echo", kind = "tcp", port = "auto", target = "127.0.0.1:$P_ECHO" },
  },
}
EOF
}
agent_lua "$WORK/agent1.lua" "$RELAY_IP:$P_AG1"
agent_lua "$WORK/agent2.lua" "$RELAY_IP:$P_AG1" "$RELAY_IP:$P_AG2"

# no_listener NAME: the process has no listening TCP/UDP socket where it
# runs, while ss does show nginx's (so the check itself can see sockets).
no_listener() {
  local mine theirs
  mine=$(listening_of "$(pid_of "$1")")
  theirs=$(listening_of "$(pid_of web)")
  if [ -n "$mine" ]; then not_ok "the agent ($1) listens on no port" "$mine"
  elif [ -z "$theirs" ]; then not_ok "the agent ($1) listens on no port" "ss -ltunp -p shows no socket of nginx either"
  else ok "the agent ($1) listens on no port (ss -ltunp; nginx's socket is seen)"; fi
}

# --- kill -9 and restart the relay ----------------------------------------------
start_relay relay1 "$WORK/relay1.lua" || bail "relay 1 did not start"
start_agent agent "$WORK/agent1.lua" || bail "the agent did not start"
wait_exposed "$WORK/relay1.log" web && wait_exposed "$WORK/relay1.log" echo || bail "the agent did not expose"
PORT=$(exposed_port "$WORK/relay1.log" echo)
expect_eq "before: HTTP through relay 1" 200 "$(hcode app.test "$P_PUB1")"
expect_eq "before: the tcp service on its port $PORT" "echo-service|ping" "$(banner_of "$PORT")"
no_listener agent

kill9 relay1
check "relay 1 is gone (killed)" port_closed "$P_PUB1"
start_relay relay1b "$WORK/relay1.lua" || bail "relay 1 did not start again"
t0=$(now)
if wait_until 10 hok app.test "$P_PUB1"; then
  expect_between "after kill -9 and restart, a request through the agent works within 5 s (s)" 0 5 "$(elapsed "$t0")"
else
  not_ok "after kill -9 and restart, a request through the agent works within 5 s" \
    "$(tail -n 5 "$WORK/agent.log")"
fi
wait_exposed "$WORK/relay1b.log" echo 5
expect_eq "the tcp service got the same port after the restart (state file)" "$PORT" \
  "$(exposed_port "$WORK/relay1b.log" echo)"
expect_eq "... and it serves there" "echo-service|ping" "$(banner_of "$PORT")"
check "the agent process kept running: it reconnected by itself" alive agent
no_listener agent
stop agent
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"

# --- two relays: stop the first, the agent moves to the second --------------------
start_relay relay2 "$WORK/relay2.lua" || bail "relay 2 did not start"
before=$(sessions "$WORK/relay1b.log")
start_agent agent2 "$WORK/agent2.lua" || bail "the two-relay agent did not start"
wait_sessions "$WORK/relay1b.log" $((before + 1)) 10 || bail "the agent did not connect to relay 1 first"
wait_until 10 hok app.test "$P_PUB1"
expect_eq "with relays {1, 2}, the agent is on relay 1 first" 200 "$(hcode app.test "$P_PUB1")"
expect_eq "... relay 2 does not know app.test yet" 404 "$(hcode app.test "$P_PUB2")"
stop relay1b
expect_eq "relay 1 exits 0 on SIGTERM (drained)" 0 "$EXIT_CODE"
t0=$(now)
if wait_until 10 hok app.test "$P_PUB2"; then
  expect_between "the agent failed over to relay 2: a request through it works (s after relay 1 stopped)" \
    0 5 "$(elapsed "$t0")"
else
  not_ok "the agent failed over to relay 2" "$(tail -n 8 "$WORK/agent2.log")"
fi
check "relay 2 logged the agent's session" jhas "$WORK/relay2.log" event=session agent=roamer
wait_exposed "$WORK/relay2.log" echo 5
PORT2=$(exposed_port "$WORK/relay2.log" echo)
expect_between "relay 2 gave the tcp service a port of its own range" "$R2_LO" "$R2_HI" "$PORT2"
expect_eq "... and it serves there" "echo-service|ping" "$(banner_of "$PORT2")"
check "the agent logged its connection to relay 2" \
  jhas "$WORK/agent2.log" event=agent_connected "relay=$RELAY_IP:$P_AG2"
no_listener agent2

stop agent2
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop relay2
expect_eq "relay 2 exits 0 on SIGTERM" 0 "$EXIT_CODE"

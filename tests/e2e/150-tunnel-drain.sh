#!/bin/bash
# 150-tunnel-drain — orderly ends and reloads with traffic in flight:
#   - SIGHUP reload of the relay script that adds a public entry: the agent
#     keeps its session (no new "session" event), requests keep working (none
#     fails, a download in flight completes), and the new entry serves;
#   - SIGHUP reload of the agent script that swaps one service for another:
#     the session is kept, the new name serves, the dropped one is withdrawn;
#   - SIGTERM to the agent during a slow download: the download completes
#     intact, the agent exits 0 right after it (not at the 30 s deadline);
#   - SIGTERM to the relay during a slow download: the same, the relay exits 0.
. "$(dirname "$0")/tunnel_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert drainer web || bail "agent cert"

P_AG=$(free_port); P_PUB=$(free_port); P_PUB2=$(free_port); P_WEB=$(free_port)
ns_http web "$P_WEB" "drainer's page" || bail "nginx"
random_file "$WORK/web/www/big.bin" $((32 * 1024 * 1024))
WANT=$(sha256_of "$WORK/web/www/big.bin")

# relay_lua [EXTRA-ENTRY]
relay_lua() {
  local extra=""
  [ -n "${1:-}" ] && extra="relay:listen{ name = \"extra\", addr = \"127.0.0.1:$P_PUB2\" }"
  write_script "$WORK/relay.lua.tmp" <<EOF
local tunnel = require "tunnel"
local relay = assert(tunnel.relay{ addr = "$RELAY_IP:$P_AG", tls = $(relay_tls) })
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
$extra
EOF
  mv "$WORK/relay.lua.tmp" "$WORK/relay.lua"
}
relay_lua
# agent_lua OTHER-SERVICE OTHER-HOST: the web service plus one more.
agent_lua() {
  write_script "$WORK/agent.lua.tmp" <<EOF
local tunnel = require "tunnel"
tunnel.agent{
  name = "drainer",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $(agent_tls drainer),
  services = {
    { service = "web", kind = "http", hosts = { "app.test" }, target = "127.0.0.1:$P_WEB" },
    { service = "$1", kind = "http", hosts = { "$2" }, target = "127.0.0.1:$P_WEB" },
  },
}
EOF
  mv "$WORK/agent.lua.tmp" "$WORK/agent.lua"
}
agent_lua old old.test
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
wait_exposed "$RLOG" web || bail "the agent did not expose"

# slow_download NAME RATE: curl of the 32 MiB file through the relay, started
# and past its first 2 MiB when this returns.
slow_download() {
  start "$1" curl -sS --max-time 60 --limit-rate "$2" -H 'Host: app.test' -o "$WORK/$1.bin" \
    "http://127.0.0.1:$P_PUB/big.bin"
  wait_until 10 size_at_least "$WORK/$1.bin" $((2 * 1024 * 1024)) || bail "the download $1 did not start"
}

# --- 1. SIGHUP: a reload that adds an entry ------------------------------------------
start_poller poller app.test "$P_PUB"
slow_download dl0 16M
check "before the reload nothing listens on the new entry's port" port_closed "$P_PUB2"
relay_lua extra
signal relay HUP
wait_jlog "$RLOG" 10 event=reload || bail "no reload in the log"
check "the reload is logged as ok" jhas "$RLOG" event=reload ok=true
wait_until 5 hok app.test "$P_PUB2"
expect_eq "the new public entry serves the agent's name" "drainer's page" "$(hbody app.test "$P_PUB2")"
expect_eq "the old entry still serves" "drainer's page" "$(hbody app.test "$P_PUB")"
wait_exit dl0 30
expect_eq "a download in flight across the reload completes (curl status)" 0 "$EXIT_CODE"
expect_eq "... intact (sha256 of 32 MiB)" "$WANT" "$(sha256_of "$WORK/dl0.bin")"
stop_poller poller
expect_eq "no request failed around the reload ($POLL_TOTAL requests)" "$POLL_TOTAL" "$POLL_OK"
expect_eq "the agent kept its session: still one session event" 1 "$(sessions "$RLOG")"
check "... no session_end on the relay" test "$(jcount "$RLOG" event=session_end)" = 0
check "... the agent never disconnected" test "$(jcount "$WORK/agent.log" event=agent_disconnected)" = 0

# --- 1b. SIGHUP to the agent: one service swapped for another ------------------------
expect_eq "before the agent's reload, old.test is served" 200 "$(hcode old.test "$P_PUB")"
agent_lua new new.test
signal agent HUP
wait_jlog "$WORK/agent.log" 10 event=reload || bail "no reload in the agent's log"
check "the agent's reload is logged as ok" jhas "$WORK/agent.log" event=reload ok=true
wait_until 5 hok new.test "$P_PUB"
expect_eq "after the agent's reload its new service serves" 200 "$(hcode new.test "$P_PUB")"
expect_eq "... the unchanged one too" 200 "$(hcode app.test "$P_PUB")"
wait_jlog "$RLOG" 3 event=service_removed service=old
expect_eq "... the service it no longer has is withdrawn (404, not a broken stream)" 404 "$(hcode old.test "$P_PUB")"
expect_eq "the agent kept its session across its own reload" 1 "$(sessions "$RLOG")"

# --- 2. SIGTERM to the agent during a slow download -----------------------------------
slow_download dl1 16M
T=$(now)
signal agent TERM
watch_exits "$T" 40 dl1 agent
wait_exit dl1 1; dl_rc=$EXIT_CODE
wait_exit agent 1; agent_rc=$EXIT_CODE
expect_eq "SIGTERM to the agent: the download in flight completes (curl status)" 0 "$dl_rc"
expect_eq "... intact (sha256 of 32 MiB)" "$WANT" "$(sha256_of "$WORK/dl1.bin")"
expect_eq "the agent exits 0" 0 "$agent_rc"
diag "download done ${EXITED_dl1}s after SIGTERM, agent gone ${EXITED_agent}s after it"
expect_between "... promptly once the download is done (s after curl; the deadline is 30 s)" -1 1.5 \
  "$(awk -v a="$EXITED_agent" -v d="$EXITED_dl1" 'BEGIN { printf "%.3f", a - d }')"
check "the relay saw the agent leave" jhas "$RLOG" event=session_end agent=drainer
expect_eq "with the agent gone, the relay answers 502" 502 "$(hcode app.test "$P_PUB")"

# --- 3. SIGTERM to the relay during a slow download -----------------------------------
start_agent agent-b "$WORK/agent.lua" || bail "the agent did not start again"
wait_sessions "$RLOG" 2 10 || bail "the agent did not come back"
wait_until 5 hok app.test "$P_PUB"
slow_download dl2 16M
T=$(now)
signal relay TERM
watch_exits "$T" 40 dl2 relay
wait_exit dl2 1; dl_rc=$EXIT_CODE
wait_exit relay 1; relay_rc=$EXIT_CODE
expect_eq "SIGTERM to the relay: the download in flight completes (curl status)" 0 "$dl_rc"
expect_eq "... intact (sha256 of 32 MiB)" "$WANT" "$(sha256_of "$WORK/dl2.bin")"
expect_eq "the relay exits 0" 0 "$relay_rc"
diag "download done ${EXITED_dl2}s after SIGTERM, relay gone ${EXITED_relay}s after it"
expect_between "... once the download is done (s after curl)" -1 1.5 \
  "$(awk -v a="$EXITED_relay" -v d="$EXITED_dl2" 'BEGIN { printf "%.3f", a - d }')"
check "the relay logged its drain" jhas "$RLOG" event=drain_done
check "the agent was told (GoAway) rather than cut" jhas "$WORK/agent-b.log" event=agent_goaway
check "the agent stays up, trying to reconnect" alive agent-b
stop agent-b
expect_eq "the agent exits 0 on SIGTERM while the relay is away" 0 "$EXIT_CODE"

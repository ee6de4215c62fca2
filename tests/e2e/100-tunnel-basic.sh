#!/bin/bash
# 100-tunnel-basic — the honest NAT test. The agent and its services run in a
# network namespace that accepts no inbound connection; the relay runs on the
# host. From the host, only through the relay's public entry: an HTTP service
# by Host (nginx), a TLS service by SNI (openssl s_server: the client sees the
# service's own certificate, end to end), and a real PostgreSQL server as a
# tcp service on a port the relay allocates from its range (psql, with and
# without TLS). Then the quickstart's own command works as the README says.
. "$(dirname "$0")/tunnel_lib.sh"

if tnl_topology; then
  # Before the firewall the namespace is reachable from the host, after it
  # not: the assertion below can fail.
  P_PROBE=$(free_port)
  ns_py probe banner "$P_PROBE" "inside" --host 0.0.0.0 || bail "probe server"
  check "before the firewall, the host can connect into the namespace" tcp_reach "$AGENT_IP" "$P_PROBE" read
  if ! tnl_firewall; then
    skip "the namespace accepts no inbound connection from the host" "$NAT_WHY"
  elif tcp_reach "$AGENT_IP" "$P_PROBE" >/dev/null; then
    not_ok "the namespace accepts no inbound connection from the host" "connected to $AGENT_IP:$P_PROBE"
  else
    ok "the namespace accepts no inbound connection from the host ($FW_TOOL input policy drop)"
  fi
  diag "agent in netns $NS ($AGENT_IP), relay on $RELAY_IP, firewall: ${FW_TOOL:-none}"
  check "... while the service still answers inside the namespace" in_ns "$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
sys.exit(0 if s.recv(6) == b"inside" else 1)' "$P_PROBE"
  stop probe
else
  skip "the agent runs behind a NAT (a namespace with no inbound connection)" "$NAT_WHY; agent on loopback"
fi

tnl_pki || bail "tunnel ca init / cert issue"
agent_cert laptop web || bail "agent cert"
make_ca || bail "openssl CA"
make_cert secure secure.test secure.test || bail "openssl cert"

P_AG=$(free_port); P_PUB=$(free_port); P_WEB=$(free_port); P_TLS=$(free_port); P_PG=$(free_port)
P_DOWN=$(free_port)   # nothing listens there
read -r R_LO R_HI < <(free_range 3) || bail "no port range"

ns_http web "$P_WEB" "hello from nginx behind the NAT" || bail "nginx"
ns_tls secure "$P_TLS" secure "hello over TLS, end to end" || bail "s_server"
ns_postgres pg "$P_PG"; pg_rc=$?
[ $pg_rc = 1 ] && bail "postgres did not start"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(relay_tls),
  ports = { range = { $R_LO, $R_HI }, state = "$WORK/ports.json", bind = "127.0.0.1" },
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
DB_SERVICE=
[ $pg_rc = 0 ] && DB_SERVICE="{ service = \"db\", kind = \"tcp\", port = \"auto\", target = \"127.0.0.1:$P_PG\" },"
write_script "$WORK/agent.lua" <<EOF
local tunnel = require "tunnel"
tunnel.agent{
  name = "laptop",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $(agent_tls laptop),
  services = {
    { service = "web", kind = "http", hosts = { "app.test" }, target = "127.0.0.1:$P_WEB" },
    { service = "secure", kind = "tls", hosts = { "secure.test" }, target = "127.0.0.1:$P_TLS" },
    { service = "down", kind = "http", hosts = { "down.test" }, target = "127.0.0.1:$P_DOWN" },
    $DB_SERVICE
  },
}
EOF

start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
RLOG=$WORK/relay.log
wait_exposed "$RLOG" web || bail "the agent did not expose web" "$(tail -n 20 "$WORK/agent.log")"
wait_exposed "$RLOG" secure || bail "the agent did not expose secure"
check "the relay saw the agent's identity from its certificate (name laptop, role web)" \
  jhas "$RLOG" event=session agent=laptop role=web
if [ "$NAT" = 1 ]; then
  check "the agent's session comes from inside the namespace ($AGENT_IP)" \
    jhas "$RLOG" event=session agent=laptop "src~^$AGENT_IP:"
fi

# --- HTTP by Host --------------------------------------------------------------
expect_eq "HTTP by Host through the relay reaches nginx behind the NAT" \
  "hello from nginx behind the NAT" "$(hbody app.test "$P_PUB")"
hdr=$(curl -s -D - -o /dev/null --max-time 10 -H 'Host: app.test' "http://127.0.0.1:$P_PUB/")
expect_match "... it is nginx that answered (X-Backend: web)" 'X-Backend: web' "$hdr"
expect_eq "a Host no agent exposes gets 404 from the relay" 404 "$(hcode nobody.test "$P_PUB")"
wait_exposed "$RLOG" down
expect_eq "a service whose local target is down: the relay answers 502 Bad Gateway" 502 \
  "$(hcode down.test "$P_PUB")"
check "... and the agent logs why" jhas "$WORK/agent.log" event=stream_end service=down "reason~(?i)refused"

# --- TLS by SNI, end to end ----------------------------------------------------
out=$(curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" \
  --resolve "secure.test:$P_PUB:127.0.0.1" "https://secure.test:$P_PUB/index.html" 2>&1)
expect_eq "curl https by SNI verifies the service's certificate and gets its page" \
  "hello over TLS, end to end" "$out"
out=$(openssl s_client -connect "127.0.0.1:$P_PUB" -servername secure.test \
  -CAfile "$WORK/pki/ca.pem" -verify_return_error < /dev/null 2>/dev/null)
got=$(printf '%s\n' "$out" | sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')
expect_eq "openssl s_client sees the service's own certificate (sha256), not the relay's" \
  "$(fingerprint "$WORK/pki/secure.pem")" "$got"
expect_match "... and verifies it" 'Verify return code: 0 \(ok\)' "$out"

# --- PostgreSQL as a tcp service on an allocated port --------------------------
if [ $pg_rc = 2 ]; then
  skip "psql through a tcp service" "PostgreSQL or psql not installed (Debian: postgresql postgresql-client)"
else
  wait_exposed "$RLOG" db || bail "the agent did not expose db" "$(tail -n 20 "$WORK/agent.log")"
  DBPORT=$(exposed_port "$RLOG" db)
  expect_between "the tcp service got a port from the relay's ports range" "$R_LO" "$R_HI" "$DBPORT"
  check "the relay listens on it, on 127.0.0.1 (ports.bind)" wait_port "$DBPORT" 5 127.0.0.1
  CONN="host=127.0.0.1 port=$DBPORT user=postgres dbname=postgres connect_timeout=10"
  out=$(psql -X -At "$CONN sslmode=disable" -c 'select 6 * 7' 2>&1)
  expect_eq "psql sslmode=disable through the relay's port" 42 "$out"
  out=$(psql -X -At "$CONN sslmode=disable" -c 'select ssl from pg_stat_ssl where pid = pg_backend_pid()' 2>&1)
  expect_eq "... without TLS on that connection" f "$out"
  out=$(psql -X -At "$CONN sslmode=require" \
    -c 'select ssl, version() like $$PostgreSQL%$$ from pg_stat_ssl where pid = pg_backend_pid()' 2>&1)
  expect_eq "psql sslmode=require: the real server terminated TLS" "t|t" "$out"
  out=$(psql -X -At "$CONN sslmode=verify-ca sslrootcert=$WORK/pki/ca.pem" -c 'select 1' 2>&1)
  expect_eq "sslmode=verify-ca: psql verified the server's certificate through the tunnel" 1 "$out"
  out=$(psql -X -At "$CONN sslmode=require" \
    -c "select md5(string_agg(md5(i::text), '')) from generate_series(1, 100000) i" 2>&1)
  want=$(in_ns psql -X -At "host=127.0.0.1 port=$P_PG user=postgres dbname=postgres sslmode=disable" \
    -c "select md5(string_agg(md5(i::text), '')) from generate_series(1, 100000) i" 2>&1)
  expect_eq "a query's answer through the tunnel equals the direct one" "$want" "$out"
fi

# --- the quickstart's own command ------------------------------------------------
P_QA=$(free_port); P_QP=$(free_port)
start quickstart env TUNNEL_STATE="$WORK/qs-state" QUICKSTART_AGENTS_PORT="$P_QA" \
  QUICKSTART_PUBLIC_PORT="$P_QP" "$TUNNEL" run "$REPO/examples/quickstart.lua"
if wait_log "$WORK/quickstart.log" '^ *curl ' 15; then
  cmd=$(grep -m 1 -E '^ *curl ' "$WORK/quickstart.log" | sed 's/^ *//')
  expect_eq "the quickstart prints the curl command for its public port" \
    "curl -H 'Host: demo.localhost' http://127.0.0.1:$P_QP/" "$cmd"
  out=$(bash -c "$cmd --max-time 10 -sS" 2>&1)
  expect_match "running that command prints the demo page" \
    '^Hello from behind the tunnel!~request: GET /~client: 127\.0\.0\.1:[0-9]+$' "$(printf '%s' "$out" | tr '\n' '~')"
  check "the quickstart made its credentials under TUNNEL_STATE" \
    test -s "$WORK/qs-state/ca/ca.crt"
else
  not_ok "the quickstart prints a curl command" "$(tail -n 20 "$WORK/quickstart.log")"
fi
stop quickstart
expect_eq "the quickstart exits 0 on SIGTERM" 0 "$EXIT_CODE"

stop agent
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

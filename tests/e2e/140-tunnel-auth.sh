#!/bin/bash
# 140-tunnel-auth — who may connect and what they may do, each refusal logged
# with its reason, while a good agent keeps serving throughout:
#   - no client certificate (openssl s_client), a certificate from another CA
#     (s_client, and an agent), an expired certificate (an agent; a certificate
#     made the same way but valid does connect);
#   - the authorize hook refuses one expose (role "web" outside *.web.test):
#     the agent logs expose_failed with the reason, its other service works;
#   - a second identity claiming a host name the first one holds: a clear
#     error naming the holder;
#   - a dial hook returning an address the agent's config does not allow: no
#     connection there (a listener counts them), and the agent logs why.
. "$(dirname "$0")/tunnel_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
for a in good mixed thief dialer; do agent_cert "$a" web || bail "agent cert $a"; done
"$TUNNEL" ca init "$WORK/ca2" >/dev/null || bail "second CA"
"$TUNNEL" cert issue --ca "$WORK/ca2" --name rogue --role web --out "$TPKI/rogue" >/dev/null || bail "rogue cert"
openssl_client_cert "$TPKI/expired" expired web 20200101000000Z 20200102000000Z || bail "expired cert"
openssl_client_cert "$TPKI/handmade" handmade web \
  "$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)" "$(date -u -d '+1 day' +%Y%m%d%H%M%SZ)" || bail "handmade cert"

P_AG=$(free_port); P_PUB=$(free_port); P_WEB=$(free_port); P_WEB2=$(free_port); P_TRAP=$(free_port)
ns_http web "$P_WEB" "good agent's page" || bail "nginx"
ns_http web2 "$P_WEB2" "another page" || bail "nginx 2"
ns_trap trap "$P_TRAP" || bail "trap listener"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(relay_tls),
  authorize = function(id, action, detail)
    if action == "connect" then return true end
    if action == "expose" then
      for _, host in ipairs(detail.hosts or {}) do
        if id.role ~= "web" or not host:match("%.web%.test$") then
          return false, ("role %s may not expose %s"):format(tostring(id.role), host)
        end
      end
      return true
    end
    return false, "unknown action " .. action
  end,
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
# agent_lua NAME TLS-TABLE SERVICES [EXTRA]
agent_lua() {
  write_script "$WORK/$1.lua" <<EOF
local tunnel = require "tunnel"
tunnel.agent{
  name = "$1",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $2,
  reconnect = { min = 0.5, max = 1 },
  services = { $3 },
  ${4:-}
}
EOF
}
tls_of() {   # tls_of NAME DIR: a TLS table for certificates in DIR
  printf '{ cert = "%s/%s.crt", key = "%s/%s.key", ca = "%s", server_name = "relay.test" }' \
    "$2" "$1" "$2" "$1" "$TPKI/ca/ca.crt"
}
WEB2="target = \"127.0.0.1:$P_WEB2\""
agent_lua good "$(agent_tls good)" \
  "{ service = \"web\", kind = \"http\", hosts = { \"good.web.test\" }, target = \"127.0.0.1:$P_WEB\" }"
agent_lua rogue "$(agent_tls rogue)" "{ service = \"web\", kind = \"http\", hosts = { \"rogue.web.test\" }, $WEB2 }"
agent_lua expired "$(tls_of expired "$TPKI/expired")" \
  "{ service = \"web\", kind = \"http\", hosts = { \"expired.web.test\" }, $WEB2 }"
agent_lua handmade "$(tls_of handmade "$TPKI/handmade")" \
  "{ service = \"web\", kind = \"http\", hosts = { \"handmade.web.test\" }, $WEB2 }"
agent_lua mixed "$(agent_tls mixed)" \
  "{ service = \"ok\", kind = \"http\", hosts = { \"mixed.web.test\" }, $WEB2 },
   { service = \"bad\", kind = \"http\", hosts = { \"evil.example.org\" }, $WEB2 }"
agent_lua thief "$(agent_tls thief)" "{ service = \"web\", kind = \"http\", hosts = { \"good.web.test\" }, $WEB2 }"
agent_lua dialer "$(agent_tls dialer)" \
  "{ service = \"dgood\", kind = \"http\", hosts = { \"dialgood.web.test\" }, $WEB2 },
   { service = \"dbad\", kind = \"http\", hosts = { \"dialbad.web.test\" }, $WEB2 }" \
  "dial = function(stream)
     if stream.service == \"dbad\" then return \"127.0.0.1:$P_TRAP\" end
     return \"127.0.0.1:$P_WEB2\"
   end,"

RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent good "$WORK/good.lua" || bail "the good agent did not start"
wait_exposed "$RLOG" web || bail "the good agent did not expose"
expect_eq "the good agent serves" "good agent's page" "$(hbody good.web.test "$P_PUB")"

# A client that keeps asking the good agent's name all along.
start_poller poller good.web.test "$P_PUB"

# new_failure N: the reason of the handshake_failed lines after the first N.
hs_failures() { jcount "$RLOG" event=handshake_failed; }
hs_more_than() { [ "$(hs_failures)" -gt "$1" ]; }
new_failure() { jfield "$RLOG" reason event=handshake_failed | sed -n "$(($1 + 1)),\$p" | head -n 1; }
# expect_refused N DESC ERE: the relay logs a handshake failure after the
# first N, with a reason matching ERE.
expect_refused() {
  local why
  if wait_until 5 hs_more_than "$1"; then
    why=$(new_failure "$1")
    expect_match "$2" "$3" "$why"
    diag "relay: $why"
  else
    not_ok "$2" "no new handshake_failed in the relay's log" "$(tail -n 5 "$RLOG")"
  fi
}

# --- no certificate -------------------------------------------------------------
n=$(hs_failures)
# (s_client keeps reading for a moment, to see the relay's alert: in TLS 1.3
# the client's handshake is over before the server has judged its certificate.)
out=$(sleep 0.5 | timeout 10 openssl s_client -connect "$RELAY_IP:$P_AG" -servername relay.test \
  -CAfile "$TPKI/ca/ca.crt" -tls1_3 2>&1)
expect_match "no client certificate: s_client gets the relay's alert" 'alert certificate required' "$out"
expect_refused "$n" "no client certificate: refused, with the reason logged" 'certificate'
check "... no session was opened for it" test "$(sessions "$RLOG")" = 1

# --- a certificate from another CA (s_client, then an agent) -----------------------
n=$(hs_failures)
out=$(sleep 0.5 | timeout 10 openssl s_client -connect "$RELAY_IP:$P_AG" -servername relay.test \
  -CAfile "$TPKI/ca/ca.crt" -cert "$TPKI/rogue/rogue.crt" -key "$TPKI/rogue/rogue.key" -tls1_3 2>&1)
expect_match "a certificate from another CA: s_client gets the relay's alert" 'alert (unknown ca|bad certificate)' "$out"
expect_refused "$n" "a certificate from another CA (s_client): refused, reason logged" 'certif|unknown ca|verif'
n=$(hs_failures)
start_agent rogue "$WORK/rogue.lua" || bail "the rogue agent did not start"
expect_refused "$n" "an agent whose certificate is from another CA: refused, reason logged" 'certif|unknown ca|verif'
# The agent's operator must learn why too: the relay's alert (unknown CA,
# bad certificate) in the reason of the agent's failure line.
wait_jlog "$WORK/rogue.log" 5 'event~^agent_(connect_failed|disconnected)$'
check "... the agent logs that the relay refused its certificate (the TLS alert in the reason)" \
  jhas "$WORK/rogue.log" 'event~^agent_(connect_failed|disconnected)$' 'reason~(?i)certificate|unknown ca|alert'
diag "agent: $(jfield "$WORK/rogue.log" event 'event~^agent_(connected|connect_failed|disconnected)$' | head -n 2 | tr '\n' ' ')-> $(jfield "$WORK/rogue.log" reason 'event~^agent_(connect_failed|disconnected)$' | head -n 1)"
stop rogue
check "... it never got a session" test "$(sessions "$RLOG" rogue)" = 0
expect_eq "... nor its name" 404 "$(hcode rogue.web.test "$P_PUB")"

# --- an expired certificate (and a valid one made the same way) ------------------------
n=$(hs_failures)
start_agent expired "$WORK/expired.lua" || bail "the expired agent did not start"
expect_refused "$n" "an expired certificate: refused, reason logged" 'expired'
stop expired
check "... it never got a session" test "$(sessions "$RLOG" expired)" = 0
start_agent handmade "$WORK/handmade.lua" || bail "the handmade agent did not start"
check "a certificate made the same way but valid today is accepted" \
  wait_exposed "$RLOG" web 5
check "... as identity handmade, role web" jhas "$RLOG" event=session agent=handmade role=web
wait_until 5 hok handmade.web.test "$P_PUB"
expect_eq "... and serves" "another page" "$(hbody handmade.web.test "$P_PUB")"
stop handmade

# --- authorize refuses one expose -------------------------------------------------------
start_agent mixed "$WORK/mixed.lua" || bail "the mixed agent did not start"
if wait_jlog "$WORK/mixed.log" 5 event=expose_failed service=bad; then
  expect_eq "the authorize hook's refusal reaches the agent's log (expose_failed) with its reason" \
    "role web may not expose evil.example.org" "$(jlast "$WORK/mixed.log" error event=expose_failed service=bad)"
else
  not_ok "the agent logs expose_failed for the refused service" "$(tail -n 5 "$WORK/mixed.log")"
fi
wait_until 5 hok mixed.web.test "$P_PUB"
expect_eq "... its other service works" "another page" "$(hbody mixed.web.test "$P_PUB")"
expect_eq "... the refused name is not served" 404 "$(hcode evil.example.org "$P_PUB")"

# --- a second identity claims a name the first holds ------------------------------------
start_agent thief "$WORK/thief.lua" || bail "the thief agent did not start"
if wait_jlog "$WORK/thief.log" 5 event=expose_failed service=web; then
  err=$(jlast "$WORK/thief.log" error event=expose_failed service=web)
  expect_match "a host already exposed by another identity: the error names the host and its holder" \
    "good\\.web\\.test.*agent 'good'" "$err"
  diag "thief: $err"
else
  not_ok "the second identity's expose fails" "$(tail -n 5 "$WORK/thief.log")"
fi
expect_eq "... the name still goes to its holder" "good agent's page" "$(hbody good.web.test "$P_PUB")"
stop thief

# --- a dial hook that picks an address the config does not allow --------------------------
start_agent dialer "$WORK/dialer.lua" || bail "the dialer agent did not start"
wait_exposed "$RLOG" dbad || bail "the dialer did not expose"
wait_until 5 hok dialgood.web.test "$P_PUB"
expect_eq "a dial hook returning an allowed target works" "another page" "$(hbody dialgood.web.test "$P_PUB")"
in_ns "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()' "$P_TRAP"
wait_until 5 test "$(trap_accepts trap)" -ge 1
expect_eq "the trap listener counts connections (one direct test connection)" 1 "$(trap_accepts trap)"
code=$(hcode dialbad.web.test "$P_PUB")
expect_match "a dial hook returning a disallowed address: the client gets an error, not the trap" '^5[0-9][0-9]$' "$code"
if wait_jlog "$WORK/dialer.log" 5 event=stream_end service=dbad; then
  expect_match "... the agent logs why" "127\\.0\\.0\\.1:$P_TRAP.*(not|no service).*allow" \
    "$(jlast "$WORK/dialer.log" reason event=stream_end service=dbad)"
else
  not_ok "the agent logs the refused dial" "$(tail -n 5 "$WORK/dialer.log")"
fi
sleep 0.3
expect_eq "... and never connected to it" 1 "$(trap_accepts trap)"
stop dialer

# --- nothing else was disturbed ----------------------------------------------------------
stop_poller poller
expect_eq "the good agent answered every request made during all of this ($POLL_OK of $POLL_TOTAL)" \
  "$POLL_TOTAL" "$POLL_OK"
check "... and there were many" test "$POLL_TOTAL" -ge 20
expect_eq "the good agent kept its one session" 1 "$(sessions "$RLOG" good)"
check "the good agent was never disconnected" test "$(jcount "$WORK/good.log" event=agent_disconnected)" = 0
stop good
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

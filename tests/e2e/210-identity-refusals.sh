#!/bin/bash
# 210-identity-refusals — every way in that must be refused is refused, with
# the exact reason in the relay's log, while a good (enrolled) agent keeps
# serving a client that asks it every 50 ms: every request succeeds and its
# one session never ends.
#   - certificates: expired; from another CA; without clientAuth (the CLI's
#     --server certificate, and an openssl one with serverAuth only; the same
#     openssl recipe with clientAuth is accepted);
#   - signed tokens (agent token_file against relay token_secret, and an HTTP
#     client on a listener with auth = {token_secret, required = true}): one
#     character changed (first, last, in the prefix, payload, separator and
#     MAC; for HTTP every position), expired (a correctly signed token whose
#     exp has passed); a valid one works in both places;
#   - bootstrap tokens: expired, used twice, a CSR whose CN is not the
#     token's name;
#   - the deny list: a revoked name's live session is cut within a few
#     seconds, its reconnections, enrollment and renewal are refused — also
#     when something else reaches the relay at the moment of the revocation;
#   - policies/roles.lua: a web agent exposing a host that belongs to the db
#     role gets expose_failed with the reason, its other service works.
. "$(dirname "$0")/identity_lib.sh"

tnl_setup
id_pki || bail "tunnel ca init / cert issue"
"$TUNNEL" token secret --out "$RS/token.secret" >/dev/null || bail "tunnel token secret"
SECRET=$RS/token.secret
: > "$RS/deny.txt"

P_AG=$(free_port); P_EN=$(free_port); P_PUB=$(free_port); P_AUTH=$(free_port)
P_WEB=$(free_port); P_WEB2=$(free_port); P_SHOP=$(free_port)
ns_http web "$P_WEB" "good agent's page" || bail "nginx"
ns_http web2 "$P_WEB2" "another page" || bail "nginx 2"
ns_http shopweb "$P_SHOP" "the db role's shop" || bail "nginx 3"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local roles = require("policies.roles"){
  web = { kinds = { "http" }, hosts = { "*.web.test" } },
  db  = { kinds = { "http" }, hosts = { "*.db.test" } },
}
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(id_relay_tls),
  issuer_ca = "$RS/ca",
  enroll = { addr = "$RELAY_IP:$P_EN", store = "$RS/bootstrap.json" },
  cert_ttl = 3600,
  deny = "$RS/deny.txt",
  token_secret = "$SECRET",
  authorize = roles.authorize,
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
relay:listen{ name = "authed", addr = "127.0.0.1:$P_AUTH", auth = { token_secret = "$SECRET", required = true } }
EOF
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
wait_port "$P_EN" 5 || bail "no enrollment listener"

# enrolled NAME ROLE: bootstrap token, fresh home, tunnel enroll.
enrolled() {
  local tok
  tok=$(bootstrap "$1" "$2") && agent_home "$1" "$tok" && enroll "$1" "" ||
    { diag "enrolling $1 failed: $(cat "$WORK/enroll-$1.out" 2>/dev/null)"; return 1; }
}
web2_service() { printf '{ service = "%s", kind = "http", hosts = { "%s.web.test" }, target = "127.0.0.1:%s" }' "$1" "$1" "$P_WEB2"; }
static_tls() {   # static_tls CERT KEY
  printf '{ cert = "%s", key = "%s", ca = "%s", server_name = "relay.test" }' "$1" "$2" "$RS/ca/ca.crt"
}

# --- the good agent, enrolled, serving all along ---------------------------------------
enrolled good web || bail "enrolling the good agent"
agent_script "$WORK/good.lua" good "$(dir_tls "$WORK/home-good/creds")" \
  "{ service = \"web\", kind = \"http\", hosts = { \"good.web.test\" }, target = \"127.0.0.1:$P_WEB\" }"
start_agent good "$WORK/good.lua" || bail "the good agent did not start"
wait_exposed "$RLOG" web || bail "the good agent did not expose" "$(tail -n 5 "$WORK/good.log")"
expect_eq "the good agent serves through the relay" "good agent's page" "$(hbody good.web.test "$P_PUB")"
start_poller poller good.web.test "$P_PUB"

# refused_agent NAME TLS [EVENT]: run an agent with these credentials until
# the relay logs its next EVENT (handshake_failed), then stop it; REASON.
refused_agent() {
  local name=$1 tls=$2 ev=${3:-handshake_failed} n
  n=$(_ecount "$RLOG" "$ev")
  agent_script "$WORK/$name.lua" "$name" "$tls" "$(web2_service "$name")"
  local t0; t0=$(now)
  # (The name is used again: without its old log, whose "start" line
  # start_agent could see before the new process has truncated the file.)
  rm -f "$WORK/$name.log"
  if ! start_agent "$name" "$WORK/$name.lua"; then
    alive "$name" && REASON="(the agent did not log its start in $(elapsed "$t0") s)" ||
      { wait_exit "$name" 1; REASON="(the agent exited with status $EXIT_CODE after $(elapsed "$t0") s, log: $(head -c 300 "$WORK/$name.log"))"; }
    stop "$name"
    return 1
  fi
  if wait_more "$RLOG" "$ev" "$n" 5; then REASON=$(new_reason "$RLOG" "$ev" "$n"); else REASON="(no $ev logged)"; fi
  stop "$name"
}

# --- certificates ---------------------------------------------------------------------
openssl_client_cert "$WORK/c" expired web 20200101000000Z 20200102000000Z "$RS/ca" || bail "expired cert"
refused_agent expired "$(static_tls "$WORK/c/expired.crt" "$WORK/c/expired.key")"
expect_eq "an expired certificate is refused at the handshake, reason logged" \
  "certificate rejected: certificate has expired" "$REASON"

"$TUNNEL" ca init "$WORK/ca2" >/dev/null && "$TUNNEL" cert issue --ca "$WORK/ca2" --name rogue --role web \
  --out "$WORK/c" >/dev/null || bail "second CA"
refused_agent rogue "$(static_tls "$WORK/c/rogue.crt" "$WORK/c/rogue.key")"
expect_eq "a certificate from another CA is refused, reason logged" \
  "certificate rejected: unable to get local issuer certificate" "$REASON"

"$TUNNEL" cert issue --ca "$RS/ca" --name srvcert --role web --server --dns srvcert.web.test --out "$WORK/c" >/dev/null ||
  bail "server cert"
expect_eq "(tunnel cert issue --server makes a serverAuth certificate)" "TLS Web Server Authentication" \
  "$(eku_of "$WORK/c/srvcert.crt")"
refused_agent srvcert "$(static_tls "$WORK/c/srvcert.crt" "$WORK/c/srvcert.key")"
expect_eq "a certificate from our CA without clientAuth (tunnel cert issue --server) is refused, reason logged" \
  "certificate rejected: unsuitable certificate purpose" "$REASON"
openssl_eku_cert "$WORK/c" sauth web serverAuth || bail "openssl serverAuth cert"
refused_agent sauth "$(static_tls "$WORK/c/sauth.crt" "$WORK/c/sauth.key")"
expect_eq "an openssl certificate from our CA with serverAuth only is refused, reason logged" \
  "certificate rejected: unsuitable certificate purpose" "$REASON"
openssl_eku_cert "$WORK/c" cauth web clientAuth || bail "openssl clientAuth cert"
agent_script "$WORK/cauth.lua" cauth "$(static_tls "$WORK/c/cauth.crt" "$WORK/c/cauth.key")" "$(web2_service cauth)"
start_agent cauth "$WORK/cauth.lua" || bail "cauth agent"
check "... the same recipe with clientAuth is accepted (identity cauth/web)" \
  wait_jlog "$RLOG" 5 event=session agent=cauth role=web via=cert
stop cauth
got=""
for n in expired rogue srvcert sauth; do got="$got $n=$(sessions "$RLOG" "$n")"; done
expect_eq "none of the refused certificates got a session" " expired=0 rogue=0 srvcert=0 sauth=0" "$got"

# --- signed tokens: agents ------------------------------------------------------------------
# (First, a bootstrap token that expires meanwhile, used further down: no
# other bootstrap token is made until then, as making one drops the expired
# ones from the store, and it would be "unknown" instead.)
LATE=$(bootstrap late web --ttl 1)
T_LATE=$(now)
TOK=$("$TUNNEL" token issue --id tokagent --role web --ttl 1h --secret-file "$SECRET") || bail "tunnel token issue"
expect_match "tunnel token issue prints tnl1.<payload>.<mac>" '^tnl1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$' "$TOK"
( umask 077; printf '%s\n' "$TOK" > "$WORK/tok.good" )
agent_script "$WORK/tokagent.lua" tokagent "$(token_tls "$WORK/tok.good")" "$(web2_service tokagent)"
start_agent tokagent "$WORK/tokagent.lua" || bail "token agent"
check "an agent with a valid token connects (identity tokagent/web, via token)" \
  wait_jlog "$RLOG" 5 event=session agent=tokagent role=web via=token
wait_exposed "$RLOG" tokagent 5
wait_until 5 hok tokagent.web.test "$P_PUB"
expect_eq "... and serves" "another page" "$(hbody tokagent.web.test "$P_PUB")"
stop tokagent

PAYLOAD=${TOK#tnl1.}; PAYLOAD=${PAYLOAD%%.*}
MACPOS=$((5 + ${#PAYLOAD} + 1))
LAST=$((${#TOK} - 1))
# The last MAC digit carries 4 bits of the MAC and 2 unused bits: flipping a
# used bit changes the MAC, flipping an unused one is another spelling of the
# same MAC, refused as non-canonical.
B64=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_
last=${TOK:LAST:1}; idx=${B64%%"$last"*}; idx=${#idx}
USED=${B64:$((idx ^ 16)):1}; UNUSED=${B64:$((idx ^ 1)):1}
NOT_TOKEN="token: not a tunnel token (tnl1.<payload>.<mac>)"
BAD_MAC="token: token signature does not verify"
# position:replacement:expected reason
CASES=(
  "0:u:$NOT_TOKEN"
  "3:2:$NOT_TOKEN"
  "4:_:$NOT_TOKEN"
  "5::$BAD_MAC"
  "$((5 + ${#PAYLOAD} / 2))::$BAD_MAC"
  "$((MACPOS - 1)):A:$NOT_TOKEN"
  "$MACPOS::$BAD_MAC"
  "$LAST:$USED:$BAD_MAC"
  "$LAST:$UNUSED:token: token signature is not 32 bytes of base64url"
)
bad=()
for c in "${CASES[@]}"; do
  pos=${c%%:*}; rest=${c#*:}; ch=${rest%%:*}; want=${rest#*:}
  flip_char "$TOK" "$pos" $ch > "$WORK/tok.bad"
  refused_agent tokbad "$(token_tls "$WORK/tok.bad")"
  [ "$REASON" = "$want" ] || bad+=("position $pos ('${TOK:pos:1}' -> '$(cut -c$((pos + 1)) "$WORK/tok.bad")'): got '$REASON', want '$want'")
done
if [ ${#bad[@]} = 0 ]; then
  ok "a token with one character changed is refused, reason logged (${#CASES[@]} cases: first and last character, prefix, payload, separator, MAC, non-canonical MAC)"
else
  not_ok "a token with one character changed is refused, reason logged" "${bad[@]}"
fi
expect_eq "... none of them got a session (tokagent has the control's one)" 1 "$(sessions "$RLOG" tokagent)"

EXPIRED=$(craft_token "$SECRET" tokagent web $(( $(date +%s) - 60 )))
FRESH=$(craft_token "$SECRET" tokagent web $(( $(date +%s) + 3600 )))
out=$("$TUNNEL" token verify --secret-file "$SECRET" "$EXPIRED" 2>&1)
expect_match "(a token signed here with exp in the past: tunnel token verify says expired)" 'expired' "$out"
check "(the same recipe with exp ahead verifies)" "$TUNNEL" token verify --secret-file "$SECRET" "$FRESH"
printf '%s\n' "$EXPIRED" > "$WORK/tok.bad"
refused_agent tokold "$(token_tls "$WORK/tok.bad")"
expect_eq "an agent with an expired token is refused, reason logged" "token: token has expired" "$REASON"

# --- signed tokens: HTTP clients on a listener with auth = {required = true} -------------------
acode() {   # acode TOKEN: the status for good.web.test on the authed listener
  curl -s -o /dev/null --max-time 10 -w '%{http_code}' -H 'Host: good.web.test' \
    ${1:+-H "Authorization: Bearer $1"} "http://127.0.0.1:$P_AUTH/"
}
expect_eq "HTTP with a valid token passes the authed listener" 200 "$(acode "$TOK")"
expect_eq "... and with one signed here (valid)" 200 "$(acode "$FRESH")"
expect_eq "HTTP without a token: 401" 401 "$(acode "")"
n=$(jcount "$RLOG" event=reject)
out=$("$PY" - "$TOK" "$P_AUTH" "$USED" "$UNUSED" <<'EOF'
import collections, http.client, sys
tok, port = sys.argv[1], int(sys.argv[2])
used, unused = sys.argv[3], sys.argv[4]
got, odd = collections.Counter(), []
for i, ch in enumerate(tok):
    alts = [a for a in ("A", "b", "7", "-", ".") if a != ch][:2]
    if i == len(tok) - 1:
        alts = [used, unused]
    for a in alts:
        t = tok[:i] + a + tok[i + 1:]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/", headers={"Host": "good.web.test", "Authorization": "Bearer " + t})
        st = c.getresponse().status
        c.close()
        got[st] += 1
        if st != 401:
            odd.append("%d:%s->%s=%d" % (i, ch, a, st))
print(" ".join("%d=%d" % kv for kv in sorted(got.items())), " ".join(odd[:10]))
EOF
)
total=$(( ${#TOK} * 2 ))
expect_eq "HTTP: every one-character change of the token, at each of its ${#TOK} positions, gets 401" \
  "401=$total" "$(echo "$out" | sed 's/ *$//')"
check "... the relay logs why (token refused: token signature does not verify, ...)" \
  jhas "$RLOG" event=reject "reason=token refused: token signature does not verify"
check "... (token refused: not a tunnel token ..., for the prefix)" \
  jhas "$RLOG" event=reject "reason~^token refused: not a tunnel token"
check "... (token refused: ... not 32 bytes of base64url, for the non-canonical MAC)" \
  jhas "$RLOG" event=reject "reason=token refused: token signature is not 32 bytes of base64url"
expect_eq "HTTP with an expired token: 401" 401 "$(acode "$EXPIRED")"
expect_eq "... reason logged" "token refused: token has expired" "$(jlast "$RLOG" reason event=reject)"
expect_eq "the valid token still passes afterwards" 200 "$(acode "$TOK")"

# --- bootstrap tokens ----------------------------------------------------------------------
# (LATE was made with --ttl 1 before the signed tokens.)
sleep_until "$(awk -v t="$T_LATE" 'BEGIN { printf "%.3f", t + 1.2 }')"
agent_home late "$LATE"
n=$(_ecount "$RLOG" enroll_refused)
enroll late ""; rc=$?
expect_match "tunnel enroll with an expired bootstrap token fails, and says why" \
  '^tunnel enroll: refused by the relay \(401\): bootstrap token expired' "$(cat "$WORK/enroll-late.out")"
expect_eq "... the relay logs enroll_refused with the reason" "bootstrap token expired" \
  "$(new_reason "$RLOG" enroll_refused "$n")"
check "... and nothing was enrolled" test "$rc" != 0 -a -z "$(gen_of "$WORK/home-late/creds")"

enrolled once web || bail "first use of a bootstrap token"
check "a single-use bootstrap token enrolls once" pair_ok "$WORK/home-once/creds" "$RS/ca/ca.crt"
n=$(_ecount "$RLOG" enroll_refused)
enroll once "$WORK/home-once/creds-again"; rc=$?
expect_match "... used again it is refused, and the agent is told why" \
  '^tunnel enroll: refused by the relay \(401\): bootstrap token already used' "$(cat "$WORK/enroll-once.out")"
expect_eq "... the relay logs enroll_refused with the reason" "bootstrap token already used" \
  "$(new_reason "$RLOG" enroll_refused "$n")"
check "... and nothing was enrolled the second time" test "$rc" != 0 -a -z "$(gen_of "$WORK/home-once/creds-again")"

agent_home alice "$(bootstrap alice web)"
n=$(_ecount "$RLOG" enroll_refused)
enroll alice "" --name mallory; rc=$?
want="the request's CN 'mallory' differs from the token's name 'alice'"
expect_match "a CSR whose CN is not the token's name is refused, and the agent is told why" \
  "^tunnel enroll: refused by the relay \\(401\\): $want" "$(cat "$WORK/enroll-alice.out")"
expect_eq "... the relay logs enroll_refused with the reason" "$want" "$(new_reason "$RLOG" enroll_refused "$n")"
check "... and nothing was enrolled" test "$rc" != 0 -a -z "$(gen_of "$WORK/home-alice/creds")"
check "... no certificate for mallory was ever issued (no enroll event)" \
  test "$(jcount "$RLOG" event=enroll name=mallory)" = 0

# --- the deny list ---------------------------------------------------------------------
enrolled victim web && enrolled victim2 web && enrolled victim3 web && enrolled mixed web ||
  bail "enrolling the deny-list agents"
for v in victim victim2 victim3; do
  agent_script "$WORK/$v.lua" "$v" "$(dir_tls "$WORK/home-$v/creds")" "$(web2_service "$v")"
done
# victim2 can be asked to renew now (a trigger file): the CSR is for its own name.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=victim2" \
  -keyout "$WORK/victim2-renew.key" -out "$WORK/victim2.csr" >/dev/null 2>&1 || bail "csr"
cat >> "$WORK/victim2.lua" <<EOF
local function poll()
  local f = io.open("$WORK/victim2.trigger")
  if f then
    f:close()
    os.remove("$WORK/victim2.trigger")
    local csr = assert(io.open("$WORK/victim2.csr")):read("*a")
    AGENT:call("cert.renew", { csr = csr }, function(res, err)
      tunnel.log("info", "renew_probe", { ok = res ~= nil and res.cert ~= nil, error = err and err.message })
    end)
  end
  tunnel.after(0.05, poll)
end
tunnel.after(0.05, poll)
EOF
for v in victim victim2 victim3; do
  start_agent "$v" "$WORK/$v.lua" || bail "agent $v did not start"
  wait_exposed "$RLOG" "$v" 5 || bail "agent $v did not expose"
done
wait_until 5 hok victim.web.test "$P_PUB"
expect_eq "before the revocation, victim serves" 200 "$(hcode victim.web.test "$P_PUB")"

# victim: revoked by name, nothing else going on.
T0=$(now)
echo "name victim" >> "$RS/deny.txt"
if wait_jlog "$RLOG" 6 event=session_end agent=victim; then
  expect_between "a revoked name's live session is cut within a few seconds (s)" 0 3.5 \
    "$(ts_delta "$T0" "$(ts_of "$RLOG" event=session_end agent=victim)")"
  expect_eq "... the reason logged" "identity 'victim' is revoked (deny list)" \
    "$(jlast "$RLOG" reason event=session_end agent=victim)"
else
  not_ok "a revoked name's live session is cut within a few seconds" "no session_end for victim in 6 s"
fi
TICK=$(ts_of "$RLOG" event=session_end agent=victim)
TICK=${TICK:-$T0}
expect_match "... its name no longer reaches it" '^(502|404)$' "$(hcode victim.web.test "$P_PUB")"
if wait_jlog "$RLOG" 5 event=session_refused agent=victim; then
  expect_eq "its reconnection is refused, reason logged" "identity 'victim' is revoked (deny list)" \
    "$(jlast "$RLOG" reason event=session_refused agent=victim)"
else
  not_ok "its reconnection is refused" "no session_refused for victim" "$(tail -n 5 "$WORK/victim.log")"
fi
expect_eq "... it got no new session" 1 "$(sessions "$RLOG" victim)"
stop victim
agent_home victim "$(bootstrap victim web)"
n=$(_ecount "$RLOG" enroll_refused)
enroll victim "$WORK/home-victim/creds-again"; rc=$?
expect_match "enrolling the revoked name again (with a valid bootstrap token) is refused, the agent told why" \
  "^tunnel enroll: refused by the relay \\(403\\): identity 'victim' is revoked \\(deny list\\)" \
  "$(cat "$WORK/enroll-victim.out")"
expect_eq "... the relay logs enroll_refused with the reason" "identity 'victim' is revoked (deny list)" \
  "$(new_reason "$RLOG" enroll_refused "$n")"
check "... and nothing was enrolled" test "$rc" != 0 -a -z "$(gen_of "$WORK/home-victim/creds-again")"

# victim2: renewal. First a renewal that is allowed (the probe works), then
# the revocation and a renewal at once, just after the relay's deny-list
# check (every 2 s, the last one cut victim) so that the renewal comes first.
touch "$WORK/victim2.trigger"
wait_jlog "$WORK/victim2.log" 5 event=renew_probe || bail "the renewal probe did not answer" "$(tail -n 5 "$WORK/victim2.log")"
expect_eq "(before the revocation, victim2's renewal request is granted)" true \
  "$(jlast "$WORK/victim2.log" ok event=renew_probe)"
check "(... and the relay logs it)" jhas "$RLOG" event=renewed agent=victim2
sleep_until "$(awk -v t="$(next_tick "$TICK" 2)" 'BEGIN { printf "%.3f", t + 0.3 }')"
T0=$(now)
echo "name victim2" >> "$RS/deny.txt"
touch "$WORK/victim2.trigger"
wait_count "$WORK/victim2.log" 2 5 event=renew_probe
expect_eq "a revoked name's renewal is refused, reason given" "identity 'victim2' is revoked (deny list)" \
  "$(jlast "$WORK/victim2.log" error event=renew_probe)"
expect_eq "... the relay signed nothing more for it" 1 "$(jcount "$RLOG" event=renewed agent=victim2)"
if wait_jlog "$RLOG" 5 event=session_end agent=victim2; then
  expect_between "... and its live session is cut within a few seconds (s)" 0 3.5 \
    "$(ts_delta "$T0" "$(ts_of "$RLOG" event=session_end agent=victim2)")"
else
  not_ok "... and its live session is cut within a few seconds (a renewal request at the moment of the revocation)" \
    "no session_end for victim2 $(elapsed "$T0") s after 'name victim2' was added to the deny list" \
    "its session is still up: $(jcount "$RLOG" event=session agent=victim2) session(s), 0 ended" \
    "(lua/tunnel/relay.lua watch_deny reads 'before' when its timer fires; any denied() call in between" \
    " - here cert.renew - has already stored the new mtime, so the sweep of live sessions is skipped)"
fi

# victim3: revoked while another agent connects (its session check reads the
# deny list too).
sleep_until "$(awk -v t="$(next_tick "$TICK" 2)" 'BEGIN { printf "%.3f", t + 0.3 }')"
T0=$(now)
echo "name victim3" >> "$RS/deny.txt"
agent_script "$WORK/mixed.lua" mixed "$(dir_tls "$WORK/home-mixed/creds")" \
  "$(web2_service mixed),
   { service = \"intrude\", kind = \"http\", hosts = { \"shop.db.test\" }, target = \"127.0.0.1:$P_WEB2\" }"
start_agent mixed "$WORK/mixed.lua" || bail "the mixed agent did not start"
if wait_jlog "$RLOG" 5 event=session_end agent=victim3; then
  expect_between "a revoked name's live session is cut within a few seconds, also when another agent connects then (s)" \
    0 3.5 "$(ts_delta "$T0" "$(ts_of "$RLOG" event=session_end agent=victim3)")"
else
  not_ok "a revoked name's live session is cut within a few seconds, also when another agent connects then" \
    "no session_end for victim3 $(elapsed "$T0") s after 'name victim3' was added to the deny list" \
    "(agent mixed connected $(ts_delta "$T0" "$(ts_of "$RLOG" event=session agent=mixed)") s after the change)"
fi

# --- roles: a web agent exposing a db host -----------------------------------------------
if wait_jlog "$WORK/mixed.log" 5 event=expose_failed service=intrude; then
  expect_eq "a web agent exposing a host of the db role: expose_failed with the reason" \
    "host shop.db.test does not belong to role web" "$(jlast "$WORK/mixed.log" error event=expose_failed service=intrude)"
else
  not_ok "a web agent exposing a host of the db role gets expose_failed" "$(tail -n 5 "$WORK/mixed.log")"
fi
wait_until 5 hok mixed.web.test "$P_PUB"
expect_eq "... its other service works" "another page" "$(hbody mixed.web.test "$P_PUB")"
expect_eq "... the db host is not served" 404 "$(hcode shop.db.test "$P_PUB")"
"$TUNNEL" cert issue --ca "$RS/ca" --name shop --role db --out "$WORK/c" >/dev/null || bail "db cert"
agent_script "$WORK/shop.lua" shop "$(static_tls "$WORK/c/shop.crt" "$WORK/c/shop.key")" \
  "{ service = \"shop\", kind = \"http\", hosts = { \"shop.db.test\" }, target = \"127.0.0.1:$P_SHOP\" }"
start_agent shop "$WORK/shop.lua" || bail "the shop agent did not start"
wait_exposed "$RLOG" shop 5
wait_until 5 hok shop.db.test "$P_PUB"
expect_eq "(the db role's own agent may expose it)" "the db role's shop" "$(hbody shop.db.test "$P_PUB")"
stop shop
stop mixed
stop victim2
stop victim3

# --- nothing else was disturbed ---------------------------------------------------------
stop_poller poller
expect_eq "the good agent answered every request made during all of this ($POLL_OK of $POLL_TOTAL)" \
  "$POLL_TOTAL" "$POLL_OK"
check "... and there were many" test "$POLL_TOTAL" -ge 100
expect_eq "the good agent kept its one session" 1 "$(sessions "$RLOG" good)"
expect_eq "... which never ended" 0 "$(jcount "$RLOG" event=session_end agent=good)"
expect_eq "... nor did the agent see a disconnection" 0 "$(jcount "$WORK/good.log" event=agent_disconnected)"
printf '%s\n%s\n%s\n' "$TOK" "${TOK##*.}" "${LATE#tnlb1.}" > "$WORK/secrets.lines"
check "the relay never logged a token (signed or bootstrap)" bash -c '! grep -qF -f "$1" "$2"' _ "$WORK/secrets.lines" "$RLOG"
stop good
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

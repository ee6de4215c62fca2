#!/bin/bash
# 200-identity-enroll — from nothing to a working tunnel with a bootstrap
# token, as docs/identity.md's worked example does it:
#   - the relay's operator makes a CA (`tunnel ca init`), the relay's
#     certificate, and a single-use bootstrap token for agent "laptop", role
#     web (`tunnel token bootstrap`): printed once, the store keeps only its
#     SHA-256 hash (mode 0600);
#   - a fresh agent machine (the namespace) holding only that token and the
#     CA certificate runs `tunnel enroll`: its key is made there (0600), the
#     certificate it gets has CN = laptop, OU = web, clientAuth only, a random
#     128-bit serial, NotBefore 5 minutes back and cert_ttl of validity;
#   - `tunnel run` with tls = { dir = ... } exposes an HTTP service that curl
#     reaches through the relay, as identity laptop/web with that certificate;
#   - neither the token nor the private key is in the relay's log or state:
#     and a second enrollment, read in clear by a man in the middle that holds
#     a certificate from the same CA, shows what goes over the wire (the CSR
#     and the token, never the key), and a different random serial.
. "$(dirname "$0")/identity_lib.sh"

tnl_setup
id_pki || bail "tunnel ca init / cert issue"
check "tunnel ca init: the CA key is mode 0600" test "$(stat -c %a "$RS/ca/ca.key")" = 600

P_AG=$(free_port); P_EN=$(free_port); P_PUB=$(free_port); P_WEB=$(free_port); P_MITM=$(free_port)
TTL=7200
ns_http web "$P_WEB" "laptop's page, enrolled" || bail "nginx"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local roles = require("policies.roles"){
  web = { kinds = { "http" }, hosts = { "*.web.test" } },
}
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(id_relay_tls),
  issuer_ca = "$RS/ca",
  enroll = { addr = "$RELAY_IP:$P_EN", store = "$RS/bootstrap.json" },
  cert_ttl = $TTL,
  deny = "$RS/deny.txt",
  authorize = roles.authorize,
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
wait_port "$P_EN" 5 || bail "the relay does not listen for enrollments on $P_EN"

# --- the bootstrap token ----------------------------------------------------------
TOKEN=$(bootstrap laptop web --uses 1 --ttl 1h)
expect_match "tunnel token bootstrap prints the token once, on stdout" '^tnlb1\.[A-Za-z0-9_-]{32,}$' "$TOKEN"
STORE=$RS/bootstrap.json
check "the bootstrap store is mode 0600" test "$(stat -c %a "$STORE")" = 600
out=$("$PY" - "$STORE" "$TOKEN" <<'EOF'
import hashlib, json, re, sys
data = json.load(open(sys.argv[1]))
tok = sys.argv[2]
keys = list(data["tokens"])
bad = [k for k in keys if not re.fullmatch(r"[0-9a-f]{64}", k)]
fields = sorted({f for v in data["tokens"].values() for f in v})
print("keys=%d hashed=%s bad=%d fields=%s" % (len(keys), hashlib.sha256(tok.encode()).hexdigest() in keys,
                                            len(bad), ",".join(fields)))
EOF
)
expect_eq "the store holds only the token's SHA-256 and its name, role, uses, expiry" \
  "keys=1 hashed=True bad=0 fields=created,expires,name,role,uses" "$out"
list=$("$TUNNEL" token list --store "$STORE" 2>&1)
expect_match "tunnel token list: laptop, role web, one use left" 'name=laptop role=web uses=1 expires in 3[56][0-9]{2}s' "$list"
check "... and does not show the token" bash -c '! grep -qF -- "${1#tnlb1.}" <<< "$2"' _ "$TOKEN" "$list"

# --- a fresh agent machine with only the token and the CA certificate --------------
agent_home laptop "$TOKEN"
HOME_L=$WORK/home-laptop
CR=$HOME_L/creds
expect_eq "the fresh agent holds only the token and the CA certificate" "ca.crt token" "$(ls "$HOME_L" | tr '\n' ' ' | sed 's/ $//')"
enroll laptop ""; rc=$?
out=$(cat "$WORK/enroll-laptop.out")
expect_eq "tunnel enroll succeeds" 0 "$rc"
[ "$rc" = 0 ] || bail "enrollment failed" "$out"
expect_match "... and says who it is now" "^enrolled 'laptop' \\(role web\\) in $CR" "$out"
wait_jlog "$RLOG" 5 event=enroll name=laptop || bail "the relay did not log the enrollment"
check "the relay logs the enrollment (name laptop, role web, from the agent's address)" \
  jhas "$RLOG" event=enroll name=laptop role=web "src~^$AGENT_IP:"
T_EN=$(ts_of "$RLOG" event=enroll name=laptop)

expect_eq "DIR/current points to the first generation" gen-1 "$(gen_of "$CR")"
expect_eq "the private key is mode 0600" 600 "$(stat -c %a "$CR/gen-1/key.pem")"
expect_eq "... in a folder only its owner can enter" 700 "$(stat -c %a "$CR/gen-1")"
check "key.pem and cert.pem are a pair, and the certificate verifies against the relay's CA" pair_ok "$CR" "$RS/ca/ca.crt"
check "ca.pem is the relay's CA certificate" cmp -s "$CR/gen-1/ca.pem" "$RS/ca/ca.crt"

# --- the certificate --------------------------------------------------------------
CERT=$CR/gen-1/cert.pem
text=$(openssl x509 -in "$CERT" -noout -text)
expect_eq "subject: CN = laptop (the name), OU = web (the role, from the token)" "CN=laptop,OU=web" "$(subject_of "$CERT")"
expect_eq "extendedKeyUsage: clientAuth only" "TLS Web Client Authentication" "$(eku_of "$CERT")"
expect_match "not a CA (basicConstraints CA:FALSE)" 'X509v3 Basic Constraints: critical.*CA:FALSE' "$text"
check "openssl verify accepts it as an SSL client" openssl verify -CAfile "$RS/ca/ca.crt" -purpose sslclient "$CERT"
check "... and not as an SSL server" bash -c '! openssl verify -CAfile "$1" -purpose sslserver "$2" >/dev/null 2>&1' _ "$RS/ca/ca.crt" "$CERT"
SERIAL1=$(serial_of "$CERT")
expect_between "the serial is a random 128-bit number (hex digits)" 30 32 "${#SERIAL1}"
NB=$(cert_epoch "$CERT" startdate); NA=$(cert_epoch "$CERT" enddate)
expect_between "NotBefore is 5 minutes before the enrollment (s)" 295 305 "$(ts_delta "$NB" "$T_EN" | cut -d. -f1)"
expect_between "NotAfter is cert_ttl ($TTL s) after the enrollment (s)" $((TTL - 5)) $((TTL + 5)) "$(ts_delta "$T_EN" "$NA" | cut -d. -f1)"
FP=$(fp_of "$CERT")
show=$("$TUNNEL" cert show "$CERT" 2>&1)
expect_match "tunnel cert show: name laptop, role web, its fingerprint" \
  "name: +laptop[[:space:]]+role: +web[[:space:]]+fingerprint: +${FP}[[:space:]]" "$show"
expect_match "the store now says the token is used up" 'name=laptop role=web uses=0' \
  "$("$TUNNEL" token list --store "$STORE" 2>&1)"

# --- the enrolled agent serves ------------------------------------------------------
agent_script "$WORK/agent.lua" laptop "$(dir_tls "$CR")" \
  "{ service = \"web\", kind = \"http\", hosts = { \"laptop.web.test\" }, target = \"127.0.0.1:$P_WEB\" }"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
wait_exposed "$RLOG" web || bail "the agent did not expose its service" "$(tail -n 5 "$WORK/agent.log")"
check "the relay's session is laptop/web, by certificate, with the enrolled certificate's fingerprint" \
  jhas "$RLOG" event=session agent=laptop role=web via=cert "fingerprint=$FP"
wait_until 5 hok laptop.web.test "$P_PUB"
expect_eq "curl reaches the agent's HTTP service through the relay" "laptop's page, enrolled" \
  "$(hbody laptop.web.test "$P_PUB")"

# --- the token and the key stayed where they belong -----------------------------------
# Everything the relay wrote (its log, its state) and the agent's log and
# enroll output: never the token (nor its secret part), never a line of the key.
KEYLINES=$WORK/laptop-key.lines
key_b64 "$CR/gen-1/key.pem" > "$KEYLINES"
check "the key has base64 lines to look for" test "$(wc -l < "$KEYLINES")" -ge 2
SEARCH=("$RLOG" "$WORK/agent.log" "$WORK/enroll-laptop.out" "$RS")
leaks() {   # leaks PATTERN-FILE: files (of SEARCH) that hold one of the fixed strings
  grep -rlF -f "$1" -- "${SEARCH[@]}" 2>/dev/null
}
printf '%s\n%s\n' "$TOKEN" "${TOKEN#tnlb1.}" > "$WORK/token.lines"
expect_eq "the bootstrap token is in none of the relay's log, its state folder, the agent's log" "" "$(leaks "$WORK/token.lines")"
expect_eq "no line of the agent's private key is there either" "" "$(leaks "$KEYLINES")"
check "(the search does find what is there: the token's hash in the store)" \
  grep -qF "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)" "$STORE"

# --- a second enrollment, watched in clear by a man in the middle -----------------------
# We hold the relay's CA, so a certificate for relay.test from it lets us
# terminate the agent's TLS and read what it sends.
"$TUNNEL" cert issue --ca "$RS/ca" --name mitm --server --dns relay.test --out "$WORK/mitm" >/dev/null ||
  bail "mitm certificate"
TOKEN2=$(bootstrap laptop2 web)
agent_home laptop2 "$TOKEN2"
CAP=$WORK/mitm-plaintext.bin
mitm mitm "$P_MITM" "$P_EN" "$WORK/mitm/mitm.crt" "$WORK/mitm/mitm.key" "$RS/ca/ca.crt" "$CAP" || bail "mitm"
P_EN_REAL=$P_EN; P_EN=$P_MITM
enroll laptop2 ""; rc=$?
P_EN=$P_EN_REAL
expect_eq "an enrollment through the man in the middle succeeds" 0 "$rc"
[ "$rc" = 0 ] || diag "$(cat "$WORK/enroll-laptop2.out")" "$(cat "$WORK/mitm.log")"
CR2=$WORK/home-laptop2/creds
plain=$(tr -d '\0' < "$CAP" 2>/dev/null)
expect_match "what the agent sent: POST /v1/enroll with the bootstrap token as Bearer" \
  "^POST /v1/enroll HTTP/1\\.1[[:space:]].*[[:space:]]Authorization: Bearer ${TOKEN2//./\\.}[[:space:]]" "$plain"
csr_key=$(printf '%s\n' "$plain" | sed -n '/BEGIN CERTIFICATE REQUEST/,/END CERTIFICATE REQUEST/p' |
  openssl req -noout -pubkey 2>/dev/null)
check "... and a CSR for the agent's public key" test -n "$csr_key" -a "$csr_key" = "$(pubkey_of_key "$CR2/gen-1/key.pem")"
key_b64 "$CR2/gen-1/key.pem" > "$WORK/laptop2-key.lines"
check "... and never its private key (no line of key.pem, no PRIVATE KEY block)" \
  bash -c '! grep -qF -f "$1" "$2" && ! grep -q "PRIVATE KEY" "$2"' _ "$WORK/laptop2-key.lines" "$CAP"
SERIAL2=$(serial_of "$CR2/gen-1/cert.pem")
check "two enrollments get different serials ($SERIAL1, $SERIAL2)" test -n "$SERIAL2" -a "$SERIAL1" != "$SERIAL2"
expect_between "... the second one a 128-bit number too" 30 32 "${#SERIAL2}"
check "... and unrelated ones (not a counter: they differ in more than the last 4 hex digits)" \
  test "${SERIAL1:0:${#SERIAL1}-4}" != "${SERIAL2:0:${#SERIAL2}-4}"
stop mitm

stop agent
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

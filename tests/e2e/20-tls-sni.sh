#!/bin/bash
# 20-tls-sni — TLS routed by SNI while the router holds no certificate: the
# clients (openssl s_client, curl) see each backend's own certificate, an
# unknown name gets the alert unrecognized_name, and "*.suffix" patterns work.
. "$(dirname "$0")/lib.sh"

make_ca || bail "cannot make a CA with openssl"
make_cert a a.test a.test || bail "cannot make a certificate"
make_cert b b.test b.test '*.wild.test' || bail "cannot make a certificate"

P_A=$(free_port); P_B=$(free_port); P_R=$(free_port); P_DEAD=$(free_port)
start_tls tls-a "$P_A" a "tls backend A" || bail "s_server A"
start_tls tls-b "$P_B" b "tls backend B" || bail "s_server B"

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
local route_table = require "policies.route_table"
tunnel.listen{
  name = "tls",
  addr = "127.0.0.1:$P_R",
  route = route_table{
    tls = {
      ["a.test"] = "127.0.0.1:$P_A",
      ["b.test"] = "127.0.0.1:$P_B",
      ["*.wild.test"] = "127.0.0.1:$P_B",
      ["dead.test"] = "127.0.0.1:$P_DEAD",
    },
  },
}
EOF
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log

# s_client NAME: the handshake through the router; prints s_client's output.
s_client() {
  openssl s_client -connect "127.0.0.1:$P_R" -servername "$1" -CAfile "$WORK/pki/ca.pem" \
    -verify_return_error -showcerts < /dev/null 2>&1
}
# presented NAME: fingerprint of the leaf certificate the client was shown.
presented() {
  s_client "$1" | awk '/-----BEGIN CERTIFICATE-----/ { p = 1 } p { print } /-----END CERTIFICATE-----/ { exit }' \
    > "$WORK/seen.pem"
  fingerprint "$WORK/seen.pem" 2>/dev/null
}

out=$(s_client a.test)
expect_match "s_client -servername a.test: verified handshake" 'Verify return code: 0 \(ok\)' "$out"
expect_match "s_client sees a.test's own certificate (subject)" 'subject=CN ?= ?a\.test' "$out"
expect_eq "the certificate shown for a.test is backend A's (fingerprint)" \
  "$(fingerprint "$WORK/pki/a.pem")" "$(presented a.test)"
expect_eq "the certificate shown for b.test is backend B's (fingerprint)" \
  "$(fingerprint "$WORK/pki/b.pem")" "$(presented b.test)"

out=$(curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" --resolve "a.test:$P_R:127.0.0.1" \
      "https://a.test:$P_R/index.html" 2>&1)
expect_eq "curl https://a.test reaches backend A (certificate verified by curl)" "tls backend A" "$out"
out=$(curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" --resolve "b.test:$P_R:127.0.0.1" \
      "https://b.test:$P_R/index.html" 2>&1)
expect_eq "curl https://b.test reaches backend B" "tls backend B" "$out"

# Wildcard pattern: any name under .wild.test goes to B.
out=$(curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" --resolve "x.wild.test:$P_R:127.0.0.1" \
      "https://x.wild.test:$P_R/index.html" 2>&1)
expect_eq "curl https://x.wild.test reaches B through the \"*.wild.test\" pattern" "tls backend B" "$out"
expect_eq "a deeper name (p.q.wild.test) matches \"*.wild.test\" too" \
  "$(fingerprint "$WORK/pki/b.pem")" "$(presented p.q.wild.test)"
check "the route lines carry the SNI" jhas "$LOG" event=route proto=tls sni=x.wild.test

# An unknown name: the router answers with the TLS alert unrecognized_name (112).
out=$(s_client nobody.test)
expect_match "unknown SNI: s_client reports alert unrecognized name (112)" \
  'unrecognized name|alert number 112' "$out"
out=$(curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" --resolve "nobody.test:$P_R:127.0.0.1" \
      "https://nobody.test:$P_R/" 2>&1)
expect_match "unknown SNI: curl reports the unrecognized name alert" 'unrecognized name|alert number 112' "$out"
expect_match "the bare suffix wild.test is not matched by \"*.wild.test\"" \
  'unrecognized name|alert number 112' "$(s_client wild.test)"
check "the log has a reject for the unknown SNI" jhas "$LOG" event=reject proto=tls

# A route to a dead upstream: alert internal_error (80).
out=$(s_client dead.test)
expect_match "dead upstream: s_client reports alert internal error (80)" 'internal error|alert number 80' "$out"

# SNI is matched case-insensitively (the client sends it as typed).
expect_eq "SNI A.TEST (upper case) reaches backend A" \
  "$(fingerprint "$WORK/pki/a.pem")" "$(presented A.TEST)"

# No SNI at all (a client connecting by IP): refused the same way.
out=$(openssl s_client -connect "127.0.0.1:$P_R" -noservername < /dev/null 2>&1)
expect_match "no SNI: refused with unrecognized_name" 'unrecognized name|alert number 112' "$out"

# The router never terminated TLS: the backends did every handshake.
out=$(curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" --resolve "a.test:$P_R:127.0.0.1" \
      "https://a.test:$P_R/index.html" 2>&1)
expect_eq "still serving after the refusals" "tls backend A" "$out"

stop router
expect_eq "the router exits 0 on SIGTERM" 0 "$EXIT_CODE"

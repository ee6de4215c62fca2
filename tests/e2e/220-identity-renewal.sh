#!/bin/bash
# 220-identity-renewal — an enrolled agent renews its certificate over its
# running session, and nothing notices:
#   - cert_ttl = 9 s, so a ~30 s download (22 MiB, curl --limit-rate) through
#     the tunnel spans several renewals; it completes with the right SHA-256;
#   - the session never ends (no session_end at the relay, no
#     agent_disconnected at the agent), and new requests after each renewal
#     work;
#   - each renewal is a new key and a new certificate, for the same CN and
#     role; DIR/current is always a valid pair;
#   - after the relay is killed (-9) and restarted, the agent's new session
#     presents the newest certificate (the fingerprint the agent logged at its
#     last renewal), not the enrolled one.
# e2e: solo (it measures throughput or timing: tests/run-e2e runs it alone)
. "$(dirname "$0")/identity_lib.sh"

tnl_setup
id_pki || bail "tunnel ca init / cert issue"
P_AG=$(free_port); P_EN=$(free_port); P_PUB=$(free_port); P_WEB=$(free_port)
TTL=9
SIZE=$((22 * 1024 * 1024))
ns_http web "$P_WEB" "small page" || bail "nginx"
random_file "$WORK/web/www/big.bin" "$SIZE"
WANT=$(sha256_of "$WORK/web/www/big.bin")

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local roles = require("policies.roles"){ web = { kinds = { "http" }, hosts = { "*.web.test" } } }
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(id_relay_tls),
  issuer_ca = "$RS/ca",
  enroll = { addr = "$RELAY_IP:$P_EN", store = "$RS/bootstrap.json" },
  cert_ttl = $TTL,
  authorize = roles.authorize,
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
wait_port "$P_EN" 5 || bail "no enrollment listener"

agent_home lap "$(bootstrap lap web)"
enroll lap "" || bail "enrollment" "$(cat "$WORK/enroll-lap.out")"
CR=$WORK/home-lap/creds
FP0=$(fp_of "$CR/gen-1/cert.pem")
SUBJ0=$(subject_of "$CR/gen-1/cert.pem")
KEY0=$(pubkey_of_key "$CR/gen-1/key.pem")
expect_eq "the enrolled certificate is lap/web" "CN=lap,OU=web" "$SUBJ0"
agent_script "$WORK/agent.lua" lap "$(dir_tls "$CR")" \
  "{ service = \"web\", kind = \"http\", hosts = { \"lap.web.test\" }, target = \"127.0.0.1:$P_WEB\" }"
ALOG=$WORK/agent.log
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
wait_exposed "$RLOG" web || bail "the agent did not expose" "$(tail -n 5 "$ALOG")"
check "the session is made with the enrolled certificate" jhas "$RLOG" event=session agent=lap "fingerprint=$FP0"
wait_until 5 hok lap.web.test "$P_PUB"

# --- a long download across several renewals -------------------------------------------
T_DL=$(now)
start dl curl -sS --max-time 90 --limit-rate 700k -H 'Host: lap.web.test' -o "$WORK/got.bin" \
  -w '%{http_code} %{size_download}\n' "http://127.0.0.1:$P_PUB/big.bin"
seen=0; probes=0; probes_ok=0; bad_pairs=()
while alive dl; do
  n=$(_ecount "$RLOG" renewed)
  if [ "$n" -gt "$seen" ]; then
    seen=$n
    # A new request right after each renewal, while the download goes on.
    probes=$((probes + 1))
    [ "$(hcode lap.web.test "$P_PUB")" = 200 ] && probes_ok=$((probes_ok + 1))
    wait_count "$ALOG" "$n" 2 event=renewed
    why=$(pair_ok "$CR" "$RS/ca/ca.crt") || bad_pairs+=("after renewal $n: $why")
  fi
  sleep 0.2
done
wait_exit dl 5
T_END=$(now)
expect_eq "the download ends with 200 and every byte" "200 $SIZE" "$(head -n 1 "$WORK/dl.log")"
expect_eq "... with the right SHA-256" "$WANT" "$(sha256_of "$WORK/got.bin")"
expect_between "... and it took a while, spanning renewals (s)" 12 80 "$(ts_delta "$T_DL" "$T_END")"
renewals=$("$PY" - "$RLOG" "$T_DL" "$T_END" <<'EOF'
import json, sys, datetime
a, b = float(sys.argv[2]), float(sys.argv[3])
n = 0
for line in open(sys.argv[1]):
    if not line.startswith("{"): continue
    o = json.loads(line)
    if o.get("event") != "renewed": continue
    t = datetime.datetime.strptime(o["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    n += a <= t <= b
print(n)
EOF
)
expect_between "the relay renewed the agent's certificate at least twice during the download" 2 20 "$renewals"
# (The agent goes on renewing: count on a copy of the relay's log.)
cp "$RLOG" "$WORK/relay.copy"
NR=$(jcount "$WORK/relay.copy" event=renewed)
expect_eq "... for the same name and role every time" "$NR" "$(jcount "$WORK/relay.copy" event=renewed agent=lap role=web)"
check "the agent committed each renewal the relay signed ($NR)" wait_count "$ALOG" "$NR" 3 event=renewed
expect_eq "... and none failed" 0 "$(jcount "$ALOG" event=renew_failed)"
expect_eq "a new request right after each renewal worked ($probes_ok of $probes)" "$probes" "$probes_ok"
check "... (there were some)" test "$probes" -ge 2
expect_eq "DIR/current was a valid pair after every renewal" "" "$(printf '%s\n' "${bad_pairs[@]}")"
expect_eq "the session never ended (relay: no session_end)" 0 "$(jcount "$RLOG" event=session_end)"
expect_eq "... one session all along" 1 "$(sessions "$RLOG")"
expect_eq "... and the agent never saw a disconnection" 0 "$(jcount "$ALOG" event=agent_disconnected)"
check "the download's stream ended normally at the agent" jhas "$ALOG" event=stream_end reason=done "bytes_out~^[0-9]{8}"

# --- what the renewals made ---------------------------------------------------------------
FPS=$(jfield "$ALOG" fingerprint event=renewed)
nfps=$(printf '%s\n' "$FPS" | grep -c .)
expect_eq "each renewal is a new certificate (distinct fingerprints, none the enrolled one)" "$nfps" \
  "$( (printf '%s\n' "$FPS"; echo "$FP0") | sort -u | grep -c . | awk '{ print $1 - 1 }')"
CUR=$CR/$(gen_of "$CR")
check "DIR/current is a valid pair" pair_ok "$CR" "$RS/ca/ca.crt"
expect_eq "... the agent's last renewal" "$(printf '%s\n' "$FPS" | tail -n 1)" "$(fp_of "$CUR/cert.pem")"
check "... for a new key (not the enrolled one)" test "$(pubkey_of_key "$CUR/key.pem")" != "$KEY0"
expect_eq "... with the same CN and role" "$SUBJ0" "$(subject_of "$CUR/cert.pem")"
expect_eq "... clientAuth only, still" "TLS Web Client Authentication" "$(eku_of "$CUR/cert.pem")"
# The agent keeps renewing: a generation newer than current may be staged right
# now (written, not yet switched to). Count those up to current.
kept=$(cur=$(gen_of "$CR"); cur=${cur#gen-}
       for g in "$CR"/gen-*; do n=${g##*/gen-}; [ "$n" -le "$cur" ] && echo "$n"; done | wc -l)
expect_between "only the current and the previous generation are kept (not counting one being staged)" 1 2 "$kept"

# --- a new connection uses the new certificate ------------------------------------------------
kill9 relay
start_relay relay2 "$WORK/relay.lua" || bail "the relay did not restart"
R2=$WORK/relay2.log
wait_jlog "$R2" 10 event=session agent=lap || bail "the agent did not reconnect" "$(tail -n 5 "$ALOG")"
used=$(jlast "$R2" fingerprint event=session agent=lap)
want=$("$PY" - "$ALOG" "$R2" <<'EOF'
import json, sys
def events(path, ev):
    for line in open(path):
        if line.startswith("{"):
            o = json.loads(line)
            if o.get("event") == ev:
                yield o
sess = [o for o in events(sys.argv[2], "session") if o.get("agent") == "lap"][-1]
ren = [o for o in events(sys.argv[1], "renewed") if o["ts"] < sess["ts"]]
print(ren[-1]["fingerprint"] if ren else "")
EOF
)
expect_eq "after a relay restart, the new session presents the newest certificate (the last one renewed before it)" \
  "$want" "$used"
check "... not the enrolled one" test "$used" != "$FP0"
check "... as lap, role web" jhas "$R2" event=session agent=lap role=web via=cert
wait_until 5 hok lap.web.test "$P_PUB"
expect_eq "... and it serves" "small page" "$(hbody lap.web.test "$P_PUB")"

stop agent
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop relay2

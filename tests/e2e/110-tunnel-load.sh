#!/bin/bash
# 110-tunnel-load — one agent session under load: 100 concurrent curl
# requests all answered 200 with the right bodies; 1 GiB downloaded (nginx)
# and 1 GiB uploaded (a hashing sink) through the tunnel arrive with the same
# SHA-256. Throughput is printed as a TAP comment, not asserted.
# e2e: solo (it measures throughput or timing: tests/run-e2e runs it alone)
. "$(dirname "$0")/tunnel_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert loader web || bail "agent cert"

P_AG=$(free_port); P_PUB=$(free_port); P_WEB=$(free_port); P_SINK=$(free_port)
ns_http web "$P_WEB" "index" || bail "nginx"
mkdir -p "$WORK/want" "$WORK/got"
"$PY" -c '
import os, sys
for i in range(1, 101):
    open("%s/f%d" % (sys.argv[1], i), "wb").write(os.urandom(16384 + i * 977))' "$WORK/web/www"
random_file "$WORK/web/www/big.bin" $((1024 * 1024 * 1024)) || bail "cannot write a 1 GiB file"
BIG=$WORK/web/www/big.bin
BIG_SHA=$(sha256_of "$BIG")
ns_py sink sink "$P_SINK" || bail "sink"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local relay = assert(tunnel.relay{ addr = "$RELAY_IP:$P_AG", tls = $(relay_tls) })
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
write_script "$WORK/agent.lua" <<EOF
local tunnel = require "tunnel"
tunnel.agent{
  name = "loader",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $(agent_tls loader),
  services = {
    { service = "files", kind = "http", hosts = { "files.test" }, target = "127.0.0.1:$P_WEB" },
    { service = "sink", kind = "http", hosts = { "sink.test" }, target = "127.0.0.1:$P_SINK" },
  },
}
EOF
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
RLOG=$WORK/relay.log
wait_exposed "$RLOG" files && wait_exposed "$RLOG" sink || bail "the agent did not expose its services"

# --- 100 concurrent requests ---------------------------------------------------
args=()
for i in $(seq 1 100); do
  args+=(-o "$WORK/got/f$i" "http://127.0.0.1:$P_PUB/f$i")
done
t0=$(now)
codes=$(curl -sS --no-progress-meter --max-time 60 --parallel --parallel-immediate --parallel-max 100 \
  -H 'Host: files.test' -w '%{http_code}\n' "${args[@]}")
secs=$(elapsed "$t0")
expect_eq "100 concurrent requests through one agent: 100 x 200" "100 200" \
  "$(printf '%s\n' "$codes" | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')"
bad=0
for i in $(seq 1 100); do
  cmp -s "$WORK/web/www/f$i" "$WORK/got/f$i" || bad=$((bad + 1))
done
expect_eq "every body is byte for byte the file it asked for" 0 "$bad"
expect_eq "all of it over one agent session" 1 "$(sessions "$RLOG")"
conc=$("$PY" - "$RLOG" <<'EOF'
import json, sys
n = best = 0
for line in open(sys.argv[1]):
    if not line.startswith("{"): continue
    o = json.loads(line)
    if o.get("listener") != "public": continue
    if o.get("event") == "route" and o.get("service") == "files": n += 1; best = max(best, n)
    elif o.get("event") == "close" and o.get("service") == "files": n -= 1
print(best)
EOF
)
diag "100 requests in ${secs}s"
expect_between "they really ran concurrently (most open at once on the relay)" 20 100 "$conc"

# --- 1 GiB each way --------------------------------------------------------------
mib() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f MiB/s (%.2f Gbit/s)", b / s / 1048576, b * 8 / s / 1e9 }'; }

t0=$(now)
got=$(curl -sS --max-time 180 -H 'Host: files.test' -w '%{stderr}%{http_code} %{size_download}\n' \
  "http://127.0.0.1:$P_PUB/big.bin" 2> "$WORK/dl.info" | sha256_of)
secs=$(elapsed "$t0")
expect_eq "1 GiB download through the tunnel: status and size" "200 $((1024 * 1024 * 1024))" \
  "$(tail -n 1 "$WORK/dl.info")"
expect_eq "... and the same SHA-256" "$BIG_SHA" "$got"
diag "download: 1 GiB in ${secs}s = $(mib $((1024 * 1024 * 1024)) "$secs") (curl | sha256 on the host)"

t0=$(now)
got=$(curl -sS --max-time 180 -H 'Host: sink.test' -T "$BIG" "http://127.0.0.1:$P_PUB/upload" 2>&1)
secs=$(elapsed "$t0")
expect_eq "1 GiB upload through the tunnel arrives whole, same SHA-256 (as the sink counted it)" \
  "$BIG_SHA $((1024 * 1024 * 1024))" "$got"
diag "upload: 1 GiB in ${secs}s = $(mib $((1024 * 1024 * 1024)) "$secs") (python sink hashing in the namespace)"
rm -f "$BIG"

check "the agent is still on its first session" test "$(sessions "$RLOG")" = 1
stop agent
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

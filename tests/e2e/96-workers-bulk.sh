#!/bin/bash
# 96-workers-bulk — tunnel run --workers 2 with bulk transfers: they all
# arrive on worker 1 (connections are packed there while it is idle), and
# once it is busy it moves some of them, mid-transfer, to worker 2 with
# their sockets and pipes (core/router/move.h), the oldest first. Two
# downloads (nginx, curl) and two uploads (curl -T to a hashing sink),
# paced so that they last a few seconds, start first; then four iperf3
# streams make worker 1 busy (if the transfers have not already), and the
# transfers, older, are the first to move: every byte arrives, in order
# (sha256 and length), the moves are logged on both sides ("move" /
# "adopt"), a moved connection's close line on worker 2 counts the bytes
# moved before the move too, and afterwards both workers still serve and
# drain on SIGTERM.
# e2e: solo (it needs the load to make worker 1 busy)
. "$(dirname "$0")/lib.sh"

P_WEB=$(free_port); P_SINK=$(free_port); P_R=$(free_port); P_IPERF=$(free_port)
start_http web "$P_WEB" "web backend" || bail "nginx"
start iperf iperf3 -s -B 127.0.0.1 -p "$P_IPERF"
wait_port "$P_IPERF" 10 || bail "iperf3 -s did not listen"
pyserver sink sink "$P_SINK" || bail "upload sink"
SIZE=$((256 * 1024 * 1024))
RATE=64M                                    # 4 s a transfer
head -c "$SIZE" /dev/urandom > "$WORK/web/www/big.bin"
SHA=$(sha256sum < "$WORK/web/www/big.bin" | awk '{ print $1 }')

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
local route_table = require "policies.route_table"
tunnel.config{ management = false }
tunnel.listen{
  name = "public",
  addr = "127.0.0.1:$P_R",
  route = route_table{
    http = { ["web.test"] = "127.0.0.1:$P_WEB", ["up.test"] = "127.0.0.1:$P_SINK" },
    opaque = "127.0.0.1:$P_IPERF",          -- iperf3's first bytes match no sniffer
  },
}
EOF
start_tunnel router --workers 2 "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log
URL=http://127.0.0.1:$P_R
wait_until 10 test "$(jcount "$LOG" event=start)" -ge 2 || bail "both workers did not start"
# Until worker 1 has published its first figures, worker 2 serves what it
# accepts (pack.h); wait for the packing to be in force.
packing() { ! jlast "$LOG" msg event=worker_overflow worker=2 | grep -q 'serves what it accepts'; }
sleep 0.3
wait_until 5 packing || bail "worker 2 does not hand connections to worker 1"

# --- two downloads and two uploads, then four iperf3 streams ------------------------
for i in 1 2; do
  ( curl -sS --max-time 120 --limit-rate "$RATE" -H 'Host: web.test' "$URL/big.bin" \
      | sha256sum | awk '{ print $1 }' > "$WORK/down$i.sha" ) &
  DL[$i]=$!
  ( curl -sS --max-time 120 --limit-rate "$RATE" -H 'Host: up.test' -T "$WORK/web/www/big.bin" \
      "$URL/upload" > "$WORK/up$i.out" 2>&1 ) &
  UL[$i]=$!
done
wait_until 5 test "$(jcount "$LOG" event=route proto=http worker=1)" -ge 4 \
  || bail "the four transfers did not all start on worker 1"
sleep 0.3                                   # under way: bulk
iperf3 -c 127.0.0.1 -p "$P_R" -P 4 -t 3 -J > "$WORK/iperf.json" 2>&1
expect_eq "iperf3 -P 4 through two workers (exit status)" 0 "$?"
for i in 1 2; do wait "${DL[$i]}"; wait "${UL[$i]}"; done
for i in 1 2; do
  expect_eq "download $i of 256 MiB through two workers: the same sha256" "$SHA" "$(cat "$WORK/down$i.sha")"
  expect_eq "upload $i of 256 MiB: the sink got the same sha256 and length" "$SHA $SIZE" "$(cat "$WORK/up$i.out")"
done

# --- the moves ----------------------------------------------------------------------
moves=$(jcount "$LOG" event=move worker=1 to_worker=2)
adopts=$(jcount "$LOG" event=adopt worker=2 from_worker=1)
diag "moved by worker 1: $moves, adopted by worker 2: $adopts"
check "worker 1, once busy, moved some bulk connections to worker 2 (move)" test "$moves" -ge 1
expect_eq "worker 2 adopted every connection worker 1 moved (adopt)" "$moves" "$adopts"
check "... and no move was lost" bash -c "! grep -q move_lost '$LOG'"
# A moved connection's close line (on worker 2) counts what it carried on
# worker 1 too: each transfer is at least the whole file one way.
short=$("$PY" - "$LOG" "$SIZE" <<'PYEOF'
import json, sys
size = int(sys.argv[2])
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
adopted = {l["conn"] for l in lines if l.get("event") == "adopt" and l.get("worker") == 2}
closes = [l for l in lines if l.get("event") == "close" and l.get("worker") == 2 and l["conn"] in adopted]
http = [l for l in closes if l.get("proto") == "http"]      # curl's; iperf3's end with a reset
bad = [l for l in http if max(l["bytes_in"], l["bytes_out"]) < size or l["reason"] != "done"]
print("%d %d %d" % (len(closes), len(http) > 0, len(bad)))
PYEOF
)
expect_eq "every adopted connection closed on worker 2; curl transfers (the oldest) among them, each 'done' with the whole file counted" \
  "$adopts 1 0" "$short"
check "worker 1 kept some of the eight bulk connections ($moves moved)" test "$moves" -lt 8

# --- afterwards: both serve, SIGTERM drains -----------------------------------------
fails=$(curl_fails 10 web.test "$URL/" "web backend")
expect_eq "10 requests after the transfers: none fails" 0 "$fails"
stop router
expect_eq "SIGTERM: the parent exits 0" 0 "$EXIT_CODE"
check "no sanitizer or error report in the router's log" bash -c "! grep -q -e '\"level\":\"error\"' '$LOG'"

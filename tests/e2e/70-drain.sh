#!/bin/bash
# 70-drain — SIGTERM while a slow download is in flight: the download
# completes intact, new connections are refused at once, the router exits 0
# once it is done. With a short drain deadline (--drain 1, or
# tunnel.config{drain_timeout}) a longer transfer is cut and the router still
# exits 0, at about the deadline.
. "$(dirname "$0")/lib.sh"

P_WEB=$(free_port); P_R=$(free_port)
start_http web "$P_WEB" "web" || bail "nginx"
head -c $((32 * 1024 * 1024)) /dev/urandom > "$WORK/web/www/big.bin"
WANT=$(sha256sum < "$WORK/web/www/big.bin" | awk '{ print $1 }')
SIZE=$(stat -c %s "$WORK/web/www/big.bin")

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
tunnel.listen{ name = "public", addr = "127.0.0.1:$P_R",
               route = function(conn) return "127.0.0.1:$P_WEB" end }
EOF
write_script "$WORK/router-config.lua" <<EOF
local tunnel = require "tunnel"
tunnel.config{ drain_timeout = 1 }
tunnel.listen{ name = "public", addr = "127.0.0.1:$P_R",
               route = function(conn) return "127.0.0.1:$P_WEB" end }
EOF
URL=http://127.0.0.1:$P_R/big.bin

refused() { curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$P_R/"; [ $? -eq 7 ]; }
size_at_least() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
# watch_exits A B: poll until both have exited (at most 30 s); sets
# EXIT_AT_<name> to the time each was first seen gone, relative to $T_TERM.
watch_exits() {
  local n
  for n in "$@"; do eval "EXIT_AT_${n//-/_}="; done
  local deadline=$(( $(date +%s) + 30 ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    local left=0
    for n in "$@"; do
      local v="EXIT_AT_${n//-/_}"
      if [ -z "${!v}" ]; then
        if alive "$n"; then left=1; else eval "$v=$(elapsed "$T_TERM")"; fi
      fi
    done
    [ $left = 0 ] && return 0
    sleep 0.02
  done
  return 1
}

# --- 1. a drain that lets the transfer finish ------------------------------
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
# 32 MiB at 16 MB/s: about 2 s, far more than the socket buffers can hold.
start dl curl -sS --max-time 60 --limit-rate 16M -o "$WORK/dl1" "$URL"
wait_until 10 size_at_least "$WORK/dl1" $((2 * 1024 * 1024)) || bail "the download did not start"
T_TERM=$(now)
signal router TERM
if wait_until 1 refused; then ok "right after SIGTERM new connections are refused"
else not_ok "right after SIGTERM new connections are refused"; fi
sleep 0.3
check "the router is still running 0.3 s after SIGTERM (transfer in flight)" alive router
watch_exits dl router
wait_exit dl 1; dl_rc=$EXIT_CODE
wait_exit router 1; router_rc=$EXIT_CODE
expect_eq "the in-flight download completed (curl exit status)" 0 "$dl_rc"
expect_eq "the download is intact (sha256 of 32 MiB)" "$WANT" "$(sha256sum < "$WORK/dl1" | awk '{ print $1 }')"
expect_eq "the router exits 0 after draining" 0 "$router_rc"
expect_between "the download took its ~2 s (it was not cut; s after SIGTERM)" 1.0 10 "$EXIT_AT_dl"
expect_between "the router exited once the transfer was done (s after curl)" -2.0 1.0 \
  "$(awk -v r="$EXIT_AT_router" -v d="$EXIT_AT_dl" 'BEGIN { printf "%.3f", r - d }')"
check "the log shows the drain and its end" jhas "$WORK/router.log" event=drain_done
check "the download's close line counts every byte" \
  "$PY" -c 'import json,sys
n = [json.loads(l)["bytes_out"] for l in open(sys.argv[1]) if l.startswith("{") and "\"close\"" in l]
sys.exit(0 if n and max(n) >= int(sys.argv[2]) else "bytes_out %s < %s" % (n, sys.argv[2]))' \
  "$WORK/router.log" "$SIZE"

# --- 2. --drain 1: the deadline cuts a longer transfer -----------------------
mv "$WORK/router.log" "$WORK/router-1.log"
start_tunnel router --drain 1 "$WORK/router.lua" || bail "the router did not start (--drain 1)"
# 32 MiB at 4 MB/s: 8 s, far past the 1 s deadline.
start dl curl -sS --max-time 60 --limit-rate 4M -o "$WORK/dl2" "$URL"
wait_until 10 size_at_least "$WORK/dl2" $((1024 * 1024)) || bail "the download did not start"
T_TERM=$(now)
signal router TERM
watch_exits router
wait_exit router 1
expect_eq "--drain 1: the router exits 0 at the deadline" 0 "$EXIT_CODE"
expect_between "--drain 1: it exits about 1 s after SIGTERM (s)" 0.8 2.5 "$EXIT_AT_router"
t_dl=$(now)
wait_exit dl 15 || stop dl
diag "curl ended $(elapsed "$t_dl") s after the router"
expect_match "--drain 1: the transfer was cut (curl failed)" '^[1-9][0-9]*$' "$EXIT_CODE"
got=$(stat -c %s "$WORK/dl2")
if [ "$got" -lt "$SIZE" ]; then ok "--drain 1: the client got only part of the file ($got of $SIZE bytes)"
else not_ok "--drain 1: the client got only part of the file" "got all $got bytes"; fi
check "--drain 1: the log says the deadline was reached" jhas "$WORK/router.log" event=drain_deadline

# --- 3. tunnel.config{ drain_timeout = 1 } does the same ----------------------
mv "$WORK/router.log" "$WORK/router-2.log"
start_tunnel router "$WORK/router-config.lua" || bail "the router did not start (drain_timeout)"
start dl curl -sS --max-time 60 --limit-rate 4M -o "$WORK/dl3" "$URL"
wait_until 10 size_at_least "$WORK/dl3" $((1024 * 1024)) || bail "the download did not start"
T_TERM=$(now)
signal router TERM
watch_exits router
wait_exit router 1
expect_eq "drain_timeout = 1: the router exits 0" 0 "$EXIT_CODE"
expect_between "drain_timeout = 1: about 1 s after SIGTERM (s)" 0.8 2.5 "$EXIT_AT_router"
stop dl

# --- 4. a second SIGTERM during the drain ends it at once ---------------------
mv "$WORK/router.log" "$WORK/router-3.log"
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
start dl curl -sS --max-time 60 --limit-rate 4M -o "$WORK/dl4" "$URL"
wait_until 10 size_at_least "$WORK/dl4" $((1024 * 1024)) || bail "the download did not start"
signal router TERM
wait_jlog "$WORK/router.log" 5 event=drain
sleep 0.2
T_TERM=$(now)
signal router TERM
watch_exits router
wait_exit router 1
expect_eq "a second SIGTERM: the router exits 0" 0 "$EXIT_CODE"
expect_between "a second SIGTERM: at once (s)" 0 0.5 "$EXIT_AT_router"
stop dl

#!/bin/bash
# 90-splice — the data path: 100 MiB each way arrives with the same sha256,
# many transfers at once stay intact, half-close works both ways (a client
# that shuts down its write side still gets the whole reply; an upstream that
# does so still gets the rest of the upload), and IPv6 works for the upstream
# and for the listener.
. "$(dirname "$0")/lib.sh"

P_WEB=$(free_port); P_SINK=$(free_port); P_EOF=$(free_port); P_EARLY=$(free_port)
P_R=$(free_port); P_WEB6=$(free_port); P_R6=$(free_port)
HAVE_V6=0
ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128' && HAVE_V6=1

start_http web "$P_WEB" "web backend" || bail "nginx"
pyserver sink sink "$P_SINK" || bail "upload sink"
pyserver eofreply eofreply "$P_EOF" 4194304 || bail "eofreply server"
pyserver early earlyclose "$P_EARLY" || bail "earlyclose server"
if [ $HAVE_V6 = 1 ]; then
  start_http web6 "$P_WEB6" "v6 backend" "[::1]:$P_WEB6" || bail "nginx on ::1"
fi

head -c $((100 * 1024 * 1024)) /dev/urandom > "$WORK/web/www/100m.bin"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$WORK/web/www/4m.bin"
SHA100=$(sha256sum < "$WORK/web/www/100m.bin" | awk '{ print $1 }')
SHA4=$(sha256sum < "$WORK/web/www/4m.bin" | awk '{ print $1 }')

v6_listener=""
[ $HAVE_V6 = 1 ] && v6_listener="tunnel.listen{ name = \"v6\", addr = \"[::1]:$P_R6\", route = route }"
write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
local route_table = require "policies.route_table"
local route = route_table{
  http = {
    ["web.test"] = "127.0.0.1:$P_WEB",
    ["up.test"] = "127.0.0.1:$P_SINK",
    ["eof.test"] = "127.0.0.1:$P_EOF",
    ["early.test"] = "127.0.0.1:$P_EARLY",
    ["v6.test"] = "[::1]:$P_WEB6",
  },
}
tunnel.listen{ name = "public", addr = "127.0.0.1:$P_R", route = route }
$v6_listener
EOF
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log
URL=http://127.0.0.1:$P_R

# --- 100 MiB each way ------------------------------------------------------------
t0=$(now)
curl -sS --max-time 120 -H 'Host: web.test' -o "$WORK/down.bin" "$URL/100m.bin"; rc=$?
diag "download: $(elapsed "$t0") s"
expect_eq "download of 100 MiB through the router (curl exit status)" 0 "$rc"
expect_eq "... arrives with the same sha256" "$SHA100" "$(sha256sum < "$WORK/down.bin" | awk '{ print $1 }')"
rm -f "$WORK/down.bin"

t0=$(now)
out=$(curl -sS --max-time 120 -H 'Host: up.test' -T "$WORK/web/www/100m.bin" "$URL/upload" 2>&1); rc=$?
diag "upload: $(elapsed "$t0") s"
expect_eq "upload of 100 MiB through the router (curl exit status)" 0 "$rc"
expect_eq "... the upstream received the same sha256 and length" "$SHA100 $((100 * 1024 * 1024))" "$out"
check "the close lines count both directions (>= 100 MiB in, >= 100 MiB out)" \
  "$PY" -c 'import json, sys
c = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
c = [o for o in c if o.get("event") == "close"]
big = 100 * 1024 * 1024
sys.exit(0 if any(o["bytes_out"] >= big for o in c) and any(o["bytes_in"] >= big for o in c)
         else "close lines: %s" % [(o["bytes_in"], o["bytes_out"]) for o in c])' "$LOG"

# --- many at once -------------------------------------------------------------------
seq 1 32 | xargs -P 16 -I{} sh -c \
  'curl -sS --max-time 60 -H "Host: web.test" "$1/4m.bin" | sha256sum | cut -d" " -f1' _ "$URL" \
  > "$WORK/parallel.out" 2>&1
expect_eq "32 downloads of 4 MiB, 16 at a time, all intact" "32 $SHA4" \
  "$(sort "$WORK/parallel.out" | uniq -c | awk '{ print $1, $2 }' | tr '\n' ' ' | sed 's/ $//')"

# --- half-close -------------------------------------------------------------------------
# The client sends a request and 1 MiB, then shuts down its write side; the
# upstream reads until that FIN, then answers with a digest and 4 MiB.
head -c 1048576 /dev/urandom > "$WORK/up1m.bin"
{ printf 'POST /eof HTTP/1.1\r\nHost: eof.test\r\n\r\n'; cat "$WORK/up1m.bin"; } > "$WORK/req.bin"
want="n=$(stat -c %s "$WORK/req.bin") sha256=$(sha256sum < "$WORK/req.bin" | awk '{ print $1 }')"
res=$(pysend 127.0.0.1 "$P_R" "@$WORK/req.bin" --shut --max 20)
expect_eq "half-close: the upstream saw the client's FIN after all its bytes" "$want" \
  "$(jget "$res" reply | sed -n 1p)"
expect_eq "half-close: the client still received the whole reply after its shutdown(SHUT_WR)" \
  "$(( ${#want} + 1 + 4194304 )) closed" "$(jget "$res" reply_len) $(jget "$res" end)"

# A 12 KiB request head (more than the first peek buffer) sent in three
# pieces: sniffing grows its buffer, and the upstream still gets every byte.
{ printf 'POST /big HTTP/1.1\r\nHost: eof.test\r\n'
  for i in $(seq 1 12); do printf 'X-Fill-%02d: %s\r\n' "$i" "$(head -c 1000 /dev/zero | tr '\0' 'x')"; done
  printf '\r\n'; head -c 5000 /dev/urandom; } > "$WORK/bighead.bin"
head -c 3000 "$WORK/bighead.bin" > "$WORK/p1"; tail -c +3001 "$WORK/bighead.bin" | head -c 6000 > "$WORK/p2"
tail -c +9001 "$WORK/bighead.bin" > "$WORK/p3"
want="n=$(stat -c %s "$WORK/bighead.bin") sha256=$(sha256sum < "$WORK/bighead.bin" | awk '{ print $1 }')"
res=$(pysend 127.0.0.1 "$P_R" "@$WORK/p1" --pause 0.2 "@$WORK/p2" --pause 0.2 "@$WORK/p3" --shut --max 20)
expect_eq "a 12 KiB request head in three pieces reaches the upstream byte for byte" "$want" \
  "$(jget "$res" reply | sed -n 1p)"

# The other way: the upstream says "bye" and shuts down its write side at
# once; the client keeps sending for a while (1 MiB, 0.3 s later), then closes.
res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'POST /early HTTP/1.1\r\nHost: early.test\r\n\r\n')" \
      --pause 0.3 "@$WORK/up1m.bin" --shut --max 20)
expect_eq "upstream half-close: the client got the upstream's bytes and its FIN" "bye closed" \
  "$(jget "$res" reply | tr -d '\n') $(jget "$res" end)"
head_len=$(printf 'POST /early HTTP/1.1\r\nHost: early.test\r\n\r\n' | wc -c)
want="got n=$((head_len + 1048576)) sha256=$( { printf 'POST /early HTTP/1.1\r\nHost: early.test\r\n\r\n'; cat "$WORK/up1m.bin"; } | sha256sum | awk '{ print $1 }')"
wait_log "$WORK/early.log" '^got ' 10
expect_eq "upstream half-close: the bytes sent after it still reached the upstream" "$want" \
  "$(grep '^got ' "$WORK/early.log" | tail -n 1)"

# --- IPv6 ---------------------------------------------------------------------------------
if [ $HAVE_V6 = 1 ]; then
  out=$(curl -sS --max-time 10 -H 'Host: v6.test' "$URL/" 2>&1)
  expect_eq "an IPv6 upstream ([::1]:port) is reached" "v6 backend" "$out"
  check "the route line names the IPv6 upstream" jhas "$LOG" event=route host=v6.test "upstream=[::1]:$P_WEB6"
  out=$(curl -sS --max-time 10 -g -H 'Host: web.test' "http://[::1]:$P_R6/" 2>&1)
  expect_eq "an IPv6 listener ([::1]:port) serves" "web backend" "$out"
  check "its accept line has the IPv6 client address" jhas "$LOG" event=accept listener=v6 'src~^\[::1\]:[0-9]+$'
  curl -sS --max-time 60 -g -H 'Host: web.test' -o "$WORK/down6.bin" "http://[::1]:$P_R6/4m.bin"
  expect_eq "4 MiB over the IPv6 listener arrives intact" "$SHA4" "$(sha256sum < "$WORK/down6.bin" | awk '{ print $1 }')"
else
  skip "IPv6 upstream and listener" "no ::1 on lo"
fi

stop router
expect_eq "the router exits 0 on SIGTERM" 0 "$EXIT_CODE"

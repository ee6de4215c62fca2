#!/bin/bash
# 10-http-host — one router port, HTTP routed by Host: two nginx backends,
# 404 for an unknown Host, 502 for a dead upstream, and a short request
# answered at once (the router does not wait for a fixed number of bytes).
. "$(dirname "$0")/lib.sh"

P_A=$(free_port); P_B=$(free_port); P_DEAD=$(free_port); P_R=$(free_port)
P_H2=$(free_port); P_HOLE=$(free_port); P_R2=$(free_port)
start_http web-a "$P_A" "backend A" || bail "nginx A"
start_http web-b "$P_B" "backend B" || bail "nginx B"
# h2c (HTTP/2 with prior knowledge) only.
start_http web-h2 "$P_H2" "backend H2" "127.0.0.1:$P_H2 http2" || bail "nginx h2c"
# A port whose accept queue is full: connecting there hangs.
pyserver hole blackhole "$P_HOLE" || bail "blackhole"
wait_log "$WORK/hole.log" ready 5

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
local route_table = require "policies.route_table"
tunnel.listen{
  name = "public",
  addr = "127.0.0.1:$P_R",
  sniff = { timeout = 5 },
  connect_timeout = 0.5,
  route = route_table{
    http = {
      ["a.test"] = "127.0.0.1:$P_A",
      ["b.test"] = "127.0.0.1:$P_B",
      ["dead.test"] = "127.0.0.1:$P_DEAD",
      ["hole.test"] = "127.0.0.1:$P_HOLE",
      ["name.test"] = "localhost:$P_A",
    },
    http2 = "127.0.0.1:$P_H2",
  },
}
-- The same without an http2 route.
tunnel.listen{
  name = "no-h2",
  addr = "127.0.0.1:$P_R2",
  route = route_table{ http = { ["a.test"] = "127.0.0.1:$P_A" } },
}
EOF
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log
URL=http://127.0.0.1:$P_R/

out=$(curl -sS --max-time 10 -H 'Host: a.test' "$URL" 2>&1)
expect_eq "Host a.test reaches backend A" "backend A" "$out"
out=$(curl -sS --max-time 10 -H 'Host: b.test' "$URL" 2>&1)
expect_eq "Host b.test reaches backend B" "backend B" "$out"
out=$(curl -sS --max-time 10 -H 'Host: B.Test:8080' "$URL" 2>&1)
expect_eq "Host is matched case-insensitively and without its port" "backend B" "$out"
out=$(curl -sS --max-time 10 -D - -o /dev/null -H 'Host: a.test' "$URL" 2>&1)
expect_match "the backend's own headers come through (X-Backend: web-a)" $'[Xx]-[Bb]ackend: web-a\r' "$out"

# Unknown Host: 404 with a short text body, answered by the router itself.
out=$(curl -sS --max-time 10 -w '\n%{http_code} %{content_type} %{size_download}' -H 'Host: nobody.test' "$URL" 2>&1)
status=$(printf '%s' "$out" | tail -n 1)
body=$(printf '%s' "$out" | sed '$ d')
expect_match "unknown Host gets 404 text/plain" '^404 text/plain' "$status"
size=$(printf '%s' "$status" | awk '{ print $3 }')
expect_between "the 404 body is short text" 1 200 "$size"
expect_match "the 404 body says there is no route" '[Nn]o route|[Nn]ot [Ff]ound' "$body"
check "the log has a reject for the unknown Host" jhas "$LOG" event=reject proto=http

# A route to a port where nothing listens: 502.
code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Host: dead.test' "$URL")
expect_eq "a dead upstream gets 502" "502" "$code"
check "the log has a reject for the dead upstream" jhas "$LOG" event=reject
check "the log's close line for it carries a reason" jhas "$LOG" event=close "upstream=127.0.0.1:$P_DEAD" reason~.

# An upstream that does not answer the connect: 502 at the connect_timeout.
t0=$(now)
code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Host: hole.test' "$URL")
took=$(elapsed "$t0")
expect_eq "an upstream whose connect hangs gets 502" "502" "$code"
expect_between "... after connect_timeout = 0.5 s (s)" 0.4 1.5 "$took"
check "... and the log says the connect timed out" jhas "$LOG" event=close "upstream=127.0.0.1:$P_HOLE" "reason~timed out"

# An upstream given by name.
out=$(curl -sS --max-time 10 -H 'Host: name.test' "$URL" 2>&1)
expect_eq "an upstream given by host name (localhost:port) is reached" "backend A" "$out"

# HTTP/2 with prior knowledge is routed by the http2 entry; without one the
# client gets an HTTP/2 refusal (GOAWAY), not a hang.
out=$(curl -sS --max-time 10 --http2-prior-knowledge "$URL" 2>&1)
expect_eq "h2c (prior knowledge) reaches the http2 backend" "backend H2" "$out"
t0=$(now)
out=$(curl -sS -v --max-time 10 --http2-prior-knowledge "http://127.0.0.1:$P_R2/" 2>&1); rc=$?
took=$(elapsed "$t0")
expect_match "h2c without an http2 route: curl fails on the router's GOAWAY" \
  "^(16|55|56|92):.*GOAWAY" "$rc:$out"
expect_between "... at once (s)" 0 1 "$took"

# The router keeps serving after the refusals.
out=$(curl -sS --max-time 10 -H 'Host: a.test' "$URL" 2>&1)
expect_eq "still serving after refusals" "backend A" "$out"

# A short request from a client that then waits (no FIN): the router must
# decide on these few bytes and answer long before the 5 s sniff timeout.
res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n')" --max 8)
first=$(jget "$res" first_byte_after_send)
expect_between "a short request is answered at once (s, sniff timeout 5 s)" 0 0.5 "$first"
expect_match "and the answer is backend A's page" 'backend A$' "$(jget "$res" reply)"
# Without Connection: close the answer must still come at once (the router
# needs no FIN and no byte count): the minimal request from the brief.
res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'GET / HTTP/1.1\r\nHost: a\r\n\r\n')" --max 2)
first=$(jget "$res" first_byte_after_send)
expect_between "the minimal 'Host: a' request is answered at once (404, s)" 0 0.5 "$first"
expect_match "with the router's 404" '^HTTP/1\.1 404' "$(jget "$res" reply)"

# A request head that arrives in pieces: the router waits for the Host line.
res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'GET / HTTP/1.1\r\n')" --pause 0.3 "$(tohex 'Host: b.test\r\n')" \
      --pause 0.3 "$(tohex 'Connection: close\r\n\r\n')" --max 5)
expect_match "a request head sent in three pieces 0.3 s apart is routed by its Host" 'backend B$' "$(jget "$res" reply)"

# Bytes counted in the close lines (a user reading the log checks these):
# exactly what curl sent and received, found by curl's local port.
read -r port sent got_h got_b < <(curl -s --max-time 10 -o /dev/null -H 'Host: b.test' \
  -w '%{local_port} %{size_request} %{size_header} %{size_download}\n' "$URL")
wait_jlog "$LOG" 5 event=close "src=127.0.0.1:$port"
expect_eq "the close line counts bytes_in = the request curl sent, bytes_out = what it received" \
  "$sent $((got_h + got_b))" \
  "$(jlast "$LOG" bytes_in event=close "src=127.0.0.1:$port") $(jlast "$LOG" bytes_out event=close "src=127.0.0.1:$port")"
check "every close line has bytes_in, bytes_out, duration and reason" \
  "$PY" -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    if not line.startswith("{"): continue
    o = json.loads(line)
    if o.get("event") != "close": continue
    n += 1
    missing = [k for k in ("bytes_in", "bytes_out", "duration", "reason") if k not in o]
    if missing: sys.exit("close without %s: %s" % (missing, line))
sys.exit(0 if n >= 6 else "only %d close lines" % n)' "$LOG"

stop router
expect_eq "the router exits 0 on SIGTERM" 0 "$EXIT_CODE"

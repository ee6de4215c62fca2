#!/bin/bash
# 50-sniff-timeout — what happens to clients that do not say enough:
#  - on_timeout = "close": a silent client is closed at the sniff timeout (1 s),
#    and so is one that sent an unfinished request;
#  - on_timeout = "opaque": a silent client is routed as "opaque" to a
#    server-speaks-first backend and gets its banner;
#  - the peek limit ends sniffing without waiting for the timeout.
. "$(dirname "$0")/lib.sh"

P_WEB=$(free_port); P_BAN=$(free_port); P_CLOSE=$(free_port); P_OPAQUE=$(free_port); P_SMALL=$(free_port)
start_http web "$P_WEB" "web backend" || bail "nginx"
pyserver banner banner "$P_BAN" "220 banner.test ESMTP ready" || bail "banner server"

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
local route_table = require "policies.route_table"

-- A Lua matcher for a lowercase line protocol "hello WHO\\r\\n"; it needs the
-- whole line (returns nil until the CR LF has arrived).
tunnel.sniffer{
  name = "hello",
  match = function(bytes)
    if ("hello "):sub(1, #bytes) == bytes:sub(1, 6) then
      if bytes:find("\\r\\n", 1, true) then return true end
      return nil
    end
    return false
  end,
}

local routes = route_table{
  http = { ["*"] = "127.0.0.1:$P_WEB" },
  opaque = "127.0.0.1:$P_BAN",
  hello = "127.0.0.1:$P_BAN",
}
tunnel.listen{ name = "close", addr = "127.0.0.1:$P_CLOSE", route = routes,
               sniff = { timeout = 1, on_timeout = "close" } }
tunnel.listen{ name = "opaque", addr = "127.0.0.1:$P_OPAQUE", route = routes,
               sniff = { timeout = 1, on_timeout = "opaque" } }
tunnel.listen{ name = "small", addr = "127.0.0.1:$P_SMALL", route = routes,
               sniff = { timeout = 3, bytes = 256 } }
EOF
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log

# --- on_timeout = "close" ----------------------------------------------------
res=$("$PY" "$E2E_DIR/servers.py" silent 127.0.0.1 "$P_CLOSE" 6)
expect_match "close: a silent client is disconnected" '"how": "(closed|reset)"' "$res"
expect_between "close: ... at the 1 s sniff timeout (s)" 0.9 2.0 "$(jget "$res" seconds)"
check "close: the log has a close with a sniff-timeout reason" \
  jhas "$LOG" event=close listener=close "reason~sniff timeout"

res=$(pysend 127.0.0.1 "$P_CLOSE" "$(tohex 'GET / HTTP/1.1\r\nHost: a.test\r\n')" --max 6)
expect_eq "close: an unfinished HTTP request is disconnected without an answer" "closed:0" \
  "$(jget "$res" end | sed 's/reset/closed/'):$(jget "$res" reply_len)"
expect_between "close: ... at the sniff timeout (s)" 0.9 2.0 "$(jget "$res" seconds)"
check "close: its close line says sniff timeout and how many bytes came" \
  jhas "$LOG" event=close listener=close "reason~sniff timeout.*[0-9]+ bytes"

# A Lua matcher still asking for more when the timeout fires is a lasting
# NEED_MORE too: on a listener with on_timeout = "close" it must be closed,
# not let through as "opaque".
res=$(pysend 127.0.0.1 "$P_CLOSE" "$(tohex 'hello wor')" --max 3)
expect_eq "close: a client the Lua matcher still needs more from is closed at the timeout (no banner)" \
  "closed:" "$(jget "$res" end | sed 's/reset/closed/'):$(jget "$res" reply)"

# The timeout does not slow down a client that speaks.
t0=$(now)
out=$(curl -sS --max-time 5 "http://127.0.0.1:$P_CLOSE/" 2>&1)
expect_eq "close: HTTP on the same listener is routed" "web backend" "$out"
expect_between "close: ... without waiting for the sniff timeout (s)" 0 0.5 "$(elapsed "$t0")"

# --- on_timeout = "opaque" ---------------------------------------------------
res=$("$PY" "$E2E_DIR/servers.py" silent 127.0.0.1 "$P_OPAQUE" 6)
expect_match "opaque: a silent client gets the server-speaks-first banner" \
  '"data": "220 banner.test ESMTP ready' "$res"
expect_between "opaque: ... once the 1 s sniff timeout has passed (s)" 0.9 2.0 "$(jget "$res" seconds)"
check "opaque: the route line says proto opaque" \
  jhas "$LOG" event=route listener=opaque proto=opaque "upstream=127.0.0.1:$P_BAN"

# The banner backend echoes: the conversation goes on after the banner.
res=$(pysend 127.0.0.1 "$P_OPAQUE" "" --pause 1.3 "$(tohex 'EHLO me\r\n')" --max 1.5)
expect_match "opaque: after the banner the client's own bytes reach the backend (echo)" \
  '^220 banner.test ESMTP ready..EHLO me' "$(jget "$res" reply)"

# A lasting NEED_MORE (an unfinished request line) is turned into the opaque
# fallback by this listener's configuration (docs/sniffers.md): the client
# reaches the banner backend and its bytes are replayed to it.
res=$(pysend 127.0.0.1 "$P_OPAQUE" "$(tohex 'GE')" --max 4)
expect_match "opaque: an unfinished request (\"GE\") falls back to opaque at the timeout" \
  '^220 banner.test ESMTP ready..GE' "$(jget "$res" reply)"

out=$(curl -sS --max-time 5 "http://127.0.0.1:$P_OPAQUE/" 2>&1)
expect_eq "opaque: HTTP on that listener is still routed as http" "web backend" "$out"

# --- the peek limit (sniff.bytes = 256) ------------------------------------
long=$(printf 'X-Filler-%03d: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n' $(seq 1 20))
res=$(pysend 127.0.0.1 "$P_SMALL" "$(tohex "GET / HTTP/1.1\r\nHost: a.test\r\n$long")" --max 5)
expect_match "a request head larger than sniff.bytes is refused" '"end": "(closed|reset)"' "$res"
expect_between "... as soon as the limit is reached, not at the 3 s timeout (s)" 0 1.0 "$(jget "$res" seconds)"
check "its close line says the peek limit was reached" jhas "$LOG" event=close listener=small "reason~peek limit"

stop router
expect_eq "the router exits 0 on SIGTERM" 0 "$EXIT_CODE"

#!/bin/bash
# 85-proxy-protocol — haproxy in front (send-proxy-v2 and send-proxy v1): a
# proxy_protocol listener hands the route hook the real client address as
# conn.src (logged with tunnel.log and used for routing); without the header
# such a listener refuses. send_proxy = true writes a PROXY v2 header to the
# upstream (a small upstream parses it and answers with what it read).
. "$(dirname "$0")/lib.sh"

if ! command -v haproxy >/dev/null; then
  skip "PROXY protocol with haproxy in front" "haproxy not installed (Debian: haproxy)"
  exit 0
fi

P_WEB=$(free_port); P_PPV2=$(free_port)
P_PP=$(free_port); P_SP=$(free_port); P_BOTH=$(free_port)
H_V2=$(free_port); H_V1=$(free_port); H_BOTH=$(free_port); H_V6=$(free_port)
start_http web "$P_WEB" "web backend" || bail "nginx"
pyserver ppv2 ppv2 "$P_PPV2" || bail "PROXY v2 upstream"

HAVE_V6=0
ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128' && HAVE_V6=1
v6_frontend=""
[ $HAVE_V6 = 1 ] && v6_frontend="frontend v6
  bind [::1]:$H_V6
  default_backend to_router_v2"

cat > "$WORK/haproxy.cfg" <<EOF
global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v2
  bind 127.0.0.1:$H_V2
  default_backend to_router_v2
frontend v1
  bind 127.0.0.1:$H_V1
  default_backend to_router_v1
frontend both
  bind 127.0.0.1:$H_BOTH
  default_backend to_router_both
$v6_frontend
backend to_router_v2
  server router 127.0.0.1:$P_PP send-proxy-v2
backend to_router_v1
  server router 127.0.0.1:$P_PP send-proxy
backend to_router_both
  server router 127.0.0.1:$P_BOTH send-proxy-v2
EOF
haproxy -c -f "$WORK/haproxy.cfg" > "$WORK/haproxy-check.log" 2>&1 || bail "haproxy config" "$(cat "$WORK/haproxy-check.log")"
start haproxy haproxy -db -f "$WORK/haproxy.cfg"
wait_port "$H_V2" 10 || bail "haproxy did not listen" "$(cat "$WORK/haproxy.log")"

write_script "$WORK/router.lua" <<EOF
local tunnel = require "tunnel"
tunnel.listen{
  name = "pp", addr = "127.0.0.1:$P_PP", proxy_protocol = true,
  route = function(conn)
    tunnel.log("info", "client_src", { src = conn.src, dst = conn.dst, host = conn.host or "" })
    if conn.src:match("^127%.0%.0%.3:") then return nil, "127.0.0.3 is not welcome" end
    return "127.0.0.1:$P_WEB"
  end,
}
tunnel.listen{
  name = "sp", addr = "127.0.0.1:$P_SP", send_proxy = true,
  route = function(conn) return "127.0.0.1:$P_PPV2" end,
}
tunnel.listen{
  name = "both", addr = "127.0.0.1:$P_BOTH", proxy_protocol = true, send_proxy = true,
  route = function(conn) return "127.0.0.1:$P_PPV2" end,
}
EOF
start_tunnel router "$WORK/router.lua" || bail "the router did not start"
LOG=$WORK/router.log

# via FROM-IP URL [Host]: curl from FROM-IP; prints
# "<body>|<local port>|<code>|<bytes sent>|<bytes received>".
via() {
  curl -sS --max-time 10 --interface "$1" -H "Host: ${3:-pp.test}" \
    -w '|%{local_port}|%{http_code}|%{size_request}|%{size_header}' "$2" 2>&1
}
field() { printf '%s' "$1" | tr '\n' ' ' | cut -d'|' -f"$2"; }

res=$(via 127.0.0.2 "http://127.0.0.1:$H_V2/")
port=$(printf '%s' "$res" | cut -d'|' -f2)
expect_eq "haproxy send-proxy-v2 -> router -> backend" "web backend|200" "$(printf '%s' "$res" | cut -d'|' -f1,3)"
expect_eq "v2: conn.src is the real client (127.0.0.2 and curl's own port)" "127.0.0.2:$port" \
  "$(jlast "$LOG" src event=client_src)"
expect_eq "v2: conn.dst is the address the client connected to (haproxy's frontend)" "127.0.0.1:$H_V2" \
  "$(jlast "$LOG" dst event=client_src)"

res=$(via 127.0.0.2 "http://127.0.0.1:$H_V1/")
port=$(printf '%s' "$res" | cut -d'|' -f2)
expect_eq "haproxy send-proxy (v1) -> router -> backend" "web backend|200" "$(printf '%s' "$res" | cut -d'|' -f1,3)"
expect_eq "v1: conn.src is the real client" "127.0.0.2:$port" "$(jlast "$LOG" src event=client_src)"
check "the accept/close lines show the real client too" jhas "$LOG" event=close listener=pp "src=127.0.0.2:$port"
expect_eq "the close line's bytes_in is the request alone (the PROXY header is not forwarded)" \
  "$(field "$res" 4)" "$(jlast "$LOG" bytes_in event=close listener=pp "src=127.0.0.2:$port")"

res=$(via 127.0.0.3 "http://127.0.0.1:$H_V2/")
expect_eq "routing by conn.src: 127.0.0.3 gets the router's 404" 404 "$(field "$res" 3)"

if [ $HAVE_V6 = 1 ]; then
  res=$(via ::1 "http://[::1]:$H_V6/")
  port=$(printf '%s' "$res" | cut -d'|' -f2)
  expect_eq "an IPv6 client through haproxy: conn.src is [::1]:port" "[::1]:$port" "$(jlast "$LOG" src event=client_src)"
else
  skip "an IPv6 client through haproxy" "no ::1 on lo"
fi

# Without a PROXY header the listener refuses (the connection is closed).
out=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H 'Host: pp.test' "http://127.0.0.1:$P_PP/" 2>&1); rc=$?
expect_match "a client without a PROXY header is refused (no answer)" '^(52|56)$' "$rc"
check "... and the log says a PROXY header was expected" jhas "$LOG" event=reject listener=pp "reason~PROXY"

# send_proxy: the upstream reads our v2 header first.
res=$(via 127.0.0.2 "http://127.0.0.1:$P_SP/" sp.test)
port=$(printf '%s' "$res" | cut -d'|' -f2)
expect_eq "send_proxy: the upstream reads a v2 header with the client's address and the Host" \
  "src=127.0.0.2:$port dst=127.0.0.1:$P_SP authority=sp.test" "$(printf '%s' "$res" | cut -d'|' -f1)"
wait_jlog "$LOG" 5 event=close listener=sp "src=127.0.0.2:$port"
expect_eq "send_proxy: bytes_in counts the client's bytes, not our header" \
  "$(field "$res" 4)" "$(jlast "$LOG" bytes_in event=close listener=sp "src=127.0.0.2:$port")"

# Both: the address haproxy reported is passed on to the upstream.
res=$(via 127.0.0.2 "http://127.0.0.1:$H_BOTH/" both.test)
port=$(printf '%s' "$res" | cut -d'|' -f2)
expect_eq "haproxy -> router (proxy_protocol + send_proxy) -> upstream sees the real client" \
  "src=127.0.0.2:$port dst=127.0.0.1:$H_BOTH authority=both.test" "$(printf '%s' "$res" | cut -d'|' -f1)"

stop router
expect_eq "the router exits 0 on SIGTERM" 0 "$EXIT_CODE"

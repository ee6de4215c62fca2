#!/bin/bash
# 160-tunnel-proxy — send_proxy = true on an agent service hands the PUBLIC
# client's address to the local service (a PROXY v2 header from the agent);
# without it the local service sees the agent's own connection. The public
# client connects from 127.0.0.2 with a chosen source port, so its address
# cannot be confused with the agent's (127.0.0.1 where the agent runs).
# Local services: the built-in tunnel.demo (prints "client: ip:port") and a
# PROXY v2 parser (servers.py ppv2), over http and tcp services.
. "$(dirname "$0")/tunnel_lib.sh"

tnl_setup
tnl_pki || bail "tunnel ca init / cert issue"
agent_cert proxied web || bail "agent cert"

P_AG=$(free_port); P_PUB=$(free_port); P_DEMO=$(free_port); P_PP=$(free_port)
read -r R_LO R_HI < <(free_range 2) || bail "no port range"
ns_py ppv2 ppv2 "$P_PP" || bail "ppv2 server"

write_script "$WORK/relay.lua" <<EOF
local tunnel = require "tunnel"
local relay = assert(tunnel.relay{
  addr = "$RELAY_IP:$P_AG",
  tls = $(relay_tls),
  ports = { range = { $R_LO, $R_HI }, bind = "127.0.0.1" },
})
relay:listen{ name = "public", addr = "127.0.0.1:$P_PUB" }
EOF
write_script "$WORK/agent.lua" <<EOF
local tunnel = require "tunnel"
local demo = assert(tunnel.demo{ addr = "127.0.0.1:$P_DEMO", text = "demo behind the tunnel" })
tunnel.agent{
  name = "proxied",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $(agent_tls proxied),
  services = {
    { service = "demo-pp", kind = "http", hosts = { "pp.test" }, target = demo.addr, send_proxy = true },
    { service = "demo-plain", kind = "http", hosts = { "plain.test" }, target = demo.addr },
    { service = "parse-pp", kind = "http", hosts = { "parse-pp.test" }, target = "127.0.0.1:$P_PP", send_proxy = true },
    { service = "parse-plain", kind = "http", hosts = { "parse-plain.test" }, target = "127.0.0.1:$P_PP" },
    { service = "tcp-pp", kind = "tcp", port = "auto", target = "127.0.0.1:$P_PP", send_proxy = true },
  },
}
EOF
RLOG=$WORK/relay.log
start_relay relay "$WORK/relay.lua" || bail "the relay did not start"
start_agent agent "$WORK/agent.lua" || bail "the agent did not start"
for s in demo-pp demo-plain parse-pp parse-plain tcp-pp; do
  wait_exposed "$RLOG" "$s" || bail "the agent did not expose $s" "$(tail -n 5 "$WORK/agent.log")"
done
TCP_PORT=$(exposed_port "$RLOG" tcp-pp)

# from HOST URL: curl from 127.0.0.2 and source port $SRC_PORT (set it first).
from() {
  curl -sS --max-time 10 --interface 127.0.0.2 --local-port "$SRC_PORT" -H "Host: $1" "$2" 2>&1
}

# --- the demo ----------------------------------------------------------------------
SRC_PORT=$(free_port); out=$(from pp.test "http://127.0.0.1:$P_PUB/hello")
expect_eq "send_proxy = true: the demo names the public client (127.0.0.2:$SRC_PORT)" \
  "demo behind the tunnel"$'\n'"request: GET /hello"$'\n'"client: 127.0.0.2:$SRC_PORT" "$out"
SRC_PORT=$(free_port); out=$(from plain.test "http://127.0.0.1:$P_PUB/hello")
client=$(printf '%s\n' "$out" | sed -n 's/^client: //p')
expect_match "without send_proxy: the demo sees the agent's own connection (127.0.0.1:<agent's port>)" \
  '^127\.0\.0\.1:[0-9]+$' "$client"
if [ "$client" = "127.0.0.2:$SRC_PORT" ]; then
  not_ok "... which is not the public client's address" "got $client"
else
  ok "... which is not the public client's address"
fi

# --- a PROXY v2 parser: source and destination ---------------------------------------
SRC_PORT=$(free_port); out=$(from parse-pp.test "http://127.0.0.1:$P_PUB/")
expect_match "send_proxy = true (http): a PROXY v2 header with the client as source, the relay entry as destination" \
  "^src=127\\.0\\.0\\.2:$SRC_PORT dst=127\\.0\\.0\\.1:$P_PUB " "$out"
SRC_PORT=$(free_port); out=$(from parse-plain.test "http://127.0.0.1:$P_PUB/")
expect_match "without send_proxy (http): no PROXY header reaches the local service" '^src=none dst=none' "$out"

SRC_PORT=$(free_port)
out=$("$PY" - "$TCP_PORT" "$SRC_PORT" <<'EOF'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.2", int(sys.argv[2])))
s.settimeout(10)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.0\r\nHost: tcp\r\n\r\n")
buf = b""
while True:
    d = s.recv(65536)
    if not d: break
    buf += d
print(buf.split(b"\r\n\r\n", 1)[-1].decode())
EOF
)
expect_match "send_proxy = true (tcp service): the client as source, the relay's port as destination" \
  "^src=127\\.0\\.0\\.2:$SRC_PORT dst=127\\.0\\.0\\.1:$TCP_PORT " "$out"

stop agent
expect_eq "the agent exits 0 on SIGTERM" 0 "$EXIT_CODE"
stop relay
expect_eq "the relay exits 0 on SIGTERM" 0 "$EXIT_CODE"

-- examples/agent.lua — the private half: runs next to the services, accepts
-- no inbound connection, and reaches out to the relay.
--
--   RELAY=relay.example.com:7443 tunnel run examples/agent.lua
--
-- It needs agent-creds/laptop.{crt,key} issued by the relay's CA (see
-- examples/relay.lua) and the CA certificate (agent-creds/ca.crt) or the
-- relay certificate's SHA-256 fingerprint (tunnel cert show relay.crt).

local tunnel = require "tunnel"

local creds = os.getenv("AGENT_CREDS") or "agent-creds"

tunnel.agent{
  name = "laptop",
  relays = { os.getenv("RELAY") or "127.0.0.1:7443" },   -- more than one: failover in order
  tls = {
    cert = creds .. "/laptop.crt", key = creds .. "/laptop.key",
    ca = creds .. "/ca.crt", server_name = os.getenv("RELAY_NAME") or "localhost",
  },
  services = {
    -- HTTP by Host; the relay answers 502 while this agent is away.
    { service = "web", kind = "http", hosts = { "app.example.com" }, target = "127.0.0.1:8080" },
    -- TLS by SNI, end to end: the local service terminates TLS.
    { service = "secure", kind = "tls", hosts = { "secure.example.com" }, target = "127.0.0.1:8443" },
    -- Raw TCP on a port the relay allocates (sticky: the same port next time).
    { service = "db", kind = "tcp", port = "auto", target = "127.0.0.1:5432", send_proxy = false },
  },
  -- Optional: pick the local target per stream. It may only return an address
  -- this config allows (the targets above, or `allow`): never an open proxy.
  -- dial = function(stream) return "127.0.0.1:8080" end,
}

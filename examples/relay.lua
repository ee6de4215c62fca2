-- examples/relay.lua — the public half of a two-machine tunnel.
--
-- On the relay machine (it needs a public address), once:
--   tunnel ca init state/ca
--   tunnel cert issue --ca state/ca --name relay --server --dns relay.example.com --out state/relay
--   tunnel cert issue --ca state/ca --name laptop --role web --out agent-creds   # copy to the agent
-- then:
--   RELAY_PUBLIC=0.0.0.0 tunnel run examples/relay.lua
--
-- Agents connect on :7443 with a certificate from state/ca; public clients
-- reach what they expose on :80 (HTTP by Host), :443 (TLS by SNI, end to
-- end: the relay holds no certificate for it), and tcp ports 20000-20999.

local tunnel = require "tunnel"

local bind = os.getenv("RELAY_PUBLIC") or "127.0.0.1"
local state = os.getenv("TUNNEL_STATE") or "state"

-- A public address gets floods: per source address, at most 100 new
-- connections a second (burst 400) and 20 agent handshakes (burst 100).
-- Management stays on loopback (curl 127.0.0.1:7777/metrics; tunnel status).
tunnel.config{
  limits = { connections_per_ip = { rate = 100, burst = 400 }, handshakes_per_ip = { rate = 20, burst = 100 } },
}

local relay = assert(tunnel.relay{
  addr = bind .. ":" .. (os.getenv("RELAY_AGENTS_PORT") or "7443"),
  tls = { cert = state .. "/relay/relay.crt", key = state .. "/relay/relay.key", ca = state .. "/ca/ca.crt" },
  ports = { range = { 20000, 20999 }, state = state .. "/ports.json", bind = bind },
  grace = 60,

  -- Each exposed service may move 50 MiB/s each way, 100 GiB a day; past
  -- that it slows to 64 KiB/s until the day turns (docs/operations.md).
  shaping = { service = { rate = 50 * 2^20, quota = 100 * 2^30, window = 86400 } },
  idle = { stream = 3600 },   -- close public connections silent for an hour

  -- Who may do what. id = { name, role, fingerprint, expires, via }.
  authorize = function(id, action, detail)
    if action == "connect" then return true end
    if action == "expose" then
      -- Names belong to roles: an agent with role "web" may expose *.example.com.
      for _, host in ipairs(detail.hosts or {}) do
        if id.role ~= "web" or not host:match("%.example%.com$") then
          return false, ("role %s may not expose %s"):format(id.role, host)
        end
      end
      return true
    end
    return false, "unknown action " .. action
  end,
})

relay:listen{ name = "http", addr = bind .. ":" .. (os.getenv("RELAY_HTTP_PORT") or "80") }
relay:listen{ name = "https", addr = bind .. ":" .. (os.getenv("RELAY_HTTPS_PORT") or "443") }

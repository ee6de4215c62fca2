-- examples/quickstart.lua — the whole tunnel in one process: a relay, an
-- agent, and a small built-in demo HTTP service that the agent exposes
-- through the relay. Credentials (a CA, the relay's and the agent's
-- certificates) are created under ./state on the first run.
--
--   tunnel run examples/quickstart.lua      (or: make run)
--
-- then, in another terminal, the command it prints:
--   curl -H 'Host: demo.localhost' http://127.0.0.1:8080/
--
-- examples/relay.lua and examples/agent.lua are the same on two machines.

local tunnel = require "tunnel"

local state = os.getenv("TUNNEL_STATE") or "state"
local agents_port = os.getenv("QUICKSTART_AGENTS_PORT") or "7443"
local public_port = os.getenv("QUICKSTART_PUBLIC_PORT") or "8080"

local creds = assert(tunnel.pki.local_setup(state, "quickstart-agent", "demo"))

-- The relay: agents connect on 7443 (mutual TLS), the public on 8080.
local relay = assert(tunnel.relay{
  addr = "127.0.0.1:" .. agents_port,
  tls = creds.relay,
  ports = { range = { 20000, 20099 }, state = state .. "/ports.json", bind = "127.0.0.1" },
})
relay:listen{ name = "public", addr = "127.0.0.1:" .. public_port }

-- The service behind the "NAT": it listens on a random loopback port.
local demo = assert(tunnel.demo{ text = "Hello from behind the tunnel!" })

-- The agent: connects out to the relay, exposes the demo by name.
tunnel.agent{
  name = "quickstart-agent",
  relays = { "127.0.0.1:" .. agents_port },
  tls = creds.agent,
  services = {
    -- send_proxy: the demo learns the real client address (PROXY v2), and shows it.
    { service = "demo", kind = "http", hosts = { "demo.localhost" }, target = demo.addr, send_proxy = true },
  },
}

-- Say how to reach it once the agent has exposed it.
local function announce()
  for _, svc in ipairs(relay:status().services) do
    if svc.service == "demo" and svc.online then
      io.stdout:write(("\ntunnel is up: the demo service is exposed through the relay.\n" ..
        "  curl -H 'Host: demo.localhost' http://127.0.0.1:%s/\n" ..
        "(Ctrl-C to stop; credentials are in %s/)\n\n"):format(public_port, state))
      io.stdout:flush()
      return
    end
  end
  tunnel.after(0.1, announce)
end
tunnel.after(0.1, announce)

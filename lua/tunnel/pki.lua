--- tunnel.pki — credentials as files (the same code as `tunnel ca init` and
-- `tunnel cert issue`).
--
--   pki.ca_init("state/ca")                                   -- ca.key (0600), ca.crt
--   pki.issue{ ca = "state/ca", name = "agent-1", role = "web", out = "state/agent" }
--   pki.issue{ ca = "state/ca", name = "relay", server = true, dns = { "relay.example.com" }, out = "state/relay" }
--   pki.identity("state/agent/agent-1.crt")  -- { name, role, fingerprint, expires, via }
--   pki.local_setup("state")  -- CA, relay and agent credentials for one machine, made once

local core = require "tunnel.core"
local check = require "tunnel.check"

local M = {}

local issue_schema = {
  ca = { "string", required = true }, name = { "string", required = true }, role = { "string" },
  server = { "boolean", default = false }, dns = { "list", of = { "string" } },
  ttl = { "integer", min = 60, default = 86400 }, key = { "string" }, out = { "string", required = true },
}

function M.ca_init(dir, opts)
  if type(dir) ~= "string" then check.argerror("pki.ca_init", 1, "folder expected") end
  local o = check.options("pki.ca_init", opts or {}, { rsa = { "boolean", default = false } }, 2, 2)
  local ok, err = core.pki_ca_init(dir, o.rsa and "rsa" or "p256")
  return ok, err
end

function M.issue(opts)
  local o = check.options("pki.issue", opts, issue_schema)
  local ok, err = core.pki_issue(o)
  return ok, err
end

function M.identity(path)
  if type(path) ~= "string" then check.argerror("pki.identity", 1, "certificate file expected") end
  local id, err = core.pki_identity(path)
  return id, err
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

--- Credentials for a relay and an agent on this machine, created on first
-- use under `dir` and reused afterwards. Returns tls tables for
-- tunnel.relay{} and tunnel.agent{}, or nil, err.
function M.local_setup(dir, agent_name, role)
  agent_name, role = agent_name or "agent", role or "demo"
  local ca = dir .. "/ca"
  local steps = {
    { ca .. "/ca.crt", function() return M.ca_init(ca) end },
    { dir .. "/relay/relay.crt", function()
      return M.issue{ ca = ca, name = "relay", server = true, dns = { "localhost", "127.0.0.1" },
        ttl = 365 * 86400, out = dir .. "/relay" } end },
    { dir .. "/agent/" .. agent_name .. ".crt", function()
      return M.issue{ ca = ca, name = agent_name, role = role, ttl = 30 * 86400, out = dir .. "/agent" } end },
  }
  for _, step in ipairs(steps) do
    if not exists(step[1]) then
      local ok, err = step[2]()
      if not ok then return nil, err end
    end
  end
  return {
    relay = { cert = dir .. "/relay/relay.crt", key = dir .. "/relay/relay.key", ca = ca .. "/ca.crt" },
    agent = { cert = dir .. "/agent/" .. agent_name .. ".crt", key = dir .. "/agent/" .. agent_name .. ".key",
      ca = ca .. "/ca.crt", server_name = "localhost" },
  }
end

return M

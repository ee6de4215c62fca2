--- tunnel.agent — the agent's side of the control protocol.
--
--   tunnel.agent{
--     name = "laptop",
--     relays = { "relay.example.com:7443", "relay2.example.com:7443" },   -- failover order
--     tls = { cert = "agent.crt", key = "agent.key", ca = "ca.crt" },    -- or pin = "sha256 hex"
--     services = {
--       { service = "web", kind = "http", hosts = { "app.example.com" }, target = "127.0.0.1:8080" },
--       { service = "db", kind = "tcp", port = "auto", target = "127.0.0.1:5432", send_proxy = false },
--     },
--     dial = function(stream) return "127.0.0.1:8080" end,   -- optional; must name an allowed target
--   }
--
-- The C side connects (with backoff and failover), keeps the yamux session
-- and dials targets; this module says hello and exposes the services every
-- time a session comes up, and answers the relay's diagnostics.

local core = require "tunnel.core"
local check = require "tunnel.check"
local rpc = require "tunnel.rpc"

local M = {}

local service_schema = {
  service = { "string", required = true, check = function(v)
    if not v:match("^[%a][%w_%-%.]*$") or #v > 63 then
      return nil, "must be a name of letters, digits, '-', '_' or '.' (at most 63)"
    end
    return true
  end },
  kind = { "enum", values = { "http", "tls", "tcp" }, required = true },
  hosts = { "list", of = { "string" } },
  port = { "any" },
  target = { "string", required = true, check = check.hostport },
  send_proxy = { "boolean", default = false },
}

local agent_schema = {
  name = { "string", default = "agent" },
  relays = { "list", of = { "string", check = check.hostport }, required = true },
  tls = { "table", required = true, fields = {
    cert = { "string" }, key = { "string" },      -- static files, or:
    dir = { "string" },                            -- enrolled credentials (tunnel enroll --out DIR), renewed
    token_file = { "string" },                     -- or a signed token instead of a certificate
    ca = { "string" }, pin = { "string" }, server_name = { "string" },
  } },
  renew = { "boolean", default = true },          -- with tls.dir: renew at 2/3 of the certificate's life
  services = { "list", of = { "table" }, default = {} },
  allow = { "list", of = { "string", check = check.hostport } },
  dial = { "callable" },
  reconnect = { "table", default = {}, fields = {
    min = { "number", min = 0.01, max = 60, default = 0.2 },
    max = { "number", min = 0.01, max = 3600, default = 5 },
  } },
  connect_timeout = { "number", min = 0.1, max = 600, default = 5 },
  mux = { "table", default = {}, fields = {
    max_window = { "integer", min = 262144, max = 1073741824 },
    keepalive = { "table", fields = {
      interval = { "number", min = 0, max = 3600 }, timeout = { "number", min = 0, max = 3600 },
    } },
    max_streams = { "integer", min = 1, max = 1048576 },
  } },
}

local function check_services(list)
  local names = {}
  for i, svc in ipairs(list) do
    local ok, s = pcall(check.options, ("services[%d]"):format(i), svc, service_schema, 1)
    if not ok then error(s:gsub("^bad argument #1 to '([^']+)' %((.*)%)$", "%1: %2"), 0) end
    if names[s.service] then error(("services[%d]: service '%s' is listed twice"):format(i, s.service), 0) end
    names[s.service] = true
    if s.kind == "tcp" then
      if s.port == nil then s.port = "auto" end
      if s.port ~= "auto" and (type(s.port) ~= "number" or s.port < 1 or s.port > 65535 or s.port % 1 ~= 0) then
        error(("services[%d]: port must be \"auto\" or a number from 1 to 65535"):format(i), 0)
      end
      if s.hosts then error(("services[%d]: a tcp service has a port, not hosts"):format(i), 0) end
    else
      if not s.hosts or #s.hosts == 0 then
        error(("services[%d]: an %s service needs hosts = {...}"):format(i, s.kind), 0)
      end
      if s.port ~= nil then error(("services[%d]: only tcp services have a port"):format(i), 0) end
    end
    list[i] = s
  end
  return list
end

------------------------------------------------------------------------------

local function expose_all(self)
  for _, svc in ipairs(self.services) do
    self.rpc:call("service.expose", { service = svc.service, kind = svc.kind, hosts = svc.hosts,
      port = svc.port, send_proxy = svc.send_proxy }, function(result, err)
      if err then
        core.log("error", "expose_failed", { agent = self.name, service = svc.service, error = err.message })
        self.exposed[svc.service] = nil
        return
      end
      self.exposed[svc.service] = result
      core.log("info", "exposed", { agent = self.name, service = result.service, kind = result.kind,
        port = result.port, host = result.hosts and result.hosts[1] })
    end)
  end
end

-- After a reload: withdraw what the new script no longer declares (the relay
-- knows what this session exposed), then expose the new set.
local function resync(self)
  self.rpc:call("diag.status", {}, function(result)
    local want = {}
    for _, svc in ipairs(self.services) do want[svc.service] = true end
    for _, svc in ipairs(result and result.services or {}) do
      if not want[svc.service] then
        self.rpc:call("service.unexpose", { service = svc.service }, function(_, err)
          core.log(err and "error" or "info", err and "unexpose_failed" or "unexposed",
            { agent = self.name, service = svc.service, error = err and err.message })
        end)
      end
    end
    expose_all(self)
  end)
end

-- Renewal: at about two thirds of the certificate's life, a new key (made
-- and kept in C) and its CSR; the relay signs over the control channel; the
-- new pair is committed atomically and used by the next connection.
local schedule_renewal

local function renew_now(self)
  self.renew_timer = nil
  if not self.rpc then return end     -- disconnected: the next hello reschedules
  local csr, err = core.agent_renew_begin(self.handle)
  if not csr then
    core.log("error", "renew_failed", { agent = self.name, error = err })
    return schedule_renewal(self, 60)
  end
  self.rpc:call("cert.renew", { csr = csr }, function(result, rerr)
    if rerr or type(result) ~= "table" or type(result.cert) ~= "string" or type(result.ca) ~= "string" then
      core.log("error", "renew_failed", { agent = self.name, error = rerr and rerr.message or "bad answer" })
      return schedule_renewal(self, 30)
    end
    local ok, cerr = core.agent_renew_commit(self.handle, result.cert, result.ca)
    if not ok then
      core.log("error", "renew_failed", { agent = self.name, error = cerr })
      return schedule_renewal(self, 30)
    end
    local id = core.agent_identity(self.handle)
    core.log("info", "renewed", { agent = self.name, expires = id and id.expires, fingerprint = id and id.fingerprint })
    schedule_renewal(self)
  end)
end

schedule_renewal = function(self, retry_in)
  if not self.renew or self.renew_timer then return end
  local delay = retry_in
  if not delay then
    local id = core.agent_identity(self.handle)
    if not id then return end
    -- Two thirds of the life left (notBefore is backdated for clock skew,
    -- so the remaining life is the better measure).
    delay = math.max(1, (id.expires - os.time()) * 2 / 3)
  end
  self.renew_timer = core.after(delay, function() renew_now(self) end)
end

local function hello(self, relay_id, relay_addr, after_reload)
  self.exposed = {}
  self.rpc = rpc.new{
    send = function(line) return core.agent_send(self.handle, line) end,
    handlers = {
      ["diag.ping"] = function() return { time = core.now() } end,
      ["diag.time"] = function() return { time = os.time() } end,
      ["diag.echo"] = function(params) return params end,
      ["diag.status"] = function() return core.agent_status(self.handle) end,
      -- The relay is closing the session in order and says why (idle,
      -- draining); the agent reconnects as after any other end.
      ["session.closing"] = function(params)
        core.log("warn", "relay_closing", { agent = self.name, relay = relay_addr, reason = tostring(params.reason) })
      end,
    },
  }
  self.rpc:call("session.hello", { version = core.version, agent = self.name,
    capabilities = { "expose", "diag" } }, function(result, err)
    if err then
      core.log("error", "hello_failed", { agent = self.name, relay = relay_addr, error = err.message })
      return
    end
    core.log("info", "hello", { agent = self.name, relay = relay_addr, relay_name = relay_id.name,
      identity = result.identity and result.identity.name, session = result.session })
    if after_reload then resync(self) else expose_all(self) end
    schedule_renewal(self)
  end)
end

local function on_event(self, event, a, b)
  if event == "connected" then
    hello(self, a, b)
  elseif event == "reconfigured" then
    -- A reload: this Lua state is new, the session is not.
    if not self.rpc then hello(self, a, b, true) else resync(self) end
  elseif event == "line" then
    if self.rpc then self.rpc:handle(a) end
  elseif event == "disconnected" then
    if self.rpc then self.rpc:close(a) end
    self.rpc = nil
    self.exposed = {}
    if self.renew_timer then core.cancel(self.renew_timer); self.renew_timer = nil end
  end
end

local Agent = {}
Agent.__index = Agent

function M.new(opts)
  local o = check.options("tunnel.agent", opts, agent_schema, 3)
  local ok, services = pcall(check_services, o.services)
  if not ok then check.argerror("tunnel.agent", 1, "option '" .. services .. "'", 3) end
  local ways = (o.tls.dir and 1 or 0) + ((o.tls.cert or o.tls.key) and 1 or 0) + (o.tls.token_file and 1 or 0)
  if ways ~= 1 or ((o.tls.cert or o.tls.key) and not (o.tls.cert and o.tls.key)) then
    check.argerror("tunnel.agent", 1,
      "option 'tls' needs one way to authenticate: cert and key, dir (enrolled), or token_file", 3)
  end
  if not o.tls.ca and not o.tls.pin and not o.tls.dir then
    check.argerror("tunnel.agent", 1, "option 'tls' needs ca or pin to verify the relay", 3)
  end
  local self = setmetatable({ name = o.name, services = services, exposed = {},
    renew = o.tls.dir and o.renew }, Agent)
  local targets = {}
  for i, svc in ipairs(services) do
    targets[i] = { service = svc.service, target = svc.target, send_proxy = svc.send_proxy }
  end
  local keep = o.mux.keepalive or {}
  local h, err, kind = core.agent{
    name = o.name, relays = o.relays, cert = o.tls.cert, key = o.tls.key, ca = o.tls.ca, pin = o.tls.pin,
    cred_dir = o.tls.dir, token_file = o.tls.token_file,
    server_name = o.tls.server_name, services = targets, allow = o.allow, dial = o.dial,
    backoff_min = o.reconnect.min, backoff_max = o.reconnect.max, connect_timeout = o.connect_timeout,
    mux = { max_window = o.mux.max_window, keepalive_interval = keep.interval,
      keepalive_timeout = keep.timeout, max_streams = o.mux.max_streams },
    events = function(...) return on_event(self, ...) end,
  }
  if not h then
    if kind == "config" then error("tunnel.agent: " .. err, 3) end
    return nil, err
  end
  self.handle = h
  return self
end

--- agent:status(): { name, state, relay, streams, uptime, exposed = {...} }
function Agent:status()
  local st = core.agent_status(self.handle)
  if st then st.exposed = self.exposed end
  return st
end

--- agent:call(method, params, cb): a control call to the relay (diag.ping, ...).
function Agent:call(method, params, cb)
  if not self.rpc then return cb and cb(nil, rpc.error(rpc.UNAVAILABLE, "not connected")) end
  self.rpc:call(method, params, cb)
end

return M

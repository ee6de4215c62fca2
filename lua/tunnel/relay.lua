--- tunnel.relay — the relay's side of the control protocol, and its hooks.
--
--   local relay = tunnel.relay{
--     addr = "0.0.0.0:7443",                      -- agents connect here (mutual TLS 1.3)
--     tls = { cert = "relay.crt", key = "relay.key", ca = "ca.crt" },
--     authorize = function(id, action, detail) return true end,   -- connect, expose
--     ports = { range = { 20000, 20999 }, state = "state/ports.json" },  -- tcp "auto" ports
--     grace = 60,                                   -- seconds a gone agent keeps names/ports
--   }
--   relay:listen{ addr = "0.0.0.0:443" }            -- public entry, sniffed like tunnel.listen
--
-- The C side owns sessions and services (they survive a reload); this module
-- answers control messages and calls the operator's hooks through
-- core.call_hook, so they run under the hook budget and fail closed.
-- Methods (agent -> relay): session.hello, service.expose, service.unexpose,
-- diag.ping, diag.time, diag.echo, diag.status. docs/protocol.md has them all.

local core = require "tunnel.core"
local check = require "tunnel.check"
local rpc = require "tunnel.rpc"
local bootstrap = require "tunnel.bootstrap"

local M = {}

local SERVICE_NAME = "^[%a][%w_%-%.]*$"

local function valid_host(h)
  if type(h) ~= "string" or #h == 0 or #h > 253 then return false end
  local name = h:sub(1, 2) == "*." and h:sub(3) or h
  return name:match("^[%w%-%.]+$") ~= nil and not name:find("..", 1, true)
end

-- Run an operator hook; nil (refuse) when it failed (already logged).
local function hook(name, detail, fn, ...)
  if not fn then return true end
  local res = { core.call_hook(name, detail, fn, ...) }
  if not res[1] then return nil, name .. " hook failed" end
  return unpack(res, 2, 3)
end

local function authorize(self, id, action, detail)
  local ok, why = hook("authorize", action, self.hooks.authorize, id, action, detail)
  if ok == true then return true end
  if ok ~= nil and ok ~= false then
    core.log("error", "hook_error", { hook = "authorize",
      error = ("returned a %s; expected true or false, reason"):format(type(ok)) })
    return nil, "authorize hook returned an invalid value"
  end
  return nil, type(why) == "string" and why or ("%s refused"):format(action)
end

------------------------------------------------------------------------------
-- Deny list: one entry per line, "name NAME", "fingerprint HEX" (or a bare
-- name); '#' starts a comment. Re-read whenever the file changes.

local function load_deny(path)
  local list = { names = {}, fingerprints = {} }
  local f = io.open(path, "r")
  if not f then return list end
  for line in f:lines() do
    line = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
    local kind, value = line:match("^(%S+)%s+(%S+)$")
    if kind == "fingerprint" then
      list.fingerprints[value:lower():gsub(":", "")] = true
    elseif kind == "name" then
      list.names[value] = true
    elseif line ~= "" and not line:find("%s") then
      list.names[line] = true
    end
  end
  f:close()
  return list
end

local function denied(self, id)
  if not self.deny_path then return nil end
  local mtime = core.file_mtime(self.deny_path) or 0
  if mtime ~= self.deny_mtime then
    self.deny, self.deny_mtime = load_deny(self.deny_path), mtime
  end
  if self.deny.names[id.name] then return ("identity '%s' is revoked (deny list)"):format(id.name) end
  if id.fingerprint and self.deny.fingerprints[id.fingerprint] then
    return ("certificate %s… is revoked (deny list)"):format(id.fingerprint:sub(1, 16))
  end
end

-- Every 2 s: if the deny list changed since the last sweep, end the sessions
-- it now revokes. (The sweep keeps its own mark: a handshake that reloaded the
-- list in between must not make the sweep think nothing changed.)
local function watch_deny(self)
  core.after(2, function()
    local status = core.relay_status(self.handle)
    if not status then return end     -- relay gone (reload): the new one watches
    local mtime = core.file_mtime(self.deny_path) or 0
    if mtime ~= self.deny_swept then
      self.deny_swept = mtime
      for _, sess in ipairs(status.sessions) do
        local why = denied(self, sess.identity)
        if why then core.session_close(sess.id, why) end
      end
    end
    watch_deny(self)
  end)
end

------------------------------------------------------------------------------
-- Control methods. `s` is the Lua view of one session.

local methods = {}

function methods.session_hello(self, s, params)
  s.hello = params
  local info = rpc.encode{ version = params.version, agent = params.agent, capabilities = params.capabilities }
  if info then core.session_hello(s.id, info) end
  return { version = core.version, session = s.id, relay = self.name, time = os.time(),
    identity = { name = s.identity.name, role = s.identity.role } }
end

local function expose_spec(params)
  local name, kind = params.service, params.kind
  if type(name) ~= "string" or not name:match(SERVICE_NAME) or #name > 63 then
    return nil, "service must be a name of letters, digits, '-', '_' or '.' (at most 63)"
  end
  if kind ~= "http" and kind ~= "tls" and kind ~= "tcp" then
    return nil, 'kind must be "http", "tls" or "tcp"'
  end
  local spec = { service = name, kind = kind, send_proxy = params.send_proxy == true }
  if kind == "tcp" then
    local port = params.port
    if port ~= "auto" and (type(port) ~= "number" or port < 1 or port > 65535 or port % 1 ~= 0) then
      return nil, 'port must be "auto" or a number from 1 to 65535'
    end
    spec.port = port
  else
    if type(params.hosts) ~= "table" or #params.hosts == 0 or #params.hosts > 32 then
      return nil, "hosts must list 1 to 32 names"
    end
    spec.hosts = {}
    for i, h in ipairs(params.hosts) do
      if not valid_host(h) then return nil, ("hosts[%d] is not a host name: %s"):format(i, tostring(h)) end
      spec.hosts[i] = h:lower()
    end
  end
  return spec
end

function methods.service_expose(self, s, params)
  local spec, bad = expose_spec(params)
  if not spec then return nil, rpc.error(rpc.INVALID_PARAMS, bad) end
  local ok, why = authorize(self, s.identity, "expose", spec)
  if not ok then return nil, rpc.error(rpc.REFUSED, why) end
  if spec.port == "auto" then
    local port, reason = hook("allocate_port", spec.service, self.hooks.allocate_port, s.identity, spec)
    if type(port) ~= "number" then
      return nil, rpc.error(rpc.UNAVAILABLE, reason or "no port could be allocated")
    end
    spec.port = port
  end
  local done, err = core.expose(s.id, spec)
  if not done then return nil, rpc.error(rpc.CONFLICT, err) end
  core.log("info", "exposed", { agent = s.identity.name, service = spec.service, kind = spec.kind,
    port = spec.port, host = spec.hosts and spec.hosts[1] })
  return { service = spec.service, kind = spec.kind, hosts = spec.hosts, port = spec.port }
end

function methods.service_unexpose(_, s, params)
  local ok, err = core.unexpose(s.id, tostring(params.service))
  if not ok then return nil, rpc.error(rpc.INVALID_PARAMS, err) end
  return {}
end

--- cert.renew {csr}: a new certificate for the identity this session proved
-- with its certificate (name and role are taken from the session, not the CSR).
function methods.cert_renew(self, s, params)
  if s.identity.via ~= "cert" then
    return nil, rpc.error(rpc.REFUSED, "renewal needs a session authenticated by a certificate")
  end
  if type(params.csr) ~= "string" or #params.csr > 16384 then
    return nil, rpc.error(rpc.INVALID_PARAMS, "csr must be a PEM certificate request")
  end
  local why = denied(self, s.identity)
  if why then return nil, rpc.error(rpc.REFUSED, why) end
  local ok, reason = authorize(self, s.identity, "renew", {})
  if not ok then return nil, rpc.error(rpc.REFUSED, reason) end
  local cert, ca = core.relay_sign(self.handle, params.csr, s.identity.name, s.identity.role, self.cert_ttl)
  if not cert then return nil, rpc.error(rpc.INVALID_PARAMS, ca) end
  core.log("info", "renewed", { agent = s.identity.name, role = s.identity.role, session = s.id })
  return { cert = cert, ca = ca }
end

function methods.diag_status(self, s)
  local status = core.relay_status(self.handle) or {}
  local mine = {}
  for _, svc in ipairs(status.services or {}) do
    if svc.session == s.id then mine[#mine + 1] = svc end
  end
  return { session = core.session_info(s.id), services = mine }
end

local function handlers_for(self, s)
  local h = {}
  for name, fn in pairs(methods) do
    h[(name:gsub("_", ".", 1))] = function(params) return fn(self, s, params) end
  end
  h["diag.ping"] = function() return { time = core.now() } end
  h["diag.time"] = function() return { time = os.time() } end
  h["diag.echo"] = function(params) return params end
  return h
end

------------------------------------------------------------------------------
-- Events from C.

local function session_of(self, id)
  local s = self.sessions[id]
  if s then return s end
  -- A session that began under the previous script generation.
  local info = core.session_info(id)
  if not info then return nil end
  s = { id = id, identity = info.identity }
  s.rpc = rpc.new{ send = function(line) return core.session_send(id, line) end,
    handlers = handlers_for(self, s) }
  self.sessions[id] = s
  return s
end

-- An enrollment request (C has checked the CSR and hashed the token).
local function enroll(self, req)
  local revoked = denied(self, { name = req.name })
  if revoked then return 403, revoked end
  local rec, why = bootstrap.consume(self.store, req.token_hash, req.name)
  if not rec then return 401, why end
  local id = { name = req.name, role = rec.role, via = "bootstrap" }
  local ok, reason = authorize(self, id, "enroll", { key_type = req.key_type, key_bits = req.key_bits, src = req.src })
  if not ok then return 403, reason end
  return 200, { role = rec.role, ttl = self.cert_ttl }
end

local function on_event(self, event, a, b, c)
  if event == "session" then
    local id, identity, src = a, b, c
    local revoked = denied(self, identity)
    if revoked then return false, revoked end
    local ok, why = authorize(self, identity, "connect", { src = src })
    if not ok then return false, why end
    local s = { id = id, identity = identity, src = src }
    s.rpc = rpc.new{ send = function(line) return core.session_send(id, line) end,
      handlers = handlers_for(self, s) }
    self.sessions[id] = s
    return true
  elseif event == "line" then
    local s = session_of(self, a)
    if s then s.rpc:handle(b) end
  elseif event == "end" then
    local s = self.sessions[a]
    if s then s.rpc:close(b) end
    self.sessions[a] = nil
  elseif event == "released" then
    hook("release_port", a.service, self.hooks.release_port, { name = a.agent }, a)
  elseif event == "enroll" then
    return enroll(self, a)
  end
end



------------------------------------------------------------------------------
-- tunnel.relay{}

local shape_fields = {
  rate = { "number", min = 1, required = true },
  burst = { "number", min = 1024 },
  quota = { "number", min = 1 },
  trickle = { "number", min = 1 },
  window = { "number", min = 1 },     -- seconds the quota counts over (default 3600)
}

local relay_schema = {
  addr = { "string", required = true, check = check.hostport },
  name = { "string" },
  tls = { "table", required = true, fields = {
    cert = { "string", required = true }, key = { "string", required = true }, ca = { "string", required = true },
  } },
  authorize = { "callable" },
  allocate_port = { "callable" },
  release_port = { "callable" },
  ports = { "table", fields = {
    range = { "list", of = { "integer", min = 1, max = 65535 }, required = true },
    state = { "string" },
    bind = { "string" },
  } },
  route = { "callable" },
  issuer_ca = { "string" },
  cert_ttl = { "number", min = 5, max = 366 * 86400, default = 86400 },
  enroll = { "table", fields = {
    addr = { "string", required = true, check = check.hostport },
    store = { "string", default = bootstrap.DEFAULT_STORE },
  } },
  deny = { "string" },
  token_secret = { "string" },        -- agents may authenticate with tokens signed with this secret
  -- Bandwidth per agent session and per exposed service, each direction, in
  -- bytes/s; quota: bytes per `window` seconds (default 3600), then `trickle`
  -- bytes/s (default 65536) until the window turns over.
  shaping = { "table", fields = {
    session = { "table", fields = shape_fields },
    service = { "table", fields = shape_fields },
  } },
  idle = { "table", default = {}, fields = {
    stream = { "number", min = 0, default = 3600 },    -- public connection to a service, no byte: closed
    session = { "number", min = 0, default = 0 },      -- agent session without streams or messages (0: never)
  } },
  grace = { "number", min = 0, max = 86400, default = 60 },
  handshake_timeout = { "number", min = 0.1, max = 600, default = 10 },
  max_sessions = { "integer", min = 1, default = 10000 },
  mux = { "table", default = {}, fields = {
    max_window = { "integer", min = 262144, max = 1073741824 },
    keepalive = { "table", fields = {
      interval = { "number", min = 0, max = 3600 }, timeout = { "number", min = 0, max = 3600 },
    } },
    max_streams = { "integer", min = 1, max = 1048576 },
    max_backlog = { "integer", min = 1, max = 65536 },
  } },
}

local Relay = {}
Relay.__index = Relay

function M.new(opts, listen)
  local o = check.options("tunnel.relay", opts, relay_schema, 3)
  local self = setmetatable({ name = o.name or o.addr, sessions = {}, route = o.route, listen_fn = listen,
    hooks = { authorize = o.authorize, allocate_port = o.allocate_port, release_port = o.release_port },
    cert_ttl = o.cert_ttl, store = o.enroll and o.enroll.store, deny_path = o.deny }, Relay)
  if o.enroll and not o.issuer_ca then
    check.argerror("tunnel.relay", 1, "option 'enroll' needs 'issuer_ca' (the CA folder that signs)", 3)
  end
  if o.ports then
    if #o.ports.range ~= 2 or o.ports.range[1] > o.ports.range[2] then
      check.argerror("tunnel.relay", 1, "option 'ports.range' must be {first, last}", 3)
    end
    local allocator = require("policies.port_allocator"){
      range = o.ports.range, state = o.ports.state, is_free = function(port)
        return not M.port_in_use(self, port)
      end }
    self.hooks.allocate_port = self.hooks.allocate_port or allocator.allocate
    self.hooks.release_port = self.hooks.release_port or allocator.release
  end
  local keep = o.mux.keepalive or {}
  local h, err, kind = core.relay{
    addr = o.addr, name = self.name, cert = o.tls.cert, key = o.tls.key, ca = o.tls.ca,
    grace = o.grace, handshake_timeout = o.handshake_timeout, max_sessions = o.max_sessions,
    tcp_bind = o.ports and o.ports.bind,
    issuer_ca = o.issuer_ca, cert_ttl = o.cert_ttl, enroll = o.enroll and o.enroll.addr,
    token_secret = o.token_secret, shaping = o.shaping,
    stream_idle = o.idle.stream, session_idle = o.idle.session,
    mux = { max_window = o.mux.max_window, keepalive_interval = keep.interval, keepalive_timeout = keep.timeout,
      max_streams = o.mux.max_streams, max_backlog = o.mux.max_backlog },
    events = function(...) return on_event(self, ...) end,
  }
  if not h then
    if kind == "config" then error("tunnel.relay: " .. err, 3) end
    return nil, err
  end
  self.handle = h
  if self.deny_path then watch_deny(self) end
  return self
end

function M.port_in_use(self, port)
  local status = core.relay_status(self.handle)
  for _, svc in ipairs(status and status.services or {}) do
    if svc.port == port then return true end
  end
  return false
end

--- relay:listen{ addr, name, route, sniff, proxy_protocol }: a public entry.
-- Connections go to the agent service whose exposed name matches their SNI
-- (tls) or Host (http), unless a route hook (here or the relay's) decides:
-- it sees conn.service and may return it, another {service = , agent = },
-- an address, or nil, reason.
function Relay:listen(opts)
  if getmetatable(self) ~= Relay then check.argerror("relay:listen", 1, "relay expected (use relay:listen{...})") end
  if type(opts) ~= "table" then check.argerror("relay:listen", 1, "table expected, got " .. type(opts)) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.route = o.route or self.route
  local l, err = self.listen_fn(o, self.handle)
  return l, err
end

--- relay:status(): { addr, sessions = {...}, services = {...} } (nil once closed).
function Relay:status()
  return core.relay_status(self.handle)
end

return M

--- tunnel — the public Lua API.
--
-- Loaded by luaopen_tunnel (tunnel.so, or built into the `tunnel` binary) with
-- the C functions in package.loaded["tunnel.core"]. Everything here checks its
-- arguments and names what is wrong; the C side does the work.
--
--   local tunnel = require "tunnel"
--   tunnel.listen{ addr = "0.0.0.0:443", route = function(conn) ... end }
--   tunnel.run()           -- not needed under `tunnel run script.lua`
--
-- See README.md (API) and docs/hooks.md (hook contract, conn fields).

local core = require "tunnel.core"
local check = require "tunnel.check"

local M = { version = core.version }

local BUILTIN_PROTOS = { tls = true, http = true, http2 = true, postgresql = true, ssh = true, opaque = true }

---------------------------------------------------------------------------
-- tunnel.listen

local listen_schema = {
  addr = { "string", required = true, check = check.hostport },
  name = { "string", check = function(v)
    if #v == 0 or #v > 63 then return nil, "must be 1 to 63 characters" end
    return true
  end },
  route = { "callable", required = true },
  sniff = { "table", default = {}, fields = {
    enabled = { "boolean", default = true },
    bytes = { "integer", min = 64, max = 1048576, default = 16384 },
    timeout = { "number", min = 0.001, max = 3600, default = 5 },
    on_timeout = { "enum", values = { "close", "opaque" }, default = "close" },
  } },
  proxy_protocol = { "boolean", default = false },
  send_proxy = { "boolean", default = false },
  connect_timeout = { "number", min = 0.001, max = 3600, default = 5 },
  idle_timeout = { "number", min = 0, max = 7 * 86400, default = 3600 },   -- 0: never
  -- HTTP clients may present a Bearer token signed with this secret
  -- (conn.identity); required = true refuses the others with 401.
  auth = { "table", fields = {
    token_secret = { "string", required = true },
    required = { "boolean", default = false },
  } },
}

local Listener = {}

local function listener_info(self)
  local info = core.listener_info(rawget(self, "_handle"))
  if not info then
    error(("stale handle: listener '%s' is closed"):format(rawget(self, "_name")), 3)
  end
  return info
end

Listener.__index = function(self, k)
  if k == "close" then return Listener.close end
  if k == "name" or k == "addr" or k == "live" then return listener_info(self)[k] end
  return nil
end

Listener.__tostring = function(self)
  return ("tunnel.listener(%s)"):format(rawget(self, "_name"))
end

--- listener:close(): stop accepting; open connections are not touched.
function Listener.close(self)
  if getmetatable(self) ~= Listener then check.argerror("listener:close", 1, "listener expected") end
  return core.listener_close(rawget(self, "_handle"))
end

-- The listener of tunnel.listen and of relay:listen (relay = its handle;
-- a relay entry's route hook is optional).
local function listen(opts, fname, relay, level)
  local schema = listen_schema
  if relay then
    schema = {}
    for k, v in pairs(listen_schema) do schema[k] = v end
    schema.route = { "callable" }
  end
  local o = check.options(fname, opts, schema, level)
  local name = o.name or o.addr
  local h, err = core.listen{
    addr = o.addr, name = name, route = o.route, relay = relay,
    peek = o.sniff.bytes, sniff_timeout = o.sniff.timeout, on_timeout = o.sniff.on_timeout,
    no_sniff = not o.sniff.enabled,
    proxy_protocol = o.proxy_protocol, send_proxy = o.send_proxy,
    connect_timeout = o.connect_timeout, idle_timeout = o.idle_timeout,
    token_secret = o.auth and o.auth.token_secret, token_required = o.auth and o.auth.required,
  }
  if not h then return nil, err end
  return setmetatable({ _handle = h, _name = name }, Listener)
end

--- tunnel.listen{ addr, name, route, sniff = {enabled, bytes, timeout, on_timeout},
--                 proxy_protocol, send_proxy, connect_timeout }
-- sniff.enabled = false routes at once on accept (conn.proto = "opaque",
-- conn.bytes = ""): plain L4 forwarding, fine for server-speaks-first protocols.
-- Returns a listener, or nil, err if the address cannot be bound (in a host;
-- under `tunnel run` binding happens once the script has loaded).
function M.listen(opts)
  local l, err = listen(opts, "tunnel.listen", nil, 3)   -- not a tail call: errors name the caller's line
  return l, err
end

--- tunnel.relay{...}: see lua/tunnel/relay.lua. Returns a relay object with
-- :listen{} for public entries and :status(), or nil, err.
function M.relay(opts)
  local r, err = require("tunnel.relay").new(opts, function(o, relay_handle)
    local l, lerr = listen(o, "relay:listen", relay_handle, 4)
    return l, lerr
  end)
  return r, err
end

--- tunnel.pki: credentials as files (lua/tunnel/pki.lua).
M.pki = require "tunnel.pki"

--- tunnel.agent{...}: see lua/tunnel/agent.lua. Returns an agent object with
-- :status() and :call(), or nil, err.
function M.agent(opts)
  local a, err = require("tunnel.agent").new(opts)
  return a, err
end

---------------------------------------------------------------------------
-- tunnel.sniffer

local sniffer_schema = {
  name = { "string", required = true, check = function(v)
    if not v:match("^[%a][%w_%-]*$") or #v > 31 then
      return nil, "must be a letter then letters, digits, '_' or '-' (at most 31)"
    end
    if BUILTIN_PROTOS[v] then return nil, ("'%s' is a built-in protocol name"):format(v) end
    return true
  end },
  match = { "callable", required = true },
}

--- tunnel.sniffer{ name, match }: match(bytes) returns true [, fields] when the
-- bytes are this protocol, false when they are not, nil when it needs more.
-- Matchers run after the built-ins, in registration order; they may not yield.
function M.sniffer(opts)
  local o = check.options("tunnel.sniffer", opts, sniffer_schema)
  local ok, err = core.sniffer(o.name, o.match)
  if not ok then check.argerror("tunnel.sniffer", 1, err) end
  return o.name
end

--- tunnel.sniffers(): names of the Lua sniffers, in the order they are tried.
M.sniffers = core.sniffers

---------------------------------------------------------------------------
-- settings, loop, helpers

local function cidr(v)
  local ok, why = core.cidr_check(v)
  if not ok then
    return nil, ("is not an address range like 10.0.0.0/8 or ::1/128 (%s): %q"):format(why, v)
  end
  return true
end

local bucket_schema = {
  rate = { "number", min = 0, required = true },        -- per second; 0 turns the limit off
  burst = { "number", min = 1 },                         -- default: rate
}

local config_schema = {
  log_level = { "enum", values = { "debug", "info", "warn", "error", "off" } },
  drain_timeout = { "number", min = 0, max = 86400 },
  hook_budget = { "table", fields = {
    instructions = { "integer", min = 1000, max = 1e9 },
    timeout = { "number", min = 0.001, max = 60 },
  } },
  buffer_size = { "integer", min = 4096, max = 16777216 },
  -- Bulk between two sockets moves with splice(2), no copy (docs/operations.md).
  zero_copy = { "boolean" },
  -- Admission: per source address token buckets and a cap on work in progress.
  limits = { "table", fields = {
    connections_per_ip = { "table", fields = bucket_schema },
    handshakes_per_ip = { "table", fields = bucket_schema },
    max_pending_sniffs = { "integer", min = 0 },
  } },
  -- The management endpoint (default 127.0.0.1:7777 under tunnel run); false: off.
  management = { "table", fields = {
    addr = { "string", check = check.hostport },
    allow = { "list", of = { "string", check = cidr } },
    token_file = { "string" },
  } },
}

--- tunnel.config{ log_level, drain_timeout, hook_budget = {instructions, timeout}, buffer_size, zero_copy,
--                 limits = {connections_per_ip = {rate, burst}, handshakes_per_ip = {rate, burst},
--                           max_pending_sniffs},
--                 management = false | {addr, allow = {cidr...}, token_file} }
-- Under tunnel run these apply when the script is committed (and a reload
-- that no longer gives one returns it to its default).
function M.config(opts)
  if type(opts) == "table" and opts.management == true then
    check.argerror("tunnel.config", 1, "option 'management' must be false or a table, got true")
  end
  local off = type(opts) == "table" and opts.management == false
  if off then  -- the one non-table value management takes
    local copy = {}
    for k, v in pairs(opts) do copy[k] = v end
    copy.management = nil
    opts = copy
  end
  local o = check.options("tunnel.config", opts, config_schema)
  if off then o.management = false end
  local hb = o.hook_budget or {}
  core.config{
    log_level = o.log_level, drain_timeout = o.drain_timeout,
    hook_instructions = hb.instructions, hook_timeout = hb.timeout,
    buffer_size = o.buffer_size, zero_copy = o.zero_copy, limits = o.limits, management = o.management,
  }
end

local LEVELS = { debug = true, info = true, warn = true, error = true }

--- tunnel.log(level, event [, fields]): one JSON line on stderr.
function M.log(level, event, fields)
  if not LEVELS[level] then check.argerror("tunnel.log", 1, "level must be debug, info, warn or error") end
  if type(event) ~= "string" then check.argerror("tunnel.log", 2, "event name expected") end
  if fields ~= nil then
    if type(fields) ~= "table" then check.argerror("tunnel.log", 3, "table of fields expected") end
    for k, v in pairs(fields) do
      local t = type(v)
      if type(k) ~= "string" or (t ~= "string" and t ~= "number" and t ~= "boolean") then
        check.argerror("tunnel.log", 3, ("field '%s' must be a string, number or boolean"):format(tostring(k)))
      end
    end
  end
  core.log(level, event, fields)
end

--- tunnel.run(): serve until SIGTERM/SIGINT (or tunnel.stop()) has drained.
-- Not needed under `tunnel run` (which serves once the script has loaded and
-- can then reload it); a script that calls it anyway owns the loop: what it
-- declared so far goes live at once, and `tunnel run` exits when it returns.
-- Returns false under `tunnel run --check`, which never serves.
M.run = core.run

--- tunnel.step([timeout]): one turn of the loop, waiting at most timeout s.
function M.step(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    check.argerror("tunnel.step", 1, "timeout must be a non-negative number")
  end
  return core.step(timeout or 0)
end

--- tunnel.fd(): a descriptor that becomes readable when tunnel.step(0) has
-- work; poll it from a host's own loop (and call step at least every 100 ms
-- so that timers run).
M.fd = core.fd

--- tunnel.stop([deadline]): stop accepting and drain (tunnel.run() returns
-- once open connections have finished or the deadline has passed).
function M.stop(deadline)
  if deadline ~= nil and (type(deadline) ~= "number" or deadline < 0) then
    check.argerror("tunnel.stop", 1, "deadline must be a non-negative number of seconds")
  end
  core.stop(deadline)
end

--- tunnel.sleep(seconds): park the calling route hook (yields).
M.sleep = core.sleep

--- tunnel.now(): the loop's monotonic clock, in seconds.
M.now = core.now

--- tunnel.after(seconds, fn): run fn once after `seconds`, as a hook (under
-- the hook budget, failures logged, may call tunnel.sleep). Returns a timer
-- with :cancel().
function M.after(seconds, fn)
  if type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds then
    check.argerror("tunnel.after", 1, "seconds must be a non-negative number")
  end
  if type(fn) ~= "function" then check.argerror("tunnel.after", 2, "function expected") end
  local id = core.after(seconds, fn)
  return { cancel = function() return core.cancel(id) end }
end

local demo_schema = {
  addr = { "string", default = "127.0.0.1:0", check = check.hostport },
  text = { "string", check = function(v)
    if #v > 200 then return nil, "must be at most 200 characters" end
    return true
  end },
}

--- tunnel.demo{ addr = "127.0.0.1:0", text = "..." }: the built-in demo HTTP
-- service (answers every request with a short page naming the request and the
-- client). Returns { addr = bound address, stop = function }, or nil, err.
function M.demo(opts)
  local o = check.options("tunnel.demo", opts or {}, demo_schema)
  local id, addr = core.demo_http(o.addr, o.text)
  if not id then return nil, addr end
  return { addr = addr, stop = function() return core.demo_stop(id) end }
end

return M

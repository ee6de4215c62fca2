--- tunnel.rpc — JSON-RPC 2.0 over the control channel (one JSON object per
-- line), shared by the relay and the agent.
--
--   local peer = rpc.new{ send = function(line) ... end, handlers = { ["diag.echo"] = fn } }
--   peer:call("session.hello", { version = "0.1.0" }, function(result, err) ... end)
--   peer:handle(line)        -- feed every line received
--   peer:close("why")        -- fail the calls still waiting
--
-- A handler returns a result table, or nil and an error {code, message}.
-- Calls time out after `timeout` seconds (default 10).

local cjson = require("cjson.safe")
local core = require "tunnel.core"

local M = {}

M.PARSE_ERROR = -32700
M.INVALID_REQUEST = -32600
M.METHOD_NOT_FOUND = -32601
M.INVALID_PARAMS = -32602
M.REFUSED = -32000
M.CONFLICT = -32001
M.UNAVAILABLE = -32002

local Peer = {}
Peer.__index = Peer

local function encode(msg)
  local line, err = cjson.encode(msg)
  if not line then error("rpc: cannot encode message: " .. tostring(err), 3) end
  return line
end

function M.error(code, message, data)
  return { code = code, message = message, data = data }
end

function M.new(opts)
  return setmetatable({
    send = opts.send, handlers = opts.handlers or {}, context = opts.context,
    timeout = opts.timeout or 10, next_id = 0, pending = {}, closed = false,
    on_bad = opts.on_bad,
  }, Peer)
end

function Peer:call(method, params, cb)
  if self.closed then
    if cb then cb(nil, M.error(M.UNAVAILABLE, "control channel closed")) end
    return
  end
  self.next_id = self.next_id + 1
  local id = self.next_id
  local timer
  if cb then
    timer = core.after(self.timeout, function()
      if self.pending[id] then
        self.pending[id] = nil
        cb(nil, M.error(M.UNAVAILABLE, ("%s: no answer within %gs"):format(method, self.timeout)))
      end
    end)
    self.pending[id] = { cb = cb, timer = timer }
  end
  local ok, err = self.send(encode{ jsonrpc = "2.0", id = id, method = method, params = params or {} })
  if not ok and cb then
    self.pending[id] = nil
    core.cancel(timer)
    cb(nil, M.error(M.UNAVAILABLE, "cannot send: " .. tostring(err)))
  end
end

function Peer:notify(method, params)
  if not self.closed then
    self.send(encode{ jsonrpc = "2.0", method = method, params = params or {} })
  end
end

function Peer:reply(id, result, err)
  if id == nil or self.closed then return end
  if err then
    self.send(encode{ jsonrpc = "2.0", id = id, error = { code = err.code, message = err.message, data = err.data } })
  else
    self.send(encode{ jsonrpc = "2.0", id = id, result = result == nil and cjson.empty_array or result })
  end
end

local function respond(self, msg)
  local p = self.pending[msg.id]
  if not p then return end   -- late answer to a call that timed out, or from before a reload
  self.pending[msg.id] = nil
  core.cancel(p.timer)
  if type(msg.error) == "table" then
    p.cb(nil, M.error(tonumber(msg.error.code) or M.UNAVAILABLE, tostring(msg.error.message), msg.error.data))
  else
    p.cb(msg.result)
  end
end

local function request(self, msg)
  local handler = self.handlers[msg.method]
  if not handler then
    return self:reply(msg.id, nil, M.error(M.METHOD_NOT_FOUND, "unknown method " .. tostring(msg.method)))
  end
  local params = msg.params
  if params ~= nil and type(params) ~= "table" then
    return self:reply(msg.id, nil, M.error(M.INVALID_PARAMS, "params must be an object"))
  end
  local ok, result, err = pcall(handler, params or {}, self.context, msg)
  if not ok then
    core.log("error", "internal_error", { msg = "rpc handler " .. msg.method .. ": " .. tostring(result) })
    return self:reply(msg.id, nil, M.error(M.UNAVAILABLE, "internal error"))
  end
  self:reply(msg.id, result, err)
end

--- Feed one received line.
function Peer:handle(line)
  local msg = cjson.decode(line)
  if type(msg) ~= "table" or msg.jsonrpc ~= "2.0" then
    if self.on_bad then self.on_bad("not a JSON-RPC 2.0 message") end
    return self:reply(cjson.null, nil, M.error(M.PARSE_ERROR, "not a JSON-RPC 2.0 message"))
  end
  if msg.method ~= nil then
    if type(msg.method) ~= "string" then
      return self:reply(msg.id, nil, M.error(M.INVALID_REQUEST, "method must be a string"))
    end
    return request(self, msg)
  end
  if msg.id ~= nil then return respond(self, msg) end
end

--- Fail every call still waiting (the channel is gone).
function Peer:close(why)
  self.closed = true
  local pending = self.pending
  self.pending = {}
  for _, p in pairs(pending) do
    core.cancel(p.timer)
    p.cb(nil, M.error(M.UNAVAILABLE, why or "control channel closed"))
  end
end

M.encode = function(v) return cjson.encode(v) end
M.decode = function(s) return cjson.decode(s) end
M.null = cjson.null

return M

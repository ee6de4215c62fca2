--- tunnel.bootstrap — single-use (or n-use) bootstrap tokens for enrollment.
--
-- A bootstrap token lets a new agent get its first certificate: it names the
-- agent (the CSR's CN must match) and its role, and expires. The relay keeps
-- only SHA-256 hashes of the tokens, in a JSON store that the CLI and the
-- relay both update under a lock, atomically (temp file, fsync, rename):
--
--   { "version": 1, "tokens": { "<sha256 hex>": { name, role, uses, expires, created } } }
--
--   tunnel token bootstrap --name laptop --role web [--uses 1] [--ttl 1h] [--store state/bootstrap.json]
--   tunnel token list [--store ...]        (no secrets: names, roles, uses left, expiry)
--   tunnel token revoke --name laptop [--store ...]

local core = require "tunnel.core"
local rpc = require "tunnel.rpc"

local M = {}

M.DEFAULT_STORE = "state/bootstrap.json"
M.PREFIX = "tnlb1."

local function read_store(path)
  local f = io.open(path, "r")
  if not f then return { version = 1, tokens = {} } end
  local text = f:read("*a")
  f:close()
  if text == "" then return { version = 1, tokens = {} } end
  local data = rpc.decode(text)
  if type(data) ~= "table" or type(data.tokens) ~= "table" then
    return nil, path .. " is not a bootstrap token store"
  end
  return data
end

local function write_store(path, data)
  return core.write_file(path, rpc.encode(data) .. "\n", 384)   -- 0600
end

-- Run fn(store) under the store's lock; fn returns whether to save, and results.
local function with_store(path, fn)
  local lock, lerr = core.lock(path .. ".lock")
  if not lock then return nil, lerr end
  local data, err = read_store(path)
  local ok, save, a, b = pcall(function()
    if not data then return false, nil, err end
    return fn(data)
  end)
  if ok and save then
    local wok, werr = write_store(path, data)
    if not wok then a, b = nil, werr end
  end
  core.unlock(lock)
  if not ok then error(save, 0) end
  return a, b
end

--- Create a token; returns the token (shown once) or nil, err.
function M.create(path, opts)
  local token = core.random_token(M.PREFIX)
  local now = os.time()
  local ok, err = with_store(path, function(data)
    -- Used-up and expired entries go away whenever the store is written.
    for hash, rec in pairs(data.tokens) do
      if rec.uses <= 0 or rec.expires <= now then data.tokens[hash] = nil end
    end
    data.tokens[core.sha256_hex(token)] = { name = opts.name, role = opts.role or "", uses = opts.uses or 1,
      expires = now + (opts.ttl or 3600), created = now }
    return true, true
  end)
  if not ok then return nil, err end
  return token
end

--- Use a token (known only by its hash) for `name`: checks and decrements.
-- Returns the record, or nil and a reason for the log.
function M.consume(path, hash, name)
  return with_store(path, function(data)
    local rec = data.tokens[hash]
    if not rec then return false, nil, "unknown bootstrap token" end
    if rec.expires <= os.time() then return false, nil, "bootstrap token expired" end
    if rec.uses <= 0 then return false, nil, "bootstrap token already used" end
    if rec.name ~= name then
      return false, nil, ("the request's CN '%s' differs from the token's name '%s'"):format(name, rec.name)
    end
    rec.uses = rec.uses - 1
    return true, { name = rec.name, role = rec.role, uses = rec.uses }
  end)
end

------------------------------------------------------------------------------
-- CLI

local function parse(args, spec)
  local o, i = {}, 1
  while i <= #args do
    local key = args[i]:match("^%-%-([%w%-]+)$")
    if not key or spec[key] == nil then return nil, "unknown option " .. args[i] end
    if spec[key] == "flag" then
      o[key] = true
      i = i + 1
    else
      if args[i + 1] == nil then return nil, "--" .. key .. " needs a value" end
      o[key] = args[i + 1]
      i = i + 2
    end
  end
  return o
end

local function duration(s)
  local n, unit = tostring(s):match("^(%d+)([smhd]?)$")
  if not n then return nil end
  return tonumber(n) * ({ [""] = 1, s = 1, m = 60, h = 3600, d = 86400 })[unit]
end

local commands = {}

function commands.bootstrap(args)
  local o, err = parse(args, { name = "value", role = "value", uses = "value", ttl = "value", store = "value" })
  if not o or not o.name then
    return nil, err or "usage: tunnel token bootstrap --name N [--role R] [--uses 1] [--ttl 1h] [--store FILE]"
  end
  local uses, ttl = tonumber(o.uses or "1"), duration(o.ttl or "1h")
  if not uses or uses < 1 or uses % 1 ~= 0 then return nil, "--uses takes a positive integer" end
  if not ttl or ttl <= 0 then return nil, "--ttl takes a duration such as 30m, 1h or 7d" end
  local token, cerr = M.create(o.store or M.DEFAULT_STORE, { name = o.name, role = o.role, uses = uses, ttl = ttl })
  if not token then return nil, cerr end
  io.stdout:write(token, "\n")
  io.stderr:write(("bootstrap token for '%s' (role %s), %d use%s, expires in %s; stored hashed in %s\n")
    :format(o.name, o.role or "(none)", uses, uses == 1 and "" or "s", o.ttl or "1h", o.store or M.DEFAULT_STORE))
  return true
end

function commands.list(args)
  local o, err = parse(args, { store = "value" })
  if not o then return nil, err end
  local data, rerr = read_store(o.store or M.DEFAULT_STORE)
  if not data then return nil, rerr end
  local now = os.time()
  for hash, rec in pairs(data.tokens) do
    io.stdout:write(("%s…  name=%s role=%s uses=%d %s\n"):format(hash:sub(1, 12), rec.name, rec.role, rec.uses,
      rec.expires > now and ("expires in %ds"):format(rec.expires - now) or "expired"))
  end
  return true
end

function commands.revoke(args)
  local o, err = parse(args, { name = "value", store = "value" })
  if not o or not o.name then return nil, err or "usage: tunnel token revoke --name N [--store FILE]" end
  local n = with_store(o.store or M.DEFAULT_STORE, function(data)
    local count = 0
    for hash, rec in pairs(data.tokens) do
      if rec.name == o.name then data.tokens[hash] = nil; count = count + 1 end
    end
    return true, count
  end)
  io.stderr:write(("%d bootstrap token%s for '%s' revoked\n"):format(n or 0, n == 1 and "" or "s", o.name))
  return true
end

function M.main(args)
  local cmd = table.remove(args, 1)
  local fn = commands[cmd]
  if not fn then
    io.stderr:write("tunnel: usage: tunnel token bootstrap|list|revoke ...\n")
    return 2
  end
  local ok, err = fn(args)
  if not ok then
    io.stderr:write("tunnel: ", tostring(err), "\n")
    return 1
  end
  return 0
end

return M

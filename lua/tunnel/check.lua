--- tunnel.check — validation of option tables.
--
-- Every public function that takes an option table validates it here, so that
-- a typo or a wrong type is an error naming the key, raised at the caller's
-- line:
--
--   bad argument #1 to 'tunnel.listen' (unknown option 'adr'; did you mean 'addr'?)
--   bad argument #1 to 'tunnel.listen' (option 'sniff.timeout' must be a number, got string)
--
-- A schema maps each key to a spec: { kind, required = bool, default = v,
-- min = n, max = n, values = {..} (enum), fields = schema (table),
-- check = function(v) -> true | nil, message }.
-- kinds: string, number, integer, boolean, function, callable (a function or a
-- table with __call), table, enum, list (of = spec), any.

local M = {}

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__call) == "function"
end
M.is_callable = is_callable

local function distance(a, b)
  -- Levenshtein distance, for "did you mean" hints on short option names.
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function suggest(prefix, key, schema)
  local best, bestd
  for k in pairs(schema) do
    local d = distance(key, k)
    if d <= 2 and (not bestd or d < bestd) then best, bestd = k, d end
  end
  return best and ("; did you mean '" .. prefix .. best .. "'?") or ""
end

local validate_table

local function validate(path, v, spec)
  local kind = spec[1]
  local t = type(v)
  if kind == "any" then -- luacheck: ignore 542 (no type to check; spec.check below still runs)
  elseif kind == "callable" then
    if not is_callable(v) then
      return nil, ("option '%s' must be a function, got %s"):format(path, t)
    end
  elseif kind == "integer" then
    if t ~= "number" or v ~= math.floor(v) then
      return nil, ("option '%s' must be an integer, got %s"):format(path, t == "number" and tostring(v) or t)
    end
  elseif kind == "enum" then
    local ok = false
    for _, allowed in ipairs(spec.values) do ok = ok or v == allowed end
    if not ok then
      return nil, ("option '%s' must be one of \"%s\", got %s"):format(path,
        table.concat(spec.values, "\", \""), t == "string" and ('"' .. v .. '"') or t)
    end
  elseif kind == "list" then
    if t ~= "table" then return nil, ("option '%s' must be a list, got %s"):format(path, t) end
    local out = {}
    for k in pairs(v) do
      if type(k) ~= "number" or k < 1 or k > #v or k ~= math.floor(k) then
        return nil, ("option '%s' must be a list (key %s is not an index)"):format(path, tostring(k))
      end
    end
    for i, item in ipairs(v) do
      local r, err = validate(("%s[%d]"):format(path, i), item, spec.of)
      if err then return nil, err end
      out[i] = r
    end
    v = out
  elseif t ~= kind then
    return nil, ("option '%s' must be a %s, got %s"):format(path, kind, t)
  end
  if kind == "table" and spec.fields then
    local r, err = validate_table(path .. ".", v, spec.fields)
    if err then return nil, err end
    v = r
  end
  if (kind == "number" or kind == "integer") then
    if v ~= v then return nil, ("option '%s' must be a number, got nan"):format(path) end
    if spec.min and v < spec.min then
      return nil, ("option '%s' must be at least %s, got %s"):format(path, spec.min, v)
    end
    if spec.max and v > spec.max then
      return nil, ("option '%s' must be at most %s, got %s"):format(path, spec.max, v)
    end
  end
  if spec.check then
    local ok, msg = spec.check(v)
    if not ok then return nil, ("option '%s' %s"):format(path, msg) end
  end
  return v
end

function validate_table(prefix, opts, schema)
  local out = {}
  for k in pairs(opts) do
    if type(k) ~= "string" then
      return nil, ("option keys must be strings, got %s %s"):format(type(k), tostring(k))
    end
    if not schema[k] then
      return nil, ("unknown option '%s%s'%s"):format(prefix, k, suggest(prefix, k, schema))
    end
  end
  for k, spec in pairs(schema) do
    local v = opts[k]
    if v == nil then
      if spec.required then
        return nil, ("missing required option '%s%s'"):format(prefix, k)
      end
      if spec.default ~= nil then
        v = spec.default
        if type(v) == "table" then v = validate_table(prefix .. k .. ".", {}, spec.fields or {}) end
      end
      out[k] = v
    else
      local r, err = validate(prefix .. k, v, spec)
      if err then return nil, err end
      out[k] = r
    end
  end
  return out
end

--- Validate opts against schema; return a copy with defaults filled in.
-- Raises "bad argument #argn to 'fname' (...)" at `level` (default: the
-- caller of the function that called options).
function M.options(fname, opts, schema, level, argn)
  argn = argn or 1
  if type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(argn, fname, type(opts)), (level or 2) + 1)
  end
  local out, err = validate_table("", opts, schema)
  if not out then
    error(("bad argument #%d to '%s' (%s)"):format(argn, fname, err), (level or 2) + 1)
  end
  return out
end

--- Raise a misuse error for argument argn of fname at the caller's caller.
function M.argerror(fname, argn, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(argn, fname, msg), (level or 2) + 1)
end

--- "host:port" with an IPv4 address, [IPv6] or a name; returns true or nil, why.
function M.hostport(v)
  if type(v) ~= "string" then return nil, "must be a \"host:port\" string" end
  local host, port = v:match("^%[([%x:%.]+)%]:(%d+)$")
  if not host then host, port = v:match("^([%w%.%-_]+):(%d+)$") end
  if not host then
    return nil, ("must be \"host:port\" (IPv6 in brackets), got \"%s\""):format(v)
  end
  port = tonumber(port)
  if port > 65535 then return nil, ("has port %d, above 65535"):format(port) end
  return true
end

return M

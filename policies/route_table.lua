--- policies/route_table.lua — route sniffed connections by protocol and name.
--
-- Decides: the upstream "host:port" of a public connection.
-- Inputs:  conn.proto, and the name the client asked for: conn.sni (tls) or
--          conn.host (http; any ":port" is ignored).
-- Table:   one key per protocol ("tls", "http", "http2", "postgresql", "ssh",
--          "opaque", or a Lua sniffer's name). Its value is either one
--          upstream for every connection of that protocol, or a table from
--          name pattern to upstream:
--            "app.example.com"  exactly that name (case-insensitive, a final
--                               dot ignored);
--            "*.example.com"    any name ending in ".example.com" (one or more
--                               labels; the longest matching suffix wins);
--            "*"                any name, and connections without one.
-- Default: no entry -> refused (TLS alert unrecognized_name, HTTP 404, ...).
--
-- Example:
--   local route_table = require "policies.route_table"
--   tunnel.listen{ addr = "0.0.0.0:443", route = route_table{
--     tls  = { ["app.example.com"] = "10.0.0.5:443", ["*.example.com"] = "10.0.0.6:443" },
--     http = { ["app.example.com"] = "10.0.0.5:80" },
--     postgresql = "10.0.0.7:5432",
--     ssh = "10.0.0.8:22",
--   } }

local check = require "tunnel.check"

local function normalize(name)
  name = name:lower()
  if name:sub(-1) == "." then name = name:sub(1, -2) end
  return name
end

local function compile(proto, spec)
  if type(spec) == "string" then
    local ok, why = check.hostport(spec)
    if not ok then error(("bad argument #1 to 'route_table' (%s: upstream %s)"):format(proto, why), 4) end
    return { any = spec, exact = {}, suffixes = {} }
  end
  if type(spec) ~= "table" then
    error(("bad argument #1 to 'route_table' (%s: expected an upstream string or a table of names, got %s)")
      :format(proto, type(spec)), 4)
  end
  local t = { exact = {}, suffixes = {} }
  for pattern, upstream in pairs(spec) do
    local where = ("%s[%q]"):format(proto, tostring(pattern))
    local ok, why = check.hostport(upstream)
    if type(pattern) ~= "string" or not ok then
      error(("bad argument #1 to 'route_table' (%s: %s)"):format(where,
        type(pattern) ~= "string" and "names must be strings" or "upstream " .. why), 4)
    end
    if pattern == "*" then
      t.any = upstream
    elseif pattern:sub(1, 2) == "*." then
      t.suffixes[#t.suffixes + 1] = { normalize(pattern:sub(2)), upstream }
    elseif pattern:find("*", 1, true) then
      error(("bad argument #1 to 'route_table' (%s: '*' is allowed only as \"*\" or \"*.suffix\")"):format(where), 4)
    else
      t.exact[normalize(pattern)] = upstream
    end
  end
  -- Longest suffix first, so "*.a.example.com" beats "*.example.com".
  table.sort(t.suffixes, function(a, b) return #a[1] > #b[1] end)
  return t
end

local function lookup(t, name)
  if name then
    name = normalize(name)
    local hit = t.exact[name]
    if hit then return hit end
    for _, s in ipairs(t.suffixes) do
      if #name > #s[1] and name:sub(-#s[1]) == s[1] then return s[2] end
    end
  end
  return t.any
end

--- route_table(tables) -> route(conn)
return function(tables)
  if type(tables) ~= "table" then
    error(("bad argument #1 to 'route_table' (table expected, got %s)"):format(type(tables)), 2)
  end
  local compiled = {}
  for proto, spec in pairs(tables) do compiled[proto] = compile(proto, spec) end
  return function(conn)
    local t = compiled[conn.proto]
    if not t then return nil, ("no route for protocol %s"):format(conn.proto) end
    local name = conn.sni or (conn.host and conn.host:gsub(":%d+$", ""))
    local upstream = lookup(t, name)
    if upstream then return upstream end
    return nil, ("no route for %s name %q"):format(conn.proto, name or "")
  end
end

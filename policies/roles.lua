--- policies/roles.lua — what each role may do, and which names and ports it owns.
--
-- Decides: authorize(id, action, detail) for a relay, from id.role.
-- Table:   role -> {
--            actions = { "connect", "expose", "renew", "enroll" },  -- default: all four
--            kinds   = { "http", "tls", "tcp" },                    -- service kinds it may expose
--            hosts   = { "app.example.com", "*.web.example.com" },  -- names it owns (exact or *.suffix)
--            ports   = { { 20000, 20099 }, 5432 },                 -- tcp ports it owns ("auto" is checked
--          }                                                        --  against the allocated port later)
--          The role "*" matches every role not listed. An unknown role is refused.
-- Names and ports belong to tenants: an agent may expose a host only if its
-- role owns it (a wildcard it owns covers deeper names), a port only if it
-- is in one of its ranges.
--
-- Example:
--   local roles = require("policies.roles"){
--     web = { kinds = { "http", "tls" }, hosts = { "*.web.example.com" } },
--     db  = { kinds = { "tcp" }, ports = { { 20000, 20099 } } },
--   }
--   tunnel.relay{ ..., authorize = roles.authorize, allocate_port = roles.allocate_port(ports.allocate) }

local ALL_ACTIONS = { connect = true, expose = true, renew = true, enroll = true }

local function set(list, what, role)
  if list == nil then return nil end
  if type(list) ~= "table" then
    error(("bad argument #1 to 'roles' (role %q: %s must be a list)"):format(role, what), 4)
  end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function host_owned(patterns, host)
  host = host:lower()
  for _, p in ipairs(patterns or {}) do
    p = p:lower()
    if p == host then return true end
    if p:sub(1, 2) == "*." then
      local suffix = p:sub(2)
      -- "*.web.example.com" owns "a.web.example.com" and "*.a.web.example.com"
      if #host > #suffix and host:sub(-#suffix) == suffix then return true end
    end
  end
  return false
end

local function port_owned(ranges, port)
  for _, r in ipairs(ranges or {}) do
    if type(r) == "number" and r == port then return true end
    if type(r) == "table" and port >= r[1] and port <= r[2] then return true end
  end
  return false
end

return function(table_of_roles)
  if type(table_of_roles) ~= "table" then
    error("bad argument #1 to 'roles' (table of roles expected)", 2)
  end
  local roles = {}
  for name, r in pairs(table_of_roles) do
    if type(r) ~= "table" then error(("bad argument #1 to 'roles' (role %q must be a table)"):format(name), 2) end
    roles[name] = { actions = set(r.actions, "actions", name) or ALL_ACTIONS, kinds = set(r.kinds, "kinds", name),
      hosts = r.hosts, ports = r.ports }
  end

  local function authorize(id, action, detail)
    local role = roles[id.role] or roles["*"]
    if not role then return false, ("unknown role %q"):format(tostring(id.role)) end
    if not role.actions[action] then return false, ("role %s may not %s"):format(id.role, action) end
    if action ~= "expose" then return true end
    if role.kinds and not role.kinds[detail.kind] then
      return false, ("role %s may not expose %s services"):format(id.role, detail.kind)
    end
    for _, host in ipairs(detail.hosts or {}) do
      if not host_owned(role.hosts, host) then
        return false, ("host %s does not belong to role %s"):format(host, id.role)
      end
    end
    if type(detail.port) == "number" and not port_owned(role.ports, detail.port) then
      return false, ("port %d does not belong to role %s"):format(detail.port, id.role)
    end
    return true
  end

  -- Wrap a port allocator so that "auto" ports also stay inside the role's ranges.
  local function allocate_port(inner)
    return function(id, service)
      local port, why = inner(id, service)
      if not port then return nil, why end
      local role = roles[id.role] or roles["*"]
      if role and role.ports and not port_owned(role.ports, port) then
        return nil, ("port %d, from the allocator, does not belong to role %s"):format(port, id.role)
      end
      return port
    end
  end

  return { authorize = authorize, allocate_port = allocate_port }
end

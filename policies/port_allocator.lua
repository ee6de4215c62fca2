--- policies/port_allocator.lua — public ports for tcp services (port = "auto").
--
-- Decides: which public port a tcp service gets.
-- Sticky:  the same agent identity and service get the same port every time,
--          across reconnects and relay restarts (assignments are saved to
--          `state`, written atomically: temp file, fsync, rename).
-- Range:   ports are drawn from range = {first, last}, lowest free first.
-- Release: when a service's agent has been gone for the relay's grace
--          period, the relay calls release(); the port keeps its sticky owner
--          but may be handed to someone else if the range runs out (least
--          recently released first).
-- Inputs:  allocate(id, service) with id.name and service.service;
--          is_free(port) (from the relay: not held by a live service).
--
-- Example:
--   tunnel.relay{ ..., ports = { range = { 20000, 20999 }, state = "state/ports.json" } }
-- (the relay builds the allocator from `ports`), or by hand:
--   local ports = require("policies.port_allocator"){ range = { 20000, 20999 } }
--   tunnel.relay{ ..., allocate_port = ports.allocate, release_port = ports.release }

local core = require "tunnel.core"
local rpc = require "tunnel.rpc"

return function(opts)
  local first, last = opts.range[1], opts.range[2]
  local state_file = opts.state
  local is_free = opts.is_free or function() return true end
  local assigned = {}     -- key "agent/service" -> { port = n, released = time | nil }

  if state_file then
    local f = io.open(state_file, "r")
    if f then
      local data = rpc.decode(f:read("*a"))
      f:close()
      for key, a in pairs(type(data) == "table" and data.assignments or {}) do
        if type(a) == "table" and type(a.port) == "number" and a.port >= first and a.port <= last then
          assigned[key] = { port = a.port, released = a.released }
        end
      end
    end
  end

  local function save()
    if not state_file then return end
    local ok, err = core.write_file(state_file, rpc.encode{ version = 1, assignments = assigned } .. "\n", 420)
    if not ok then core.log("error", "state_write_failed", { file = state_file, error = err }) end
  end

  local function owner_of(port)
    for key, a in pairs(assigned) do
      if a.port == port then return key, a end
    end
  end

  local function allocate(id, service)
    local key = id.name .. "/" .. service.service
    local mine = assigned[key]
    if mine then
      mine.released = nil
      save()
      return mine.port
    end
    local reuse, reuse_key
    for port = first, last do
      local owner, a = owner_of(port)
      if not owner and is_free(port) then
        assigned[key] = { port = port }
        save()
        return port
      end
      if a and a.released and is_free(port) and (not reuse or a.released < reuse.released) then
        reuse, reuse_key = a, owner
      end
    end
    if reuse then
      assigned[reuse_key] = nil
      assigned[key] = { port = reuse.port }
      save()
      return reuse.port
    end
    return nil, ("no free port in %d-%d"):format(first, last)
  end

  local function release(id, service)
    local a = assigned[id.name .. "/" .. service.service]
    if a then
      a.released = os.time()
      save()
    end
    return true
  end

  return { allocate = allocate, release = release, assigned = assigned }
end

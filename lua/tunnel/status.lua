--- tunnel.status — `tunnel status [--management ADDR] [--token-file F] [--json]`:
-- what a running tunnel is doing, from its management endpoint's /status.

local core = require "tunnel.core"
local rpc = require "tunnel.rpc"

local M = {}

local function human_bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d %s"):format(n, units[i]) or ("%.1f %s"):format(n, units[i])
end

local function human_time(s)
  if s < 120 then return ("%ds"):format(s) end
  if s < 7200 then return ("%dm"):format(math.floor(s / 60)) end
  return ("%.1fh"):format(s / 3600)
end

-- "\n    limit in 1.0 MiB/s, quota 3.2 MiB of 1.0 GiB; out 64.0 KiB/s, over quota until 12m"
local function shaping_line(sh)
  if not sh then return "\n" end
  local parts = {}
  for _, dir in ipairs({ "in", "out" }) do
    local d = sh[dir]
    if d then
      local q = ""
      if d.quota then
        q = d.over_quota and (", over quota until %s"):format(human_time(d.window_left))
          or (", quota %s of %s"):format(human_bytes(d.quota_used), human_bytes(d.quota))
      end
      parts[#parts + 1] = ("%s %s/s%s"):format(dir, human_bytes(d.rate), q)
    end
  end
  return "\n    limit " .. table.concat(parts, "; ") .. "\n"
end

local function print_status(st)
  local out = io.stdout
  out:write(("tunnel %s, pid %d, up %s%s\n"):format(st.version, st.pid, human_time(st.uptime),
    st.draining and " (draining)" or ""))
  local c = st.connections
  out:write(("connections: %d open, %d accepted; bytes in %s, out %s\n"):format(c.open, c.accepted,
    human_bytes(c.bytes_in), human_bytes(c.bytes_out)))
  local rejected = {}
  for reason, n in pairs(c.rejected) do if n > 0 then rejected[#rejected + 1] = reason .. " " .. n end end
  if #rejected > 0 then out:write("refused: ", table.concat(rejected, ", "), "\n") end
  for _, l in ipairs(st.listeners) do
    out:write(("listener %-20s %-22s %d accepted%s\n"):format(l.name, l.addr, l.accepted,
      l.service and (" (service " .. l.service .. ")") or ""))
  end
  for _, r in ipairs(st.relays) do
    out:write(("relay %s on %s%s: %d session(s)\n"):format(r.name, r.addr, r.enroll and (", enrolling on " .. r.enroll) or "",
      #r.sessions))
    for _, s in ipairs(r.sessions) do
      out:write(("  session %d  %-16s role %-8s via %-5s from %-22s up %-6s idle %-5s streams %d  in %s out %s"):format(
        s.id, s.identity.name, s.identity.role ~= "" and s.identity.role or "-", s.identity.via, s.src,
        human_time(s.uptime), human_time(s.idle), s.streams or 0, human_bytes(s.bytes_in or 0),
        human_bytes(s.bytes_out or 0)), shaping_line(s.shaping))
    end
    for _, svc in ipairs(r.services) do
      out:write(("  service %-14s %-4s agent %-14s %-30s %s  %d conns"):format(svc.service, svc.kind, svc.agent,
        svc.port and ("port " .. svc.port) or table.concat(svc.hosts, ","),
        svc.online and "online" or ("offline " .. human_time(svc.offline_for or 0)), svc.connections),
        shaping_line(svc.shaping))
    end
  end
  for _, a in ipairs(st.agents) do
    out:write(("agent %s: %s, relay %s, %d stream(s)\n"):format(a.name, a.state, a.relay, a.streams))
  end
  local l = st.limits
  out:write(("limits: %s connections/s per address (%d refused), %s handshakes/s (%d refused), %d addresses tracked\n"):format(
    l.connections_per_ip.rate > 0 and l.connections_per_ip.rate or "unlimited", l.connections_per_ip.refused,
    l.handshakes_per_ip.rate > 0 and l.handshakes_per_ip.rate or "unlimited", l.handshakes_per_ip.refused,
    l.tracked_addresses))
end

function M.main(args)
  local addr, token_file, json = "127.0.0.1:7777", nil, false
  local i = 1
  while i <= #args do
    if args[i] == "--management" and args[i + 1] then addr, i = args[i + 1], i + 2
    elseif args[i] == "--token-file" and args[i + 1] then token_file, i = args[i + 1], i + 2
    elseif args[i] == "--json" then json, i = true, i + 1
    else
      io.stderr:write("usage: tunnel status [--management ADDR] [--token-file FILE] [--json]\n")
      return 2
    end
  end
  local token
  if token_file then
    local f, err = io.open(token_file, "r")
    if not f then io.stderr:write("tunnel: ", err, "\n"); return 1 end
    token = f:read("*l")
    f:close()
  end
  local status, body = core.http_get(addr, "/status", token)
  if not status then
    io.stderr:write("tunnel: ", body, " (is the tunnel running, with its management endpoint there?)\n")
    return 1
  end
  if status ~= 200 then
    io.stderr:write(("tunnel: %s answered %d: %s"):format(addr, status, body))
    return 1
  end
  if json then io.stdout:write(body, "\n"); return 0 end
  local st = rpc.decode(body)
  if type(st) ~= "table" then io.stderr:write("tunnel: /status is not JSON\n"); return 1 end
  print_status(st)
  return 0
end

return M

--- spec/helpers/logcap.lua — capture the runtime's JSON log lines (fd 2).

local ffi = require "ffi"
local cjson = require "cjson"
local tunnel = require "tunnel"

ffi.cdef [[
  int dup(int fd);
  int dup2(int fd, int fd2);
  int open(const char *path, int flags, int mode);
  int close(int fd);
]]

local M = {}

--- Run fn() with stderr redirected to a file; return the log events it wrote
-- (decoded JSON objects) and whatever fn returned.
function M.capture(fn)
  local path = os.tmpname()
  local saved = ffi.C.dup(2)
  local fd = ffi.C.open(path, 577, 420)      -- O_WRONLY|O_CREAT|O_TRUNC, 0644
  ffi.C.dup2(fd, 2)
  ffi.C.close(fd)
  tunnel.config{ log_level = "info" }
  local ok, a, b, c = pcall(fn)
  tunnel.config{ log_level = "warn" }
  ffi.C.dup2(saved, 2)
  ffi.C.close(saved)
  local events = {}
  for line in io.lines(path) do
    local okj, ev = pcall(cjson.decode, line)
    if okj and type(ev) == "table" then events[#events + 1] = ev end
  end
  os.remove(path)
  if not ok then error(a, 0) end
  return events, a, b, c
end

--- First event with the given name (and fields equal to `where`, if given).
function M.find(events, name, where)
  for _, ev in ipairs(events) do
    if ev.event == name then
      local match = true
      for k, v in pairs(where or {}) do match = match and ev[k] == v end
      if match then return ev end
    end
  end
end

return M

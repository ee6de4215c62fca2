--- spec/helpers/net.lua — non-blocking loopback sockets over the LuaJIT FFI,
-- so specs can drive real connections through the runtime with tunnel.step().

local ffi = require "ffi"
local tunnel = require "tunnel"

ffi.cdef [[
  struct tnl_spec_sin { uint16_t family; uint16_t port; uint32_t addr; char zero[8]; };
  int socket(int domain, int type, int protocol);
  int connect(int fd, const void *addr, uint32_t len);
  int bind(int fd, const void *addr, uint32_t len);
  int listen(int fd, int backlog);
  int accept4(int fd, void *addr, void *len, int flags);
  long send(int fd, const void *buf, unsigned long n, int flags);
  long recv(int fd, void *buf, unsigned long n, int flags);
  int close(int fd);
  int shutdown(int fd, int how);
  int getsockname(int fd, void *addr, uint32_t *len);
  int setsockopt(int fd, int level, int name, const void *val, uint32_t len);
  uint16_t htons(uint16_t v);
  uint16_t ntohs(uint16_t v);
  char *strerror(int errnum);
]]

local C = ffi.C
local AF_INET, SOCK_STREAM, SOCK_NONBLOCK = 2, 1, 2048
local SOL_SOCKET, SO_REUSEADDR = 1, 2
local MSG_NOSIGNAL = 0x4000
local EAGAIN, EINPROGRESS = 11, 115
local LOOPBACK = 0x0100007f   -- 127.0.0.1 in network order on little-endian

local M = {}

local function sin(port)
  local a = ffi.new("struct tnl_spec_sin")
  a.family = AF_INET
  a.port = C.htons(port)
  a.addr = LOOPBACK
  return a
end

local function check(rc, what)
  if rc < 0 then error(what .. ": " .. ffi.string(C.strerror(ffi.errno())), 2) end
  return rc
end

local Sock = {}
Sock.__index = Sock

--- Send all of s (retrying on EAGAIN while stepping the loop).
function Sock:send(s, timeout)
  local off, deadline = 0, tunnel.now() + (timeout or 5)
  while off < #s do
    local n = C.send(self.fd, ffi.cast("const char *", s) + off, #s - off, MSG_NOSIGNAL)
    if n < 0 then
      if ffi.errno() ~= EAGAIN then return nil, ffi.string(C.strerror(ffi.errno())) end
      if tunnel.now() > deadline then return nil, "timeout" end
      tunnel.step(0.005)
    else
      off = off + tonumber(n)
    end
  end
  return true
end

--- Non-blocking read: data, or "" at end of stream, or nil when nothing yet.
function Sock:recv_now()
  local buf = ffi.new("char[65536]")
  local n = C.recv(self.fd, buf, 65536, 0x40)   -- MSG_DONTWAIT
  if n < 0 then
    local e = ffi.errno()
    if e == EAGAIN then return nil end
    return "", ffi.string(C.strerror(e))
  end
  return ffi.string(buf, n)
end

--- Read until predicate(data) is true, EOF, or timeout; returns all data read
-- and whether the peer closed.
function Sock:read_until(pred, timeout)
  local parts, deadline = {}, tunnel.now() + (timeout or 5)
  while true do
    local d = self:recv_now()
    if d == "" then return table.concat(parts), true end
    if d then
      parts[#parts + 1] = d
      if pred and pred(table.concat(parts)) then return table.concat(parts), false end
    else
      if tunnel.now() > deadline then return table.concat(parts), false, "timeout" end
      tunnel.step(0.005)
    end
  end
end

function Sock:read_all(timeout) return self:read_until(nil, timeout) end
function Sock:shutdown_write() C.shutdown(self.fd, 1) end
function Sock:close() if self.fd >= 0 then C.close(self.fd); self.fd = -1 end end

--- Connect to 127.0.0.1:port (non-blocking; completes while the loop steps).
function M.connect(port)
  local fd = check(C.socket(AF_INET, SOCK_STREAM + SOCK_NONBLOCK, 0), "socket")
  local a = sin(port)
  local rc = C.connect(fd, a, ffi.sizeof(a))
  if rc < 0 and ffi.errno() ~= EINPROGRESS then check(rc, "connect") end
  return setmetatable({ fd = fd }, Sock)
end

local Server = {}
Server.__index = Server

--- Accept one connection, stepping the loop until one arrives.
function Server:accept(timeout)
  local deadline = tunnel.now() + (timeout or 5)
  while true do
    local fd = C.accept4(self.fd, nil, nil, SOCK_NONBLOCK)
    if fd >= 0 then return setmetatable({ fd = fd }, Sock) end
    if tunnel.now() > deadline then return nil, "timeout" end
    tunnel.step(0.005)
  end
end

function Server:close() C.close(self.fd) end

--- A listening socket on 127.0.0.1 with a kernel-chosen port.
function M.server()
  local fd = check(C.socket(AF_INET, SOCK_STREAM + SOCK_NONBLOCK, 0), "socket")
  local one = ffi.new("int[1]", 1)
  C.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4)
  local a = sin(0)
  check(C.bind(fd, a, ffi.sizeof(a)), "bind")
  check(C.listen(fd, 128), "listen")
  local len = ffi.new("uint32_t[1]", ffi.sizeof(a))
  C.getsockname(fd, a, len)
  return setmetatable({ fd = fd, port = C.ntohs(a.port) }, Server)
end

--- Port of a listener object ("127.0.0.1:1234" -> 1234).
function M.port_of(listener)
  return tonumber(listener.addr:match(":(%d+)$"))
end

--- Step the loop until pred() is true or timeout; returns pred's last value.
function M.wait(pred, timeout)
  local deadline = tunnel.now() + (timeout or 5)
  local v = pred()
  while not v and tunnel.now() < deadline do
    tunnel.step(0.005)
    v = pred()
  end
  return v
end

return M

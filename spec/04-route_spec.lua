-- The route hook: what it receives, and every shape of what it may return.
local tunnel = require "tunnel"
local net = require "helpers.net"
local logcap = require "helpers.logcap"

local backend = net.server()
local UP = "127.0.0.1:" .. backend.port
local GET = "GET /x?y=1 HTTP/1.1\r\nHost: Shop.Example.com:8080\r\nAccept: */*\r\n\r\n"

-- The route function under test is swapped per case.
local current, last_conn
local l = assert(tunnel.listen{ name = "route-spec", addr = "127.0.0.1:0", sniff = { timeout = 2 },
  route = function(conn)
    last_conn = conn
    return current(conn)
  end })

-- Send `payload`, then return what the client got back (the connection ends
-- on rejection) and, if the route forwarded, what the backend received.
local function exchange(payload)
  last_conn = nil
  local c = net.connect(net.port_of(l))
  assert(c:send(payload))
  net.wait(function() return last_conn ~= nil end, 3)
  local s = backend:accept(0.3)
  local upstream_got
  if s then
    upstream_got = s:read_until(function(d) return #d >= #payload end, 3)
    s:send("REPLY")
    s:close()
  end
  local reply = c:read_all(3)
  c:close()
  return reply, upstream_got
end

local function expect_http_status(reply, status)
  assert.matches("^HTTP/1%.1 " .. status, reply)
end

describe("route(conn) receives", function()
  it("the sniffed fields of an HTTP request", function()
    current = function() return UP end
    exchange(GET)
    local c = last_conn
    assert.equal("http", c.proto)
    assert.equal("GET", c.method)
    assert.equal("/x?y=1", c.path)
    assert.equal("Shop.Example.com:8080", c.host)
    assert.equal("route-spec", c.listener)
    assert.matches("^127%.0%.0%.1:%d+$", c.src)
    assert.equal(l.addr, c.dst)
    assert.equal(GET, c.bytes)
    assert.is_number(c.id)
    assert.is_nil(c.sni)
  end)

  it("the SNI and ALPN of a TLS ClientHello", function()
    local f = assert(io.open("tests/vectors/first-bytes-captures.json"))
    local hex = f:read("*a"):match('"hex": "(16030101510100014d[%x]+)"')
    f:close()
    local hello = hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
    current = function() return nil end
    local reply = exchange(hello)
    assert.equal("tls", last_conn.proto)
    assert.equal("tunnel.example.com", last_conn.sni)
    assert.same({ "h2", "http/1.1" }, last_conn.alpn)
    -- refused: fatal alert unrecognized_name (112)
    assert.equal("\21\3\3\0\2\2\112", reply)
  end)

  it("the user and database of a PostgreSQL StartupMessage", function()
    local body = "\0\3\0\0" .. "user\0alice\0database\0shop\0\0"
    local msg = string.char(0, 0, 0, 4 + #body) .. body
    current = function() return nil, "no such database" end
    local reply = exchange(msg)
    assert.equal("postgresql", last_conn.proto)
    assert.same({ user = "alice", database = "shop", ssl = false, gssenc = false, cancel = false }, last_conn.pg)
    assert.equal("E", reply:sub(1, 1))
    assert.matches("SFATAL", reply, 1, true)
    assert.matches("C08004", reply, 1, true)
  end)
end)

describe("route(conn) may return", function()
  it('"host:port": the peeked bytes reach the upstream untouched, then both ways flow', function()
    current = function() return UP end
    local reply, got = exchange(GET)
    assert.equal(GET, got)
    assert.equal("REPLY", reply)
  end)

  it('"localhost:port": a name, resolved without blocking', function()
    current = function() return "localhost:" .. backend.port end
    local reply, got = exchange(GET)
    assert.equal(GET, got)
    assert.equal("REPLY", reply)
  end)

  it("nil: refused with 404 for HTTP", function()
    current = function() return nil end
    local events, reply = logcap.capture(function() return exchange(GET) end)
    expect_http_status(reply, "404")
    assert.matches("no route for this host", reply)
    local rej = logcap.find(events, "reject")
    assert.equal("route: no route", rej.reason)
  end)

  it("nil, reason: refused, the reason logged and not sent", function()
    current = function() return nil, "tenant suspended" end
    local events, reply = logcap.capture(function() return exchange(GET) end)
    expect_http_status(reply, "404")
    assert.not_matches("tenant", reply)
    assert.equal("route: tenant suspended", logcap.find(events, "reject").reason)
  end)

  it("false, reason: refused like nil", function()
    current = function() return false, "nope" end
    expect_http_status((exchange(GET)), "404")
  end)

  it("an unreachable upstream: 502", function()
    local dead = net.server()
    local port = dead.port
    dead:close()
    current = function() return "127.0.0.1:" .. port end
    local events, reply = logcap.capture(function() return exchange(GET) end)
    expect_http_status(reply, "502")
    assert.matches("Connection refused", logcap.find(events, "reject").reason)
  end)
end)

describe("a route hook that misbehaves fails closed", function()
  local cases = {
    { "returns a number", function() return 42 end, "returned a number" },
    { "returns a table", function() return {} end, "returned a table" },
    { "returns true", function() return true end, "returned a boolean" },
    { "returns a malformed address", function() return "nowhere" end, 'returned "nowhere", which is not an upstream' },
    { "returns port 0", function() return "127.0.0.1:0" end, "port 0" },
    { "returns nil with a non-string reason", function() return nil, 12 end, "nil with a number as reason" },
    { "raises", function() error("boom") end, "boom" },
    { "indexes nil", function(conn) return conn.nope.x end, "attempt to index" },
    { "yields outside a helper", function() coroutine.yield() end, "yielded outside a tunnel helper" },
    { "loops forever", function() while true do end end, "exceeded its budget" },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. ": 502 and a hook_error naming the hook, file:line and message", function()
      current = case[2]
      local events, reply = logcap.capture(function() return exchange(GET) end)
      expect_http_status(reply, "502")
      local ev = logcap.find(events, "hook_error")
      assert.is_table(ev, "no hook_error logged")
      assert.equal("route", ev.hook)
      assert.equal("route-spec", ev.name)
      assert.matches("04%-route_spec%.lua:%d+$", ev["function"])
      assert.matches(case[3], ev.error, 1, true)
      -- and the next connection is served normally
      current = function() return UP end
      local ok_reply = exchange(GET)
      assert.equal("REPLY", ok_reply)
    end)
  end

  it("stops a runaway hook within its time budget", function()
    tunnel.config{ hook_budget = { instructions = 1e9, timeout = 0.05 } }
    current = function() while true do end end
    local t0 = os.clock()
    local events, reply = logcap.capture(function() return exchange(GET) end)
    tunnel.config{ hook_budget = { instructions = 1e6, timeout = 0.1 } }
    expect_http_status(reply, "502")
    assert.matches("exceeded its budget of 50 ms", logcap.find(events, "hook_error").error)
    assert.is_true(os.clock() - t0 < 2)
  end)
end)

describe("a route hook may yield", function()
  it("in tunnel.sleep, and routes when resumed", function()
    current = function() tunnel.sleep(0.05); return UP end
    local t0 = tunnel.now()
    local reply = exchange(GET)
    assert.equal("REPLY", reply)
    assert.is_true(tunnel.now() - t0 >= 0.05)
  end)

  it("but tunnel.sleep outside a hook is refused", function()
    assert.has_error(function() tunnel.sleep(0.01) end,
      "tunnel.sleep: API disabled outside hooks that may yield (route)")
  end)
end)

describe("tunnel.fd()", function()
  local ffi = require "ffi"
  pcall(ffi.cdef, [[
    struct tnl_spec_pollfd { int fd; short events; short revents; };
    int poll(struct tnl_spec_pollfd *fds, unsigned long n, int timeout);
  ]])
  it("becomes readable when a connection arrives", function()
    local p = ffi.new("struct tnl_spec_pollfd[1]")
    p[0].fd = tunnel.fd()
    p[0].events = 1
    tunnel.step(0)
    current = function() return UP end
    local c = net.connect(net.port_of(l))
    local n = ffi.C.poll(p, 1, 2000)
    assert.equal(1, n)
    assert.is_true(bit.band(p[0].revents, 1) ~= 0)
    c:close()
    for _ = 1, 10 do tunnel.step(0.01) end
  end)
end)

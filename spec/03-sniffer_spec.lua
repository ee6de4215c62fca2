-- tunnel.sniffer: registration rules, and the order in which matchers decide.
local tunnel = require "tunnel"
local net = require "helpers.net"

local function sniffer_err(opts)
  local ok, err = pcall(tunnel.sniffer, opts)
  assert.is_false(ok)
  return err
end

describe("tunnel.sniffer registration", function()
  it("validates name and match", function()
    assert.matches("missing required option 'name'", sniffer_err({ match = function() end }))
    assert.matches("missing required option 'match'", sniffer_err({ name = "x1" }))
    assert.matches("option 'name' must be a letter then", sniffer_err({ name = "1x", match = function() end }))
    assert.matches("option 'name' 'tls' is a built%-in protocol name", sniffer_err({ name = "tls", match = function() end }))
    assert.matches("option 'match' must be a function", sniffer_err({ name = "x2", match = 3 }))
    assert.matches("unknown option 'matcher'", sniffer_err({ name = "x3", matcher = function() end }))
  end)

  it("refuses a second sniffer with the same name", function()
    tunnel.sniffer{ name = "dup-spec", match = function() return false end }
    assert.matches("a sniffer named 'dup%-spec' is already registered",
      sniffer_err({ name = "dup-spec", match = function() end }))
  end)
end)

-- One listener whose route reports conn.proto and conn.fields.
local seen = {}
local backend = net.server()
local function route(conn)
  seen[#seen + 1] = conn
  return "127.0.0.1:" .. backend.port
end

-- Registration order: "first" and "second" both claim lines starting "HELLO";
-- "first" was registered first, so it wins. "waiter" needs 8 bytes.
tunnel.sniffer{ name = "first", match = function(b)
  if #b < 5 then return nil end
  return b:sub(1, 5) == "HELLO", { by = "first" }
end }
tunnel.sniffer{ name = "second", match = function(b)
  if #b < 5 then return nil end
  return b:sub(1, 5) == "HELLO" or b:sub(1, 5) == "WORLD", { by = "second" }
end }
tunnel.sniffer{ name = "waiter", match = function(b)
  if #b < 8 then return nil end
  return b == "12345678"
end }

local l = assert(tunnel.listen{ name = "sniff-spec", addr = "127.0.0.1:0", route = route,
  sniff = { timeout = 2 } })

local function send_and_route(payloads)
  local n = #seen
  local c = net.connect(net.port_of(l))
  for i, p in ipairs(payloads) do
    assert(c:send(p))
    if i < #payloads then
      -- the matcher must keep waiting between fragments
      for _ = 1, 5 do tunnel.step(0.01) end
      assert.equal(n, #seen, "decided too early after fragment " .. i)
    end
  end
  assert.truthy(net.wait(function() return #seen > n end, 3), "no route call")
  local s = assert(backend:accept())
  local got = s:read_until(function(d) return #d >= #table.concat(payloads) end, 3)
  c:close(); s:close()
  return seen[#seen], got
end

describe("Lua matchers", function()
  it("are tried in registration order: the first true wins", function()
    local conn = send_and_route({ "HELLO there\r\n" })
    assert.equal("first", conn.proto)
    assert.same({ by = "first" }, conn.fields)
  end)

  it("fall through on false to the next matcher", function()
    local conn = send_and_route({ "WORLD\r\n" })
    assert.equal("second", conn.proto)
  end)

  it("keep waiting while a matcher returns nil, and replay every byte", function()
    local conn, got = send_and_route({ "1234", "5678" })
    assert.equal("waiter", conn.proto)
    assert.equal("12345678", got)
    assert.equal("12345678", conn.bytes)
  end)

  it("come after the built-ins", function()
    local conn = send_and_route({ "GET / HTTP/1.1\r\nHost: h\r\n\r\n" })
    assert.equal("http", conn.proto)
    assert.is_nil(conn.fields)
  end)

  it("end in the opaque fallback when every matcher says false", function()
    local conn = send_and_route({ "zzzzzzzzzz" })
    assert.equal("opaque", conn.proto)
  end)

  it("are listed by tunnel.sniffers() in order", function()
    local names = table.concat(tunnel.sniffers(), ",")
    assert.matches("first,second,waiter", names, 1, true)
  end)
end)

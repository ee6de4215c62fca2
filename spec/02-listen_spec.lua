-- tunnel.listen: option validation, the listener object, live binding.
local tunnel = require "tunnel"
local net = require "helpers.net"

local function route() return nil end

local function listen_err(opts)
  local ok, err = pcall(tunnel.listen, opts)
  assert.is_false(ok)
  return err
end

describe("tunnel.listen options", function()
  it("requires addr and route", function()
    assert.matches("missing required option 'addr'", listen_err({ route = route }))
    assert.matches("missing required option 'route'", listen_err({ addr = "127.0.0.1:0" }))
  end)

  it("names unknown keys", function()
    assert.matches("bad argument #1 to 'tunnel.listen' %(unknown option 'rout'; did you mean 'route'%?%)",
      listen_err({ addr = "127.0.0.1:0", rout = route }))
    assert.matches("unknown option 'sniff.byte'", listen_err({ addr = "127.0.0.1:0", route = route, sniff = { byte = 1 } }))
  end)

  it("names wrong types", function()
    assert.matches("option 'route' must be a function, got string", listen_err({ addr = "127.0.0.1:0", route = "x" }))
    assert.matches("option 'proxy_protocol' must be a boolean, got number",
      listen_err({ addr = "127.0.0.1:0", route = route, proxy_protocol = 1 }))
    assert.matches("option 'sniff.timeout' must be a number, got string",
      listen_err({ addr = "127.0.0.1:0", route = route, sniff = { timeout = "5" } }))
    assert.matches([[option 'sniff.on_timeout' must be one of "close", "opaque"]],
      listen_err({ addr = "127.0.0.1:0", route = route, sniff = { on_timeout = "drop" } }))
  end)

  it("checks the address form", function()
    assert.matches([[option 'addr' must be "host:port"]], listen_err({ addr = "127.0.0.1", route = route }))
    assert.matches("option 'addr' has port 70000, above 65535", listen_err({ addr = "127.0.0.1:70000", route = route }))
  end)

  it("bounds the peek size", function()
    assert.matches("option 'sniff.bytes' must be at least 64",
      listen_err({ addr = "127.0.0.1:0", route = route, sniff = { bytes = 10 } }))
    assert.matches("option 'sniff.bytes' must be at most 1048576",
      listen_err({ addr = "127.0.0.1:0", route = route, sniff = { bytes = 2 ^ 21 } }))
  end)
end)

describe("tunnel.listen live", function()
  it("binds at once and reports the bound address", function()
    local l = assert(tunnel.listen{ name = "spec-a", addr = "127.0.0.1:0", route = route })
    tunnel.step(0)
    assert.equal("spec-a", l.name)
    assert.is_true(l.live)
    assert.matches("^127%.0%.0%.1:%d+$", l.addr)
    assert.is_true(net.port_of(l) > 0)
    assert.is_true(l:close())
  end)

  it("uses addr as the default name", function()
    local l = assert(tunnel.listen{ addr = "127.0.0.1:0", route = route })
    tunnel.step(0)
    assert.equal("127.0.0.1:0", l.name)
    l:close()
  end)

  it("raises 'stale handle' on a closed listener", function()
    local l = assert(tunnel.listen{ name = "spec-stale", addr = "127.0.0.1:0", route = route })
    tunnel.step(0)
    l:close()
    local ok, err = pcall(function() return l.addr end)
    assert.is_false(ok)
    assert.matches("stale handle: listener 'spec%-stale' is closed", err)
    local again, why = l:close()
    assert.is_nil(again)
    assert.matches("stale handle", why)
  end)

  it("returns nil, err when the port is taken", function()
    local a = assert(tunnel.listen{ addr = "127.0.0.1:0", route = route })
    tunnel.step(0)
    local taken = a.addr
    local b, err = tunnel.listen{ addr = taken, name = "second", route = route }
    assert.is_nil(b)
    assert.matches("listener 'second': cannot listen on " .. taken:gsub("%.", "%%.") .. ": Address already in use", err)
    a:close()
  end)

  it("resolves a name for the bind address", function()
    local l = assert(tunnel.listen{ addr = "localhost:0", route = route })
    tunnel.step(0)
    assert.is_true(l.live)
    l:close()
  end)
end)

describe("tunnel.config and tunnel.log", function()
  it("validate their arguments", function()
    assert.has_error(function() tunnel.config{ log_level = "loud" } end,
      [[bad argument #1 to 'tunnel.config' (option 'log_level' must be one of "debug", "info", "warn", "error", "off", got "loud")]])
    assert.has_error(function() tunnel.config{ hook_budget = { instructions = 10 } } end)
    assert.has_error(function() tunnel.log("loud", "x") end,
      "bad argument #1 to 'tunnel.log' (level must be debug, info, warn or error)")
    assert.has_error(function() tunnel.log("info", "x", { f = {} }) end,
      "bad argument #3 to 'tunnel.log' (field 'f' must be a string, number or boolean)")
  end)

  it("accepts good settings", function()
    assert.has_no.errors(function()
      tunnel.config{ log_level = "info", drain_timeout = 10, hook_budget = { instructions = 1e6, timeout = 0.1 } }
    end)
  end)
end)

describe("the loop API", function()
  it("exposes a pollable descriptor", function()
    local fd = tunnel.fd()
    assert.is_number(fd)
    assert.is_true(fd > 2)
  end)
  it("steps with a bounded wait", function()
    local t0 = tunnel.now()
    tunnel.step(0.05)
    local dt = tunnel.now() - t0
    assert.is_true(dt >= 0.04 and dt < 1, "waited " .. dt)
  end)
  it("validates step and stop arguments", function()
    assert.has_error(function() tunnel.step(-1) end, "bad argument #1 to 'tunnel.step' (timeout must be a non-negative number)")
    assert.has_error(function() tunnel.stop("soon") end)
  end)
end)

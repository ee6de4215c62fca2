-- Operations options: tunnel.config limits and management, tunnel.relay
-- shaping and idle. Misuse names the option at fault.
local tunnel = require "tunnel"

local function err_of(fn, opts)
  local ok, err = pcall(fn, opts)
  assert.is_false(ok)
  return err
end

-- Enough of a relay for its options to be checked (the files are never read:
-- validation fails first).
local function relay_opts(extra)
  local o = { addr = "127.0.0.1:0", tls = { cert = "c", key = "k", ca = "a" } }
  for k, v in pairs(extra) do o[k] = v end
  return o
end

describe("tunnel.config limits", function()
  it("checks each bucket", function()
    assert.matches("option 'limits.connections_per_ip.rate' must be at least 0",
      err_of(tunnel.config, { limits = { connections_per_ip = { rate = -1 } } }))
    assert.matches("missing required option 'limits.handshakes_per_ip.rate'",
      err_of(tunnel.config, { limits = { handshakes_per_ip = { burst = 10 } } }))
    assert.matches("unknown option 'limits.connections_per_ipp'",
      err_of(tunnel.config, { limits = { connections_per_ipp = { rate = 1 } } }))
    assert.matches("option 'limits.max_pending_sniffs' must be an integer",
      err_of(tunnel.config, { limits = { max_pending_sniffs = 1.5 } }))
  end)

  it("checks the management endpoint", function()
    assert.matches("option 'management' must be false or a table, got true",
      err_of(tunnel.config, { management = true }))
    assert.matches("option 'management.allow%[1%]' is not an address range",
      err_of(tunnel.config, { management = { allow = { "10.0.0.0/33" } } }))
    assert.matches("option 'management.addr' must be \"host:port\"",
      err_of(tunnel.config, { management = { addr = "nope" } }))
    assert.matches("unknown option 'management.tokenfile'; did you mean 'management.token_file'%?",
      err_of(tunnel.config, { management = { tokenfile = "x" } }))
  end)

  it("checks zero_copy", function()
    assert.matches("option 'zero_copy' must be a boolean",
      err_of(tunnel.config, { zero_copy = "yes" }))
    assert.matches("unknown option 'zerocopy'; did you mean 'zero_copy'%?",
      err_of(tunnel.config, { zerocopy = false }))
    assert.has_no.errors(function() tunnel.config{ zero_copy = false } end)
  end)

  it("accepts a complete table", function()
    -- Not under tunnel run: nothing is applied until a commit, so this is safe.
    assert.has_no.errors(function()
      tunnel.config{ limits = { connections_per_ip = { rate = 50, burst = 200 }, handshakes_per_ip = { rate = 0 },
        max_pending_sniffs = 100 }, management = false }
    end)
  end)
end)

describe("tunnel.relay shaping and idle", function()
  it("needs a rate for each limit", function()
    assert.matches("missing required option 'shaping.service.rate'",
      err_of(tunnel.relay, relay_opts{ shaping = { service = { quota = 1e9 } } }))
  end)

  it("names bad values", function()
    assert.matches("option 'shaping.session.burst' must be at least 1024",
      err_of(tunnel.relay, relay_opts{ shaping = { session = { rate = 1e6, burst = 10 } } }))
    assert.matches("option 'shaping.service.window' must be at least 1",
      err_of(tunnel.relay, relay_opts{ shaping = { service = { rate = 1e6, window = 0 } } }))
    assert.matches("unknown option 'shaping.servce'; did you mean 'shaping.service'%?",
      err_of(tunnel.relay, relay_opts{ shaping = { servce = { rate = 1 } } }))
    assert.matches("option 'idle.stream' must be at least 0",
      err_of(tunnel.relay, relay_opts{ idle = { stream = -1 } }))
    assert.matches("option 'idle.session' must be a number, got string",
      err_of(tunnel.relay, relay_opts{ idle = { session = "1h" } }))
  end)
end)

describe("tunnel.listen idle_timeout", function()
  it("is checked", function()
    assert.matches("option 'idle_timeout' must be at least 0",
      err_of(tunnel.listen, { addr = "127.0.0.1:0", route = function() end, idle_timeout = -5 }))
  end)
end)

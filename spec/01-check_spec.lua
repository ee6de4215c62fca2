-- Option validation: every error names the key, the function and the problem.
local check = require "tunnel.check"

describe("tunnel.check.options", function()
  local schema = {
    addr = { "string", required = true },
    port = { "integer", min = 1, max = 65535, default = 80 },
    mode = { "enum", values = { "a", "b" }, default = "a" },
    fn = { "callable" },
    sub = { "table", default = {}, fields = {
      n = { "number", min = 0, default = 1 },
    } },
    list = { "list", of = { "string" } },
  }

  local function err_of(opts)
    local ok, err = pcall(check.options, "f", opts, schema)
    assert.is_false(ok)
    return err
  end

  it("fills defaults, including nested tables", function()
    local o = check.options("f", { addr = "x" }, schema)
    assert.same({ addr = "x", port = 80, mode = "a", sub = { n = 1 } }, o)
  end)

  it("rejects a non-table", function()
    assert.matches("bad argument #1 to 'f' %(table expected, got string%)", err_of("x"))
  end)

  it("names an unknown key and suggests a close one", function()
    assert.matches("unknown option 'adr'; did you mean 'addr'%?", err_of({ adr = "x" }))
    assert.matches("unknown option 'zzzzzz'%)$", err_of({ addr = "x", zzzzzz = 1 }))
  end)

  it("names a missing required key", function()
    assert.matches("missing required option 'addr'", err_of({}))
  end)

  it("names wrong types with what was given", function()
    assert.matches("option 'port' must be an integer, got string", err_of({ addr = "x", port = "80" }))
    assert.matches("option 'port' must be an integer, got 1.5", err_of({ addr = "x", port = 1.5 }))
    assert.matches("option 'addr' must be a string, got number", err_of({ addr = 1 }))
    assert.matches("option 'fn' must be a function, got table", err_of({ addr = "x", fn = {} }))
  end)

  it("checks ranges", function()
    assert.matches("option 'port' must be at least 1, got 0", err_of({ addr = "x", port = 0 }))
    assert.matches("option 'port' must be at most 65535, got 70000", err_of({ addr = "x", port = 70000 }))
  end)

  it("checks enums", function()
    assert.matches([[option 'mode' must be one of "a", "b", got "c"]], err_of({ addr = "x", mode = "c" }))
  end)

  it("names nested keys with their path", function()
    assert.matches("unknown option 'sub.m'", err_of({ addr = "x", sub = { m = 1 } }))
    assert.matches("option 'sub.n' must be at least 0", err_of({ addr = "x", sub = { n = -1 } }))
  end)

  it("checks lists and their items", function()
    assert.matches("option 'list%[2%]' must be a string, got number", err_of({ addr = "x", list = { "a", 2 } }))
    assert.matches("option 'list' must be a list", err_of({ addr = "x", list = { a = 1 } }))
  end)

  it("accepts a callable table as a function", function()
    local callable = setmetatable({}, { __call = function() end })
    assert.equal(callable, check.options("f", { addr = "x", fn = callable }, schema).fn)
  end)

  it("raises at the caller's line", function()
    local function api(opts) local o = check.options("api", opts, schema); return o end
    local ok, err = pcall(function() api({}) end)
    assert.is_false(ok)
    assert.matches("01%-check_spec.lua:%d+: bad argument #1 to 'api'", err)
  end)
end)

describe("tunnel.check.hostport", function()
  it("accepts IPv4, [IPv6] and names", function()
    assert.is_true(check.hostport("127.0.0.1:80"))
    assert.is_true(check.hostport("[::1]:443"))
    assert.is_true(check.hostport("db.internal:5432"))
  end)
  it("rejects the rest with a reason", function()
    assert.is_nil(check.hostport("127.0.0.1"))
    assert.is_nil(check.hostport("::1:80"))
    assert.is_nil(check.hostport("a:99999"))
    assert.is_nil(check.hostport(12))
    local _, why = check.hostport("a:99999")
    assert.matches("above 65535", why)
  end)
end)

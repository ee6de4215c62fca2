-- policies/route_table.lua: names and patterns to upstreams.
local route_table = require "policies.route_table"

describe("route_table", function()
  local route = route_table{
    tls = {
      ["app.example.com"] = "10.0.0.1:443",
      ["*.example.com"] = "10.0.0.2:443",
      ["*.eu.example.com"] = "10.0.0.3:443",
    },
    http = { ["app.example.com"] = "10.0.0.4:80", ["*"] = "10.0.0.5:80" },
    postgresql = "10.0.0.6:5432",
  }

  it("matches exact names case-insensitively, ignoring a final dot", function()
    assert.equal("10.0.0.1:443", route{ proto = "tls", sni = "APP.example.com." })
  end)
  it("prefers the longest wildcard suffix", function()
    assert.equal("10.0.0.2:443", route{ proto = "tls", sni = "x.example.com" })
    assert.equal("10.0.0.3:443", route{ proto = "tls", sni = "a.b.eu.example.com" })
  end)
  it("does not let a wildcard match the bare domain", function()
    local up, why = route{ proto = "tls", sni = "example.com" }
    assert.is_nil(up)
    assert.equal('no route for tls name "example.com"', why)
  end)
  it("ignores the port in an HTTP Host", function()
    assert.equal("10.0.0.4:80", route{ proto = "http", host = "app.example.com:8080" })
  end)
  it("uses '*' for any other name and for none", function()
    assert.equal("10.0.0.5:80", route{ proto = "http", host = "other" })
    assert.equal("10.0.0.5:80", route{ proto = "http" })
  end)
  it("routes a whole protocol to one upstream", function()
    assert.equal("10.0.0.6:5432", route{ proto = "postgresql" })
  end)
  it("refuses a protocol it has no entry for", function()
    local up, why = route{ proto = "ssh" }
    assert.is_nil(up)
    assert.equal("no route for protocol ssh", why)
  end)
  it("rejects bad tables with the entry named", function()
    assert.has_error(function() route_table{ tls = { ["a.b"] = "nowhere" } } end)
    local ok, err = pcall(route_table, { tls = { ["a.*.b"] = "1.2.3.4:1" } })
    assert.is_false(ok)
    assert.matches([[tls%["a%.%*%.b"%]: '%*' is allowed only]], err)
    ok, err = pcall(route_table, { http = 5 })
    assert.is_false(ok)
    assert.matches("http: expected an upstream string or a table of names, got number", err)
  end)
end)

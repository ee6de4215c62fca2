-- examples/router.lua — one public port, many services, chosen by what the
-- client speaks: TLS by SNI (the router holds no certificate), HTTP by Host,
-- PostgreSQL and SSH by their first bytes, plus a custom Redis matcher.
--
--   tunnel run examples/router.lua
--
-- Ports and upstreams come from the environment so the same script runs in
-- tests and on a laptop; edit the table below for a real deployment.

local tunnel = require "tunnel"
local route_table = require "policies.route_table"

local env = function(name, default) return os.getenv(name) or default end

-- Redis speaks RESP: "*<n>\r\n$<len>\r\n<command>..." ; inline "PING\r\n" too.
tunnel.sniffer{
  name = "redis",
  match = function(bytes)
    if #bytes < 1 then return nil end
    if bytes:sub(1, 1) == "*" then
      local cmd = bytes:match("^%*%d+\r\n%$%d+\r\n(%a+)\r\n")
      if cmd then return true, { command = cmd:upper() } end
      return #bytes < 64 and nil or false   -- need the first bulk string
    end
    return false
  end,
}

tunnel.listen{
  name = "public",
  addr = env("ROUTER_ADDR", "127.0.0.1:8443"),
  sniff = { bytes = 16384, timeout = 5 },
  route = route_table{
    tls = {
      ["app.example.com"] = env("TLS_APP", "127.0.0.1:9443"),
      ["*.example.com"] = env("TLS_WILDCARD", "127.0.0.1:9444"),
    },
    http = {
      ["app.example.com"] = env("HTTP_APP", "127.0.0.1:8081"),
      ["api.example.com"] = env("HTTP_API", "127.0.0.1:8082"),
    },
    postgresql = env("PG_UPSTREAM", "127.0.0.1:5432"),
    ssh = env("SSH_UPSTREAM", "127.0.0.1:22"),
    redis = env("REDIS_UPSTREAM", "127.0.0.1:6379"),
  },
}

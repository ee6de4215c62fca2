#!/usr/bin/env luajit
--[[
make-seeds.lua — write the seed corpora of the sniffer and PROXY fuzzers from
the real captures in tests/vectors/ (plus a few hand-made inputs).

  luajit tests/fuzz/seeds/make-seeds.lua tests/vectors tests/fuzz/seeds

One directory per harness (tests/fuzz/seeds/fuzz_<name>/), one binary file per
seed; tests/run-fuzz copies them into the working corpus. Re-running rewrites
the same files.
]]

local cjson = require "cjson"

local vectors, out = arg[1] or "tests/vectors", arg[2] or "tests/fuzz/seeds"

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local doc = cjson.decode(f:read("*a"))
  f:close()
  return doc
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function write(dir, name, bytes)
  os.execute("mkdir -p '" .. out .. "/" .. dir .. "'")
  local f = assert(io.open(out .. "/" .. dir .. "/" .. name, "wb"))
  f:write(bytes)
  f:close()
end

-- The handshake message of a one-record TLS capture, re-framed into records of n bytes.
local function reframe(rec, n)
  local hs, parts = rec:sub(6), {}
  for i = 1, #hs, n do
    local chunk = hs:sub(i, i + n - 1)
    parts[#parts + 1] = "\22\3\1" .. string.char(math.floor(#chunk / 256), #chunk % 256) .. chunk
  end
  return table.concat(parts)
end

local first = read_json(vectors .. "/first-bytes-captures.json").captures
local by = {}
for _, c in ipairs(first) do
  local b = unhex(c.hex)
  if c.name:find("^TLS") then
    by.tls = by.tls or {}
    by.tls[#by.tls + 1] = b
  elseif c.name:find("HTTP/2") then by.h2 = b
  elseif c.name:find("SSH") then by.ssh = b
  elseif c.name:find("psql") then by.pg = b
  end
end

local http = {
  "GET /api/v1?x=1 HTTP/1.1\r\nHost: app.example:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  "POST /x HTTP/1.0\nhost: b\n\n",
}

for i, b in ipairs(by.tls) do
  write("fuzz_sniff_tls", "capture-" .. i, b)
  write("fuzz_sniff_builtin", "tls-" .. i, b)
end
write("fuzz_sniff_tls", "reframed-100", reframe(by.tls[1], 100))
write("fuzz_sniff_tls", "reframed-7", reframe(by.tls[2], 7))

for i, b in ipairs(http) do
  write("fuzz_sniff_http1", "request-" .. i, b)
end
write("fuzz_sniff_builtin", "http-1", http[1])

write("fuzz_sniff_http2", "curl-prior-knowledge", by.h2)
write("fuzz_sniff_builtin", "http2", by.h2)

write("fuzz_sniff_pg", "psql-sslrequest", by.pg)
write("fuzz_sniff_pg", "psql-startup", by.pg:sub(9))
write("fuzz_sniff_pg", "cancel", "\0\0\0\16\4\210\22\46\0\0\48\57\222\173\190\239")
write("fuzz_sniff_pg", "gssenc", "\0\0\0\8\4\210\22\48")
write("fuzz_sniff_builtin", "postgresql", by.pg)

write("fuzz_sniff_ssh", "openssh-9.2", by.ssh)
write("fuzz_sniff_ssh", "ssh-1.99", "SSH-1.99-OpenSSH_3.9\n")
write("fuzz_sniff_builtin", "ssh", by.ssh)

for i, c in ipairs(read_json(vectors .. "/proxy-protocol-haproxy-captures.json").captures) do
  write("fuzz_proxy", "haproxy-" .. i, unhex(c.header_hex) .. c.followed_by)
end
write("fuzz_proxy", "v1-tcp6", "PROXY TCP6 2001:db8::1 ::1 65535 0\r\nGET")
write("fuzz_proxy", "v1-unknown", "PROXY UNKNOWN\r\n")
write("fuzz_proxy", "v2-local", "\r\n\r\n\0\r\nQUIT\n\32\0\0\0")

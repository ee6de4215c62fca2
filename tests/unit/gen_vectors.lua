#!/usr/bin/env luajit
--[[
gen_vectors.lua — turn the JSON captures in tests/vectors/ into one C header.

  luajit tests/unit/gen_vectors.lua tests/vectors > build/gen/vectors.h

Naming scheme (stable: the unit tests depend on it). A vectors file
"some-name.json" listed in FILES below becomes

    struct vec_some_name { <members> };
    static const struct vec_some_name vec_some_name[] VEC_UNUSED = { ... };
    enum { vec_some_name_count = N };

one element per row that the file's rows() function returns, members in the
order of its schema. Member kinds:

    "bytes"  a hex string in the JSON, emitted as three members:
               const uint8_t *<f>;  size_t <f>_len;  const char *<f>_hex;
             (the bytes live in their own static array, exactly <f>_len long)
    "str"    const char *<f>       (NULL when the row has no value)
    "int"    long <f>              (0 when the row has no value)

Adding a file (e.g. the yamux frames): add an entry to FILES with the file name,
its schema, and rows(doc) that flattens the decoded JSON into a list of tables
keyed by field name. Files not listed are ignored. Output is deterministic.
]]

local cjson = require "cjson"

local FILES = {
  {
    file = "first-bytes-captures.json",
    -- A client's first bytes: TLS ClientHellos, HTTP/2 preface, SSH banner, PostgreSQL.
    schema = { { "name", "str" }, { "bytes", "bytes" }, { "ascii_prefix", "str" } },
    rows = function(doc)
      local out = {}
      for _, c in ipairs(doc.captures) do
        out[#out + 1] = { name = c.name, bytes = c.hex, ascii_prefix = c.ascii_prefix }
      end
      return out
    end,
  },
  {
    file = "proxy-protocol-haproxy-captures.json",
    -- PROXY protocol v1/v2 headers written by haproxy, each followed on the wire by
    -- `followed_by`; src/dst are the addresses the header carries.
    schema = {
      { "name", "str" }, { "bytes", "bytes" }, { "header_len", "int" },
      { "src_addr", "str" }, { "src_port", "int" },
      { "dst_addr", "str" }, { "dst_port", "int" },
      { "followed_by", "str" },
    },
    rows = function(doc)
      local out = {}
      for _, c in ipairs(doc.captures) do
        out[#out + 1] = {
          name = c.name, bytes = c.header_hex, header_len = c.header_len,
          src_addr = c.client_src[1], src_port = c.client_src[2],
          dst_addr = c.frontend_dst[1], dst_port = c.frontend_dst[2],
          followed_by = c.followed_by,
        }
      end
      return out
    end,
  },
}

local function die(fmt, ...)
  io.stderr:write("gen_vectors: ", string.format(fmt, ...), "\n")
  os.exit(1)
end

-- "first-bytes-captures.json" -> "vec_first_bytes_captures"
local function c_name(file)
  return "vec_" .. file:gsub("%.json$", ""):gsub("[^%w]", "_"):lower()
end

-- A C string literal; octal escapes (never more than 3 digits, so never greedy).
local function c_string(s)
  if s == nil or s == cjson.null then return "NULL" end
  s = tostring(s)
  return '"' .. s:gsub('[^%w %.,:;=/_%-%+%(%)%[%]{}<>!#%%&*|~@^`\']', function(ch)
    return string.format("\\%03o", ch:byte())
  end) .. '"'
end

local function c_bytes(hex, where)
  if type(hex) ~= "string" or #hex % 2 ~= 0 or hex:find("[^%x]") then
    die("%s: not an even-length hex string", where)
  end
  local parts = {}
  for i = 1, #hex, 2 do
    parts[#parts + 1] = "0x" .. hex:sub(i, i + 1):lower()
  end
  return parts
end

local function read_json(path)
  local f, err = io.open(path, "rb")
  if not f then die("%s", err) end
  local text = f:read("*a")
  f:close()
  local ok, doc = pcall(cjson.decode, text)
  if not ok then die("%s: %s", path, doc) end
  return doc
end

local function emit_struct(out, name, schema)
  local seen = {}
  local function member(m)
    if seen[m] then die("%s: member %s defined twice (a bytes field adds _len and _hex)", name, m) end
    seen[m] = true
  end
  out[#out + 1] = "struct " .. name .. " {"
  for _, f in ipairs(schema) do
    local field, kind = f[1], f[2]
    member(field)
    if kind == "bytes" then member(field .. "_len"); member(field .. "_hex") end
    if kind == "bytes" then
      out[#out + 1] = "    const uint8_t *" .. field .. ";"
      out[#out + 1] = "    size_t " .. field .. "_len;"
      out[#out + 1] = "    const char *" .. field .. "_hex;"
    elseif kind == "str" then
      out[#out + 1] = "    const char *" .. field .. ";"
    elseif kind == "int" then
      out[#out + 1] = "    long " .. field .. ";"
    else
      die("%s: unknown kind %s for %s", name, tostring(kind), field)
    end
  end
  out[#out + 1] = "};"
end

local function emit_file(out, dir, spec)
  local name = c_name(spec.file)
  local rows = spec.rows(read_json(dir .. "/" .. spec.file))
  out[#out + 1] = "/* " .. spec.file .. " */"
  emit_struct(out, name, spec.schema)
  -- the byte arrays, one per row and bytes field
  for i, row in ipairs(rows) do
    for _, f in ipairs(spec.schema) do
      if f[2] == "bytes" then
        local where = string.format("%s[%d].%s", spec.file, i - 1, f[1])
        local b = c_bytes(row[f[1]] or "", where)
        if #b == 0 then b = { "0" } end
        out[#out + 1] = string.format("static const uint8_t %s_%d_%s[] VEC_UNUSED = {", name, i - 1, f[1])
        for k = 1, #b, 16 do
          out[#out + 1] = "    " .. table.concat(b, ", ", k, math.min(k + 15, #b)) .. ","
        end
        out[#out + 1] = "};"
      end
    end
  end
  out[#out + 1] = string.format("static const struct %s %s[] VEC_UNUSED = {", name, name)
  for i, row in ipairs(rows) do
    out[#out + 1] = "    {"
    for _, f in ipairs(spec.schema) do
      local field, kind, v = f[1], f[2], row[f[1]]
      if kind == "bytes" then
        out[#out + 1] = string.format("        .%s = %s_%d_%s, .%s_len = %d, .%s_hex = %s,",
          field, name, i - 1, field, field, #(v or "") / 2, field, c_string(v or ""))
      elseif kind == "str" then
        out[#out + 1] = string.format("        .%s = %s,", field, c_string(v))
      else
        if v ~= nil and v ~= cjson.null and type(v) ~= "number" then
          die("%s[%d].%s: not a number", spec.file, i - 1, field)
        end
        out[#out + 1] = string.format("        .%s = %d,", field, (v ~= cjson.null and v) or 0)
      end
    end
    out[#out + 1] = "    },"
  end
  out[#out + 1] = "};"
  out[#out + 1] = string.format("enum { %s_count = %d };", name, #rows)
  out[#out + 1] = ""
end

local dir = arg[1] or die("usage: luajit gen_vectors.lua VECTORS_DIR > vectors.h")
local out = {
  "/* vectors.h — generated by tests/unit/gen_vectors.lua from the JSON files in " .. dir .. ".",
  " * Do not edit; see the script's header for the naming scheme. */",
  "#ifndef TNL_VECTORS_H",
  "#define TNL_VECTORS_H",
  "",
  "#include <stddef.h>",
  "#include <stdint.h>",
  "",
  "/* A test includes this header and uses only some of the arrays. */",
  "#define VEC_UNUSED __attribute__((unused))",
  "",
}
for _, spec in ipairs(FILES) do
  emit_file(out, dir, spec)
end
out[#out + 1] = "#endif"
io.write(table.concat(out, "\n"), "\n")

-- luacheck configuration: LuaJIT, no globals anywhere.
std = "luajit"
max_line_length = 140
codes = true

files["spec"] = { std = "+busted" }
files["spec/helpers"] = { std = "luajit" }
exclude_files = { "**/node_modules/**", "build*/**" }

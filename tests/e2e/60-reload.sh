#!/bin/bash
# 60-reload — SIGHUP reloads while requests keep flowing: none of them fail,
# each reload is logged, connections accepted after a reload follow the new
# script (Host -> backend swapped, a listener added, another removed), a broken
# script leaves the running one in force and the log says why, and
# `tunnel run --watch` reloads when the file changes.
. "$(dirname "$0")/lib.sh"

P_A=$(free_port); P_B=$(free_port)
P_MAIN=$(free_port); P_EXTRA=$(free_port); P_ADDED=$(free_port); P_W=$(free_port)
start_http web-a "$P_A" "A" || bail "nginx A"
start_http web-b "$P_B" "B" || bail "nginx B"
head -c $((8 * 1024 * 1024)) /dev/urandom > "$WORK/web-a/www/8m.bin"

SCRIPT=$WORK/router.lua
# gen VERSION APP-PORT LISTENER: the script with app.test -> APP-PORT and the
# second listener either "extra" (on P_EXTRA) or "added" (on P_ADDED).
gen() {
  local second
  if [ "$3" = extra ]; then
    second="tunnel.listen{ name = \"extra\", addr = \"127.0.0.1:$P_EXTRA\", route = route }"
  else
    second="tunnel.listen{ name = \"added\", addr = \"127.0.0.1:$P_ADDED\", route = route }"
  fi
  cat > "$SCRIPT.tmp" <<EOF
-- version $1
local tunnel = require "tunnel"
local route_table = require "policies.route_table"
local route = route_table{
  http = { ["app.test"] = "127.0.0.1:$2", ["a.test"] = "127.0.0.1:$P_A" },
}
tunnel.listen{ name = "main", addr = "127.0.0.1:$P_MAIN", route = route }
$second
EOF
  mv "$SCRIPT.tmp" "$SCRIPT"
}

# probe PORT: which backend answers app.test on PORT ("A", "B", or curl's error).
probe() {
  curl -sS --max-time 5 -H 'Host: app.test' "http://127.0.0.1:$1/" 2>&1 | head -c 200
}
# refused PORT: nothing accepts connections there.
refused() {
  curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$1/"
  [ $? -eq 7 ]
}

LOG=$WORK/router.log
gen v1 "$P_A" extra
start_tunnel router "$SCRIPT" || bail "the router did not start"
expect_eq "v1: app.test -> A" "A" "$(probe "$P_MAIN")"
expect_eq "v1: the extra listener serves" "A" "$(probe "$P_EXTRA")"
check "v1: nothing listens on the port of the listener v2 adds" refused "$P_ADDED"

# --- load: one sequential stream and two parallel ones --------------------
# Each curl run makes 20 requests, one connection each (Connection: close),
# and prints "<backend> <http code> <curl exit code>" per request.
load() {
  local url="http://127.0.0.1:$P_MAIN/" urls=() i
  for i in $(seq 20); do urls+=("$url"); done
  while [ ! -e "$WORK/stop" ]; do
    curl -sS --max-time 10 -H 'Host: app.test' -H 'Connection: close' \
      -w ' %{http_code} %{exitcode}\n' "${urls[@]}"
  done
}
export -f load
export P_MAIN WORK
start seq bash -c load
start par1 bash -c load
start par2 bash -c load
nreq() { cat "$WORK/$1.log" 2>/dev/null | wc -l; }
atleast() { [ "$(nreq "$1")" -ge "$2" ]; }
wait_until 30 atleast seq 50 || bail "the request stream did not start" "$(tail "$WORK/seq.log")"

# reload_to VERSION APP-PORT LISTENER: write that version, SIGHUP, wait for
# the log's "reload ok", then let the streams run a while under it.
# (wait_until evaluates its arguments once: helpers re-count each time.)
reloads_more_than() { [ "$(jcount "$LOG" event=reload ok=true)" -gt "$1" ]; }
reload_to() {
  local before n
  before=$(jcount "$LOG" event=reload ok=true)
  gen "$1" "$2" "$3"
  signal router HUP
  if wait_until 10 reloads_more_than "$before"; then
    ok "$1: SIGHUP -> the log says reload ok"
  else
    not_ok "$1: SIGHUP -> the log says reload ok" "$(jlines "$LOG" event=reload | tail -n 3)"
  fi
  n=$(nreq seq)
  wait_until 20 atleast seq $((n + 60))
}

# A slow download through the extra listener, in flight across the reload
# that removes that listener (and swaps the backends).
start dlx curl -sS --max-time 60 --limit-rate 4M -H 'Host: a.test' -o "$WORK/dlx.bin" \
  "http://127.0.0.1:$P_EXTRA/8m.bin"
size_at_least() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
wait_until 10 size_at_least "$WORK/dlx.bin" 262144 || diag "the download through 'extra' did not start"

reload_to v2 "$P_B" added
expect_eq "v2: app.test now -> B" "B" "$(probe "$P_MAIN")"
expect_eq "v2: the added listener accepts and routes" "B" "$(probe "$P_ADDED")"
check "v2: the removed listener refuses connections" refused "$P_EXTRA"
check "v2: the log says the extra listener was closed" jhas "$LOG" event=listen_close listener=extra
wait_exit dlx 30
expect_eq "v2: a download in flight through the removed listener completed" 0 "$EXIT_CODE"
expect_eq "... intact" "$(sha256sum < "$WORK/web-a/www/8m.bin")" "$(sha256sum < "$WORK/dlx.bin")"

reload_to v3 "$P_A" extra
expect_eq "v3: app.test back to A" "A" "$(probe "$P_MAIN")"
expect_eq "v3: the extra listener is back" "A" "$(probe "$P_EXTRA")"
check "v3: the added listener is gone again" refused "$P_ADDED"

reload_to v4 "$P_B" added
expect_eq "v4: app.test -> B" "B" "$(probe "$P_MAIN")"

# A script with a syntax error: reload fails, v4 stays in force.
fails_more_than() { [ "$(jcount "$LOG" event=reload ok=false)" -gt "$1" ]; }
before=$(jcount "$LOG" event=reload ok=false)
cp "$SCRIPT" "$WORK/v4.lua"
printf 'local tunnel = require "tunnel"\ntunnel.listen{ addr = "127.0.0.1:%s", route = function(conn) return "x" end\n' \
  "$P_MAIN" > "$SCRIPT"
signal router HUP
if wait_until 10 fails_more_than "$before"; then
  err=$(jlast "$LOG" error event=reload ok=false)
  expect_match "syntax error: the failed reload names the file and line" 'router\.lua:[0-9]+' "$err"
else
  not_ok "syntax error: the log has a failed reload" "$(jlines "$LOG" event=reload | tail -n 3)"
fi
expect_eq "syntax error: app.test still -> B (old script in force)" "B" "$(probe "$P_MAIN")"
expect_eq "syntax error: the added listener still serves" "B" "$(probe "$P_ADDED")"

# A listen{} with an unknown option key: reload fails naming the key.
before=$(jcount "$LOG" event=reload ok=false)
sed 's/tunnel.listen{ name = "main",/tunnel.listen{ bogus_option = 1, name = "main",/' "$WORK/v4.lua" > "$SCRIPT"
grep -q bogus_option "$SCRIPT" || bail "could not write the broken script"
signal router HUP
if wait_until 10 fails_more_than "$before"; then
  err=$(jlast "$LOG" error event=reload ok=false)
  expect_match "unknown key: the failed reload names the key" 'bogus_option' "$err"
else
  not_ok "unknown key: the log has a failed reload" "$(jlines "$LOG" event=reload | tail -n 3)"
fi
expect_eq "unknown key: app.test still -> B" "B" "$(probe "$P_MAIN")"
check "unknown key: the extra listener was not re-opened" refused "$P_EXTRA"

# A new listener on a port someone else holds: the commit fails as a whole
# (transactional), the running listeners and routes stay as they were.
P_TAKEN=$(free_port)
pyserver squatter banner "$P_TAKEN" squatter || bail "squatter"
before=$(jcount "$LOG" event=reload ok=false)
{ cat "$WORK/v4.lua"; printf 'tunnel.listen{ name = "taken", addr = "127.0.0.1:%s", route = route }\n' "$P_TAKEN"; } > "$SCRIPT"
sed -i 's/\["app.test"\] = "127.0.0.1:[0-9]*"/["app.test"] = "127.0.0.1:'"$P_A"'"/' "$SCRIPT"
signal router HUP
if wait_until 10 fails_more_than "$before"; then
  err=$(jlast "$LOG" error event=reload ok=false)
  expect_match "port in use: the failed reload names the address" "127\\.0\\.0\\.1:$P_TAKEN" "$err"
else
  not_ok "port in use: the log has a failed reload" "$(jlines "$LOG" event=reload | tail -n 3)"
fi
expect_eq "port in use: the route change in that script was not applied (app.test still -> B)" "B" "$(probe "$P_MAIN")"
expect_eq "port in use: the added listener still serves" "B" "$(probe "$P_ADDED")"
stop squatter

# The fixed script loads again.
reload_to v5 "$P_A" added
expect_eq "v5 (after the failures): app.test -> A" "A" "$(probe "$P_MAIN")"

# --- the streams ------------------------------------------------------------
touch "$WORK/stop"
for l in seq par1 par2; do wait_exit "$l" 30 || stop "$l"; done
total=$(cat "$WORK"/seq.log "$WORK"/par1.log "$WORK"/par2.log | wc -l)
nseq=$(nreq seq)
expect_between "requests made during the reloads (sequential stream)" 300 100000000 "$nseq"
bad=$(cat "$WORK"/seq.log "$WORK"/par1.log "$WORK"/par2.log | grep -cvE '^[AB] 200 0$')
expect_eq "none of the $total requests failed (every answer 200 from A or B)" 0 "$bad"
[ "$bad" = 0 ] || diag "$(cat "$WORK"/seq.log "$WORK"/par1.log "$WORK"/par2.log | grep -vE '^[AB] 200 0$' | sort | uniq -c | head)"
expect_match "the sequential stream saw both backends" 'A 200 0.*B 200 0|B 200 0.*A 200 0' "$(sort -u "$WORK/seq.log")"

# Every connection follows the script that was in force when it was accepted:
# walk the log in order (reload ok lines switch the expected backend).
check "every app.test connection went to the backend of the script in force at accept time" \
  "$PY" - "$LOG" "$P_A" "$P_B" "$P_A" "$P_B" "$P_A" <<'EOF'
import json, sys
log, expected = sys.argv[1], sys.argv[2:]
gen = 0                # index into expected: one step per successful reload
at_accept, bad, n = {}, [], 0
for line in open(log):
    if not line.startswith("{"): continue
    o = json.loads(line)
    ev = o.get("event")
    if ev == "reload" and o.get("ok") is True:
        gen += 1
    elif ev == "accept" and o.get("listener") == "main":
        at_accept[o["conn"]] = gen
    elif ev == "route" and o.get("host") == "app.test" and o["conn"] in at_accept:
        n += 1
        want = "127.0.0.1:" + expected[at_accept[o["conn"]]]
        if o.get("upstream") != want:
            bad.append("conn %s accepted under version %d went to %s, want %s"
                       % (o["conn"], at_accept[o["conn"]] + 1, o.get("upstream"), want))
if gen != len(expected) - 1:
    sys.exit("saw %d successful reloads, expected %d" % (gen, len(expected) - 1))
if bad or n < 300:
    sys.exit("%d routed, %d wrong:\n%s" % (n, len(bad), "\n".join(bad[:10])))
EOF

stop router
expect_eq "the router exits 0 on SIGTERM after the reloads" 0 "$EXIT_CODE"

# --- tunnel run --watch -------------------------------------------------------
WS=$WORK/watched.lua
wgen() {  # wgen APP-PORT [COMMENT]: the watched script
  cat <<EOF
-- watched script ${2:-}
local tunnel = require "tunnel"
tunnel.listen{ name = "w", addr = "127.0.0.1:$P_W", route = function(conn)
  if conn.host == "app.test" then return "127.0.0.1:$1" end
  return nil, "unknown host"
end }
EOF
}
wgen "$P_A" > "$WS"
start_tunnel watcher --watch "$WS" || bail "tunnel run --watch did not start"
WLOG=$WORK/watcher.log
expect_eq "--watch: app.test -> A at start" "A" "$(probe "$P_W")"
wreloads() { [ "$(jcount "$WLOG" event=reload ok=true)" -ge "$1" ]; }

# An edit in place (as `cat > file` or an editor that truncates and writes).
wgen "$P_B" "(edited in place)" > "$WS"
if wait_until 10 wreloads 1; then ok "--watch: an in-place edit is reloaded (log: reload ok)"
else not_ok "--watch: an in-place edit is reloaded (log: reload ok)" "$(tail -n 5 "$WLOG")"; fi
expect_eq "--watch: app.test -> B after the edit" "B" "$(probe "$P_W")"

# An atomic replace (write a new file, rename it over the old one).
wgen "$P_A" "(replaced by rename)" > "$WS.new" && mv "$WS.new" "$WS"
if wait_until 10 wreloads 2; then ok "--watch: a file replaced by rename is reloaded"
else not_ok "--watch: a file replaced by rename is reloaded" "$(tail -n 5 "$WLOG")"; fi
expect_eq "--watch: app.test -> A after the rename" "A" "$(probe "$P_W")"

# A broken edit under --watch keeps the running script.
printf 'this is not lua\n' > "$WS"
if wait_until 10 jhas "$WLOG" event=reload ok=false; then ok "--watch: a broken edit is reported (reload ok=false)"
else not_ok "--watch: a broken edit is reported (reload ok=false)" "$(tail -n 5 "$WLOG")"; fi
expect_eq "--watch: the running script stays in force" "A" "$(probe "$P_W")"

stop watcher
expect_eq "--watch: exits 0 on SIGTERM" 0 "$EXIT_CODE"

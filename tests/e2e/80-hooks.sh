#!/bin/bash
# 80-hooks — hook safety with the real binary. Route hooks that raise, loop
# forever, return a number or a bad string fail closed (HTTP 502) and are
# logged as hook_error with the hook's name, the script's file:line and the
# message; nil, "reason" is a plain refusal (404). Only that connection is
# refused: other requests, even one in flight, carry on. A Lua sniffer
# routes a custom line protocol and, returning nil, waits for more bytes.
# `tunnel run --check` lists the listeners without binding, and names an
# unknown option key.
. "$(dirname "$0")/lib.sh"

P_OK=$(free_port); P_HELLO=$(free_port); P_R=$(free_port)
start_http web "$P_OK" "ok backend" || bail "nginx"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$WORK/web/www/4m.bin"
pyserver hello hello "$P_HELLO" hello-backend || bail "hello server"

SCRIPT=$WORK/router.lua
write_script "$SCRIPT" <<EOF
local tunnel = require "tunnel"

-- "hello WHO\\r\\n": nil (need more) while the bytes are a prefix of it.
tunnel.sniffer{
  name = "hello",
  match = function(bytes)
    local head = ("hello "):sub(1, #bytes)
    if bytes:sub(1, #head) ~= head then return false end
    local who = bytes:match("^hello ([^\\r\\n]*)\\r\\n")
    if not who then return nil end
    return true, { who = who }
  end,
}
tunnel.sniffer{
  name = "crash",
  match = function(bytes)
    if bytes:sub(1, 5) == "crash" then error("sniffer exploded") end -- LINE_SNIFFER_RAISE
    return false
  end,
}

local OK = "127.0.0.1:$P_OK"
local function route(conn)
  if conn.proto == "hello" then
    tunnel.log("info", "hello_route", { who = conn.fields.who })
    return "127.0.0.1:$P_HELLO"
  end
  local h = conn.host
  if h == "raise.test" then error("boom from the route hook") end -- LINE_RAISE
  if h == "loop.test" then while true do end end -- LINE_LOOP
  if h == "number.test" then return 42 end
  if h == "badaddr.test" then return "not an address" end
  if h == "nilreason.test" then return nil, "closed for maintenance" end
  if h == "sleep.test" then tunnel.sleep(1); return OK end
  return OK
end

tunnel.listen{ name = "hooks", addr = "127.0.0.1:$P_R", route = route }
EOF
line_of() { grep -n -- "-- $1\$" "$SCRIPT" | cut -d: -f1; }
L_RAISE=$(line_of LINE_RAISE); L_LOOP=$(line_of LINE_LOOP); L_SNIFF=$(line_of LINE_SNIFFER_RAISE)

# --- tunnel run --check -------------------------------------------------------
out=$("$TUNNEL" run --check "$SCRIPT" 2>&1); rc=$?
expect_eq "--check: exits 0 on a good script" 0 "$rc"
expect_match "--check: prints the listener (name and address)" "hooks +127\\.0\\.0\\.1:$P_R" "$out"
expect_match "--check: prints the Lua sniffers" 'sniffer hello.*sniffer crash' "$out"
check "--check: did not bind the port (it stays free)" port_closed "$P_R"

# With the port taken by someone else, --check still passes: it binds nothing.
pyserver squatter banner "$P_R" squatter || bail "squatter"
out=$("$TUNNEL" run --check "$SCRIPT" 2>&1); rc=$?
expect_eq "--check: passes while another process holds the port" 0 "$rc"
# ... while running it for real there fails, naming the address.
out=$(timeout 10 "$TUNNEL" run "$SCRIPT" 2>&1); rc=$?
expect_match "run on a port in use exits non-zero, naming the address" "^[1-9][0-9]*:.*127\\.0\\.0\\.1:$P_R" "$rc:$out"
stop squatter
wait_until 5 port_closed "$P_R"

sed 's/tunnel.listen{ name = "hooks",/tunnel.listen{ name = "hooks", routes = 1,/' "$SCRIPT" > "$WORK/badkey.lua"
out=$("$TUNNEL" run --check "$WORK/badkey.lua" 2>&1); rc=$?
expect_match "--check: an unknown listen{} key exits non-zero" '^[1-9]' "$rc"
expect_match "--check: ... and names the key" "'routes'" "$out"
printf 'local tunnel = require "tunnel"\ntunnel.listen{ addr = "127.0.0.1:%s", route = function() end, sniff = { tiemout = 1 } }\n' \
  "$P_R" > "$WORK/badsub.lua"
out=$("$TUNNEL" run --check "$WORK/badsub.lua" 2>&1); rc=$?
expect_match "--check: an unknown sniff{} key exits non-zero" '^[1-9]' "$rc"
expect_match "--check: ... and names it as sniff.tiemout" "sniff\\.tiemout" "$out"
printf 'local tunnel = require "tunnel"\ntunnel.config{ log_levle = "debug" }\n' > "$WORK/badcfg.lua"
out=$("$TUNNEL" run --check "$WORK/badcfg.lua" 2>&1); rc=$?
expect_match "--check: an unknown config{} key exits non-zero, naming it" "^[1-9][0-9]*:.*log_levle" "$rc:$out"

# --- the running router -------------------------------------------------------
start_tunnel router "$SCRIPT" || bail "the router did not start"
LOG=$WORK/router.log
URL=http://127.0.0.1:$P_R/
code() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "Host: $1" "$URL"; }
ok_now() { [ "$(curl -s --max-time 5 -H 'Host: ok.test' "$URL")" = "ok backend" ]; }
errors() { jcount "$LOG" event=hook_error; }

# A slow download in flight while the hooks fail around it.
start dl curl -sS --max-time 30 --limit-rate 3M -H 'Host: ok.test' -o "$WORK/dl" "${URL}4m.bin"

expect_eq "a route hook that raises: 502" 502 "$(code raise.test)"
expect_match "... its hook_error names the hook, the script's file:line and the message" \
  "\"hook\":\"route\".*router\\.lua:$L_RAISE\\b.*boom from the route hook" \
  "$(jlines "$LOG" event=hook_error "error~boom")"
check "... and the next request is served right after" ok_now

t0=$(now)
c=$(code loop.test)
took=$(elapsed "$t0")
expect_eq "a route hook that loops forever: 502" 502 "$c"
expect_between "... cut by the hook budget (default 0.1 s / 1e6 instructions; s)" 0 1.5 "$took"
expect_match "... its hook_error (hook route) says budget, at the loop's file:line" \
  "\"hook\":\"route\".*router\\.lua:$L_LOOP\\b.*budget" "$(jlines "$LOG" event=hook_error "error~budget")"
check "... and the next request is served right after" ok_now

n=$(errors)
expect_eq "a route hook that returns a number: 502" 502 "$(code number.test)"
expect_match "... logged as hook_error naming the bad shape and the route function's file:line" \
  "^route\\|.*router\\.lua:[0-9]+\\|.*number" \
  "$(jlast "$LOG" hook event=hook_error)|$(jlast "$LOG" function event=hook_error)|$(jlast "$LOG" error event=hook_error)"
check "... one new hook_error line" test "$(errors)" -eq $((n + 1))
check "... and the next request is served right after" ok_now

expect_eq "a route hook that returns a string that is no address: 502" 502 "$(code badaddr.test)"
expect_match "... logged as hook_error quoting it" 'not an address' "$(jlast "$LOG" error event=hook_error)"

n=$(errors)
out=$(curl -s --max-time 10 -w ' %{http_code}' -H 'Host: nilreason.test' "$URL")
expect_match "a route hook that returns nil, reason: 404" ' 404$' "$out"
check "... which is no hook error" test "$(errors)" -eq "$n"
check "... and the reject line carries the reason" jhas "$LOG" event=reject "reason~closed for maintenance"
check "... and the next request is served right after" ok_now

# A hook parked in tunnel.sleep does not hold up the others.
start slow curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Host: sleep.test' "$URL"
wait_jlog "$LOG" 5 event=accept "conn~." >/dev/null
t0=$(now)
ok_now; fast_rc=$?
took=$(elapsed "$t0")
expect_between "while one route hook sleeps 1 s, another request is answered at once (s)" 0 0.5 "$took"
expect_eq "... (and it succeeded)" 0 "$fast_rc"
wait_exit slow 10
expect_eq "the sleeping hook's request completes (200)" "0 200" "$EXIT_CODE $(cat "$WORK/slow.log")"

# A client that gives up while its route hook sleeps.
curl -s --max-time 0.3 -o /dev/null -H 'Host: sleep.test' "$URL"
wait_until 3 jhas "$LOG" event=close "upstream=127.0.0.1:$P_OK" "duration~^1\\."
check "a client that left while its hook slept: the router goes on serving" ok_now

wait_exit dl 30
expect_eq "the download in flight during the hook failures completed" 0 "$EXIT_CODE"
expect_eq "... intact" "$(sha256sum < "$WORK/web/www/4m.bin")" "$(sha256sum < "$WORK/dl")"

# --- a Lua sniffer ----------------------------------------------------------------
res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'hello bob\r\n')" --max 5)
expect_eq "a Lua sniffer routes its protocol to its backend" "hi bob from hello-backend" \
  "$(jget "$res" reply | tr -d '\r\n')"
check "the route hook saw conn.proto = hello and the sniffer's fields (who = bob)" \
  jhas "$LOG" event=hello_route who=bob

res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'hel')" --pause 0.4 "$(tohex 'lo alice\r\n')" --max 5)
expect_eq "a sniffer returning nil waits for more bytes (sent in two pieces 0.4 s apart)" \
  "hi alice from hello-backend" "$(jget "$res" reply | tr -d '\r\n')"
res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'hello carol')" --pause 0.4 "$(tohex '\r\n')" --max 5)
expect_eq "... also when only the line end is missing" \
  "hi carol from hello-backend" "$(jget "$res" reply | tr -d '\r\n')"

n=$(errors)
res=$(pysend 127.0.0.1 "$P_R" "$(tohex 'crash now\r\n')" --max 5)
expect_eq "a sniffer that raises: that connection is closed, unanswered" "0" "$(jget "$res" reply_len)"
expect_match "... logged as hook_error for the sniffer (hook, name, file:line, message)" \
  "\"hook\":\"sniffer\".*\"name\":\"crash\".*router\\.lua:$L_SNIFF\\b.*sniffer exploded" \
  "$(jlines "$LOG" event=hook_error "error~exploded")"
check "... and the router goes on serving" ok_now

# SIGTERM twice (drain, then abort) while a route hook is parked in tunnel.sleep.
start slow2 curl -s --max-time 10 -o /dev/null -H 'Host: sleep.test' "$URL"
wait_until 5 test "$(jcount "$LOG" event=accept)" -gt "$(jcount "$LOG" event=close)"
signal router TERM
wait_jlog "$LOG" 5 event=drain
signal router TERM
wait_exit router 10
expect_eq "SIGTERM twice while a hook sleeps: the router exits 0" 0 "$EXIT_CODE"
stop slow2

#!/bin/sh
# yamux.sh BUILD_DIR — interop between our yamux (core/mux, driven by
# BUILD_DIR/tests/interop/yamux_peer) and npm @chainsafe/libp2p-yamux
# (tests/interop/yamux.mjs), over TCP on loopback, in both roles:
#   1. our server, JS client: 64 concurrent streams (160 KiB each way), 10 MB
#      each way on one stream, half-close, resets both ways, ping, GoAway;
#   2. JS server, our client: 64 concurrent streams, resets both ways, GoAway;
#   3. JS server, our client: 10 MB each way on one stream.
# Every payload is checked with SHA-256 and byte counts by the receiving side.
# Prints TAP; exits non-zero if anything failed. Installs the npm packages
# (pinned by package-lock.json) into tests/interop/node_modules if missing.
set -u
build=${1:?usage: yamux.sh BUILD_DIR}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "not ok - yamux: no build directory $1"; exit 1; }
# This directory; a runner may start us by a path relative to another cwd, so
# also try the source tree around the build directory.
here=$(cd "$(dirname "$0")" 2>/dev/null && pwd)
for d in "$here" "${TUNNEL_SRC:-}/tests/interop" "$build/../tests/interop" "$PWD/tests/interop"; do
  if [ -f "$d/yamux.mjs" ]; then here=$(cd "$d" && pwd); break; fi
done
peer=$build/tests/interop/yamux_peer
tmp=$(mktemp -d)
pids=""
fail=0
count=0

cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  for p in $pids; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

say() {         # say ok|not-ok MESSAGE
  count=$((count + 1))
  if [ "$1" = ok ]; then echo "ok - yamux: $2"; else echo "not ok - yamux: $2"; fail=1; fi
}

# Child TAP lines, renamed, plan lines dropped; counted and failures noted.
relay() {       # relay PREFIX FILE
  while IFS= read -r line; do
    case $line in
      "ok - "*) count=$((count + 1)); echo "ok - yamux: $1: ${line#ok - }" ;;
      "not ok - "*) count=$((count + 1)); fail=1; echo "not ok - yamux: $1: ${line#not ok - }" ;;
      1..*) ;;
      *) echo "# $line" ;;
    esac
  done < "$2"
}

# Wait for "listening PORT" in a log; prints the port.
port_of() {     # port_of LOG PID
  i=0
  while [ $i -lt 100 ]; do
    p=$(awk '/^listening /{print $2; exit}' "$1" 2>/dev/null)
    if [ -n "$p" ]; then echo "$p"; return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1; i=$((i + 1))
  done
  return 1
}

finish() {
  echo "1..$count"
  exit $fail
}

if [ ! -x "$peer" ]; then
  say not-ok "C peer not built: $peer"
  finish
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say not-ok "node and npm are required"
  finish
fi
if [ ! -d "$here/node_modules/@chainsafe/libp2p-yamux" ]; then
  if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1; then
    say not-ok "npm ci in tests/interop failed"
    sed 's/^/#   /' "$tmp/npm.log" | tail -20
    finish
  fi
fi
say ok "@chainsafe/libp2p-yamux $(cd "$here" && node -p "require('./node_modules/@chainsafe/libp2p-yamux/package.json').version") installed"

# 1. Our server, the JS client.
"$peer" server 0 --once >"$tmp/c-server.log" 2>&1 &
cpid=$!; pids="$pids $cpid"
if port=$(port_of "$tmp/c-server.log" $cpid); then
  (cd "$here" && timeout 120 node yamux.mjs client "127.0.0.1:$port") >"$tmp/js-client.log" 2>&1
  rc=$?
  relay "C server, JS client" "$tmp/js-client.log"
  [ $rc -eq 0 ] || say not-ok "JS client exited with status $rc"
  i=0
  while kill -0 $cpid 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 $cpid 2>/dev/null; then
    say not-ok "C server still running after its session ended"
  elif wait $cpid; then
    say ok "C server: session ended without a protocol error on our side"
  else
    say not-ok "C server exited with a failure"
    sed 's/^/#   /' "$tmp/c-server.log" | tail -20
  fi
else
  say not-ok "C server did not start"
  sed 's/^/#   /' "$tmp/c-server.log" | tail -20
fi

# 2 and 3. The JS server, our client.
js_server_run() {       # js_server_run NAME CLIENT-ARGS...
  name=$1; shift
  (cd "$here" && exec node yamux.mjs server 0 --once) >"$tmp/js-server.log" 2>&1 &
  jpid=$!; pids="$pids $jpid"
  if ! port=$(port_of "$tmp/js-server.log" $jpid); then
    say not-ok "$name: JS server did not start"
    sed 's/^/#   /' "$tmp/js-server.log" | tail -20
    return
  fi
  timeout 120 "$peer" client "127.0.0.1:$port" "$@" >"$tmp/c-client.log" 2>&1
  rc=$?
  relay "$name" "$tmp/c-client.log"
  [ $rc -eq 0 ] || say not-ok "$name: C client exited with status $rc"
  i=0
  while kill -0 $jpid 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  kill $jpid 2>/dev/null
  wait $jpid 2>/dev/null
  relay "$name" "$tmp/js-server.log"
}
js_server_run "JS server, C client, 64 streams" -n 64 -m 160K -r 160K
js_server_run "JS server, C client, one stream" -n 1 -m 10000000 -r 10000000 --no-reset

finish

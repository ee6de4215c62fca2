# tests/e2e/lib.sh — sourced by every end-to-end scenario (tests/e2e/NN-name.sh).
#
# A scenario starts the real `tunnel` binary ($TUNNEL) and real servers and
# clients on loopback, and prints TAP lines. Everything it starts goes through
# `start`, so that `stop` and the exit trap end exactly those processes, by PID.
#
#   TAP        ok DESC | not_ok DESC [DIAG...] | check DESC CMD... | skip DESC WHY
#              expect_eq DESC WANT GOT | expect_match DESC ERE TEXT | expect_between DESC LO HI X
#              diag TEXT... | bail WHY (stop the scenario; counts as a failure)
#   ports      free_port -> an unused port (v4 and v6), reserved for this scenario
#   processes  start NAME CMD... (output to $WORK/NAME.log) | stop NAME [TIMEOUT]
#              signal NAME SIG | alive NAME | wait_exit NAME [TIMEOUT] (sets EXIT_CODE)
#              pid_of NAME
#   waiting    wait_port PORT [TIMEOUT] [HOST] | wait_log FILE ERE [TIMEOUT]
#              wait_until TIMEOUT CMD...
#   JSON log   jlines FILE FILTER... | jfield FILE FIELD FILTER... | jlast FILE FIELD FILTER...
#              jcount FILE FILTER... | jhas FILE FILTER... | wait_jlog FILE TIMEOUT FILTER...
#              (FILTER: key=value exact, key~ERE regex search, key? present)
#   tunnel     write_script FILE (stdin) | start_tunnel NAME [RUN-OPTIONS] SCRIPT
#              run_tunnel [RUN-OPTIONS] SCRIPT (= start_tunnel router ...; log $WORK/router.log)
#   servers    start_http NAME PORT BODY [LISTEN] | make_ca | make_cert NAME CN SAN...
#              start_tls NAME PORT CERTNAME BODY | pyserver NAME MODE PORT [ARGS]
#   time       now | elapsed T0
#
# $WORK is a fresh directory per scenario (tests/run-e2e makes one; a scenario
# run by hand gets its own and removes it at the end).

set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
SCENARIO=$(basename "$0" .sh)
TUNNEL=${TUNNEL:-$REPO/build/tunnel}
TUNNEL=$(readlink -f "$TUNNEL")
PY=${PYTHON:-python3}

_E2E_OWN_WORK=0
if [ -z "${WORK:-}" ]; then
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/tunnel-e2e.XXXXXX")
  _E2E_OWN_WORK=1
fi
WORK=$(readlink -f "$WORK")
# Servers that drop privileges (postgres, nginx workers, sshd) must traverse it.
chmod 755 "$WORK"
export WORK

_T_N=0
_T_FAILED=0
declare -A _PIDS=()
declare -a _ORDER=()
EXIT_CODE=

# ---------------------------------------------------------------------------
# TAP

diag() {
  local line
  for line in "$@"; do printf '%s\n' "$line"; done | sed 's/^/#   /'
}

# E2E_TIMING=1: show when each check ran (seconds since the scenario began).
_T_START=$(date +%s.%N)
_t() { [ -n "${E2E_TIMING:-}" ] && printf ' [+%ss]' "$(elapsed "$_T_START")"; }

ok() {
  _T_N=$((_T_N + 1))
  printf 'ok %d - %s: %s%s\n' "$_T_N" "$SCENARIO" "$1" "$(_t)"
}

not_ok() {
  local desc=$1; shift
  _T_N=$((_T_N + 1))
  _T_FAILED=$((_T_FAILED + 1))
  printf 'not ok %d - %s: %s%s\n' "$_T_N" "$SCENARIO" "$desc" "$(_t)"
  [ $# -gt 0 ] && diag "$@"
  return 0
}

skip() {
  _T_N=$((_T_N + 1))
  printf 'ok %d - %s: %s # SKIP %s\n' "$_T_N" "$SCENARIO" "$1" "${2:-}"
}

# check DESC CMD...: ok when CMD succeeds; its output is shown when it fails.
check() {
  local desc=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    ok "$desc"
  else
    not_ok "$desc" "command: $*" "exit status $rc" "$(printf '%s\n' "$out" | tail -n 15)"
  fi
}

# expect_eq DESC WANT GOT
expect_eq() {
  if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "want: $2" "got:  $3"; fi
}

# expect_match DESC ERE TEXT: TEXT is matched as a whole (newlines included;
# ^ and $ are its start and end).
expect_match() {
  # grep takes each line of a pattern as an alternative: refuse, rather than
  # pass a check that matches anything.
  if [[ $2 == *$'\n'* ]]; then not_ok "$1" "expect_match: the pattern has a newline (flatten the text instead)"; return; fi
  if printf '%s' "$3" | grep -qzE -- "$2"; then ok "$1"
  else not_ok "$1" "want a match for: $2" "got: $(printf '%s' "$3" | head -c 2000)"; fi
}

# expect_between DESC LO HI X: X is a number within [LO, HI].
expect_between() {
  if awk -v lo="$2" -v hi="$3" -v x="$4" \
      'BEGIN { exit !(x ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ && x + 0 >= lo + 0 && x + 0 <= hi + 0) }'; then
    ok "$1 ($4)"
  else
    not_ok "$1" "want a value in [$2, $3]" "got: $4"
  fi
}

# bail WHY: the scenario cannot go on (a server did not start, ...).
bail() {
  not_ok "$SCENARIO cannot continue: $1" "${@:2}"
  exit 1
}

# ---------------------------------------------------------------------------
# Time

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# ---------------------------------------------------------------------------
# Ports. Several runs may share this machine: pick random ports below the
# ephemeral range, check that no socket uses them, and reserve each with an
# atomic mkdir under a shared lock directory, released when this scenario exits
# (or found stale when the process that made it is gone).

_PORT_LOCKS=${TMPDIR:-/tmp}/tunnel-e2e-ports

_port_in_use() {
  [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ] ||
    [ -n "$(ss -Huan "( sport = :$1 )" 2>/dev/null)" ]
}

free_port() {
  local p lock owner i
  mkdir -p "$_PORT_LOCKS" 2>/dev/null && chmod 1777 "$_PORT_LOCKS" 2>/dev/null
  for i in $(seq 1 500); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    lock=$_PORT_LOCKS/$p
    if ! mkdir "$lock" 2>/dev/null; then
      owner=$(cat "$lock/owner" 2>/dev/null)
      if [ -n "$owner" ] && [ ! -d "/proc/$owner" ]; then
        rm -rf "$lock"
      fi
      continue
    fi
    echo $$ > "$lock/owner"
    if _port_in_use "$p"; then
      rm -rf "$lock"
      continue
    fi
    echo "$p"
    return 0
  done
  echo "free_port: no free port found" >&2
  return 1
}

_release_ports() {
  local d
  for d in "$_PORT_LOCKS"/*; do
    [ -f "$d/owner" ] && [ "$(cat "$d/owner" 2>/dev/null)" = "$$" ] && rm -rf "$d"
  done
  return 0
}

# ---------------------------------------------------------------------------
# Processes

# start NAME CMD...: run CMD in the background, stdout+stderr to $WORK/NAME.log.
start() {
  local name=$1; shift
  # One process per name: a second one would take over the name's PID and
  # log, and the first would outlive the test (nobody would stop it).
  if alive "$name"; then
    echo "e2e: start $name: a process of that name is still running (pid ${_PIDS[$name]})" >&2
    bail "two processes named $name"
  fi
  # Truncate here, not in the child: a name started again must not let the
  # caller read the previous run's log before the child has opened it.
  : > "$WORK/$name.log"
  "$@" >> "$WORK/$name.log" 2>&1 < /dev/null &
  _PIDS[$name]=$!
  _ORDER+=("$name")
}

pid_of() { echo "${_PIDS[$1]:-}"; }

_pid_alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

alive() {
  local pid=${_PIDS[$1]:-}
  [ -n "$pid" ] && _pid_alive "$pid"
}

signal() {
  local pid=${_PIDS[$1]:-}
  [ -n "$pid" ] && kill -"$2" "$pid" 2>/dev/null
}

# wait_exit NAME [TIMEOUT]: wait for NAME to exit; EXIT_CODE is its status
# (empty if it is still running after TIMEOUT seconds, default 10).
wait_exit() {
  local name=$1 timeout=${2:-10} pid=${_PIDS[$1]:-}
  EXIT_CODE=
  [ -n "$pid" ] || return 1
  local deadline
  deadline=$(awk -v t="$timeout" -v n="$(now)" 'BEGIN { printf "%.3f", n + t }')
  while _pid_alive "$pid"; do
    if awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n > d) }'; then
      return 1
    fi
    sleep 0.02
  done
  wait "$pid" 2>/dev/null
  EXIT_CODE=$?
  unset "_PIDS[$name]"
  return 0
}

# stop NAME [TIMEOUT]: SIGTERM, then SIGKILL after TIMEOUT (default 10) s.
# EXIT_CODE is the process's exit status (stop itself returns 0).
stop() {
  local name=$1 timeout=${2:-10} pid=${_PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  if ! wait_exit "$name" "$timeout"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    EXIT_CODE=$?
    unset "_PIDS[$name]"
  fi
  return 0
}

_e2e_cleanup() {
  local status=$? i name pid
  trap - EXIT TERM INT HUP
  for (( i = ${#_ORDER[@]} - 1; i >= 0; i-- )); do
    name=${_ORDER[$i]}
    pid=${_PIDS[$name]:-}
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null
  done
  for (( i = ${#_ORDER[@]} - 1; i >= 0; i-- )); do
    name=${_ORDER[$i]}
    [ -n "${_PIDS[$name]:-}" ] && stop "$name" 5 >/dev/null 2>&1
  done
  # Under ASan/UBSan (make check) a report in any log is a failure.
  local f
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"; then
      not_ok "no sanitizer report in $(basename "$f")" \
        "$(grep -E -A 12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -n 40)"
    fi
  done
  if [ "$_T_FAILED" -gt 0 ] || [ "$status" -ne 0 ]; then
    # Leave what a reader needs to see why: the tail of every log.
    for f in "$WORK"/*.log; do
      [ -f "$f" ] || continue
      echo "# --- $(basename "$f") (last 25 lines)"
      tail -n 25 "$f" | cut -c1-400 | sed 's/^/#   /'
    done
  fi
  _release_ports
  echo "1..$_T_N"
  [ "$_E2E_OWN_WORK" = 1 ] && [ -z "${E2E_KEEP:-}" ] && rm -rf "$WORK"
  if [ "$_T_FAILED" -gt 0 ]; then exit 1; fi
  exit "$status"
}
trap _e2e_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# ---------------------------------------------------------------------------
# Waiting (polling, never a fixed sleep)

# wait_until TIMEOUT CMD...: poll CMD every 20 ms until it succeeds.
wait_until() {
  local timeout=$1; shift
  local deadline
  deadline=$(awk -v t="$timeout" -v n="$(now)" 'BEGIN { printf "%.3f", n + t }')
  until "$@" >/dev/null 2>&1; do
    if awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n > d) }'; then
      return 1
    fi
    sleep 0.02
  done
}

_listening() {
  local port=$1 host=${2:-}
  if [ -n "$host" ]; then
    [ -n "$(ss -Hltn "( sport = :$port )" | awk -v h="$host" '$4 ~ h')" ]
  else
    [ -n "$(ss -Hltn "( sport = :$port )")" ]
  fi
}

# wait_port PORT [TIMEOUT] [HOST]: until something listens on PORT (no
# connection is made, so the servers' logs stay clean).
wait_port() { wait_until "${2:-10}" _listening "$1" "${3:-}"; }

port_closed() { ! _listening "$1"; }

wait_log() {
  local file=$1 pattern=$2 timeout=${3:-10}
  wait_until "$timeout" grep -qE -- "$pattern" "$file"
}

# ---------------------------------------------------------------------------
# The JSON log lines (one object per line on the tunnel's stderr)

_JLOG_PY='
import json, re, sys
mode, path, field = sys.argv[1], sys.argv[2], sys.argv[3]
filters = []
for f in sys.argv[4:]:
    for op in ("~", "=", "?"):
        if op in f:
            k, v = f.split(op, 1)
            filters.append((k, op, v))
            break
def keep(o):
    for k, op, v in filters:
        if op == "?":
            if k not in o: return False
            continue
        if k not in o: return False
        s = o[k]
        s = json.dumps(s) if isinstance(s, bool) else str(s)
        if op == "=" and s != v: return False
        if op == "~" and not re.search(v, s): return False
    return True
n = 0
last = None
try:
    lines = open(path, errors="replace").read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.startswith("{"): continue
    try: o = json.loads(line)
    except ValueError: continue
    if not isinstance(o, dict) or not keep(o): continue
    n += 1
    if mode == "lines": print(line)
    elif mode == "field" and field in o:
        v = o[field]
        print(json.dumps(v) if isinstance(v, bool) else v)
    elif mode == "last" and field in o:
        last = o[field]
if mode == "count": print(n)
if mode == "last" and last is not None: print(json.dumps(last) if isinstance(last, bool) else last)
'

# jlines FILE FILTER...: the matching JSON lines.
jlines() { local f=$1; shift; "$PY" -c "$_JLOG_PY" lines "$f" "" "$@"; }
# jfield FILE FIELD FILTER...: FIELD of each matching line.
jfield() { local f=$1 k=$2; shift 2; "$PY" -c "$_JLOG_PY" field "$f" "$k" "$@"; }
# jlast FILE FIELD FILTER...: FIELD of the last matching line (whole, even
# when it spans lines, as a traceback does).
jlast() { local f=$1 k=$2; shift 2; "$PY" -c "$_JLOG_PY" last "$f" "$k" "$@"; }
# jcount FILE FILTER...: how many lines match.
jcount() { local f=$1; shift; "$PY" -c "$_JLOG_PY" count "$f" "" "$@"; }
# jhas FILE FILTER...: true when at least one line matches.
jhas() { [ "$(jcount "$@")" -gt 0 ]; }
# wait_jlog FILE TIMEOUT FILTER...: until a matching line appears.
wait_jlog() { local f=$1 t=$2; shift 2; wait_until "$t" jhas "$f" "$@"; }

# ---------------------------------------------------------------------------
# The tunnel

# write_script FILE: the router script from stdin (a heredoc with the ports
# already substituted by the shell).
write_script() { cat > "$1"; }

# curl_fails N HOST URL EXPECT [PAUSE]: how many of N sequential GETs of URL
# with that Host header did not answer exactly EXPECT (PAUSE seconds apart).
curl_fails() {
  local n=$1 host=$2 url=$3 want=$4 pause=${5:-0} fails=0 out
  for _ in $(seq "$n"); do
    out=$(curl -sS --max-time 10 -H "Host: $host" "$url" 2>&1)
    [ "$out" = "$want" ] || fails=$((fails + 1))
    [ "$pause" = 0 ] || sleep "$pause"
  done
  echo "$fails"
}

# start_tunnel NAME [RUN-OPTIONS...] SCRIPT: run it and wait for "start"
# (listeners are bound by then). Fails if it exits first.
start_tunnel() {
  local name=$1; shift
  start "$name" "$TUNNEL" run "$@"
  wait_until 10 _tunnel_started "$name"
  if ! grep -q '"event":"start"' "$WORK/$name.log"; then
    diag "tunnel $name did not start:" "$(tail -n 20 "$WORK/$name.log")"
    return 1
  fi
}

run_tunnel() { start_tunnel router "$@"; }

_tunnel_started() {
  grep -q '"event":"start"' "$WORK/$1.log" || ! alive "$1"
}

# ---------------------------------------------------------------------------
# Servers

# nginx_site NAME LISTEN BODY: $WORK/NAME/ with index.html (BODY, no newline)
# and an nginx.conf serving it on LISTEN, every answer marked
# "X-Backend: NAME" (start_http here, ns_http in tunnel_lib.sh).
nginx_site() {
  local name=$1 listen=$2 body=$3 dir=$WORK/$1
  mkdir -p "$dir/www" "$dir/tmp" "$dir/logs"
  printf '%s' "$body" > "$dir/www/index.html"
  cat > "$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_max_body_size 0;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_timeout 30s;
  server {
    listen $listen;
    root $dir/www;
    add_header X-Backend $name always;
    location / { }
  }
}
EOF
}

# start_http NAME PORT BODY [LISTEN]: nginx serving BODY (nginx_site). LISTEN
# defaults to 127.0.0.1:PORT ("[::1]:PORT" for IPv6).
start_http() {
  local name=$1 port=$2 dir=$WORK/$1
  nginx_site "$name" "${4:-127.0.0.1:$2}" "$3"
  start "$name" nginx -e stderr -p "$dir" -c "$dir/nginx.conf"
  wait_port "$port" 10 || { diag "nginx $name did not listen on $port" "$(cat "$WORK/$name.log")"; return 1; }
}

# make_ca: a CA for the TLS backends ($WORK/pki/ca.pem).
make_ca() {
  mkdir -p "$WORK/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=tunnel e2e test CA" -keyout "$WORK/pki/ca.key" -out "$WORK/pki/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    >/dev/null 2>&1
}

# make_cert NAME CN SAN...: $WORK/pki/NAME.{key,pem} signed by the CA.
make_cert() {
  local name=$1 cn=$2; shift 2
  local san="" s
  for s in "$@"; do san="${san:+$san,}DNS:$s"; done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$WORK/pki/$name.key" -out "$WORK/pki/$name.csr" >/dev/null 2>&1 &&
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" > "$WORK/pki/$name.ext" &&
  openssl x509 -req -in "$WORK/pki/$name.csr" -CA "$WORK/pki/ca.pem" -CAkey "$WORK/pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/pki/$name.ext" -out "$WORK/pki/$name.pem" >/dev/null 2>&1
}

# fingerprint PEM-FILE: the SHA-256 fingerprint of a certificate.
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }

# start_tls NAME PORT CERTNAME BODY: openssl s_server -WWW serving
# /index.html (BODY) with the certificate made by make_cert CERTNAME.
start_tls() {
  local name=$1 port=$2 cert=$3 body=$4
  mkdir -p "$WORK/$name"
  printf '%s' "$body" > "$WORK/$name/index.html"
  ( cd "$WORK/$name" && exec openssl s_server -quiet -accept "127.0.0.1:$port" \
      -cert "$WORK/pki/$cert.pem" -key "$WORK/pki/$cert.key" -WWW ) \
    > "$WORK/$name.log" 2>&1 < /dev/null &
  # The subshell execs openssl: the recorded PID is the server's.
  _PIDS[$name]=$!
  _ORDER+=("$name")
  wait_port "$port" 10 || { diag "s_server $name did not listen on $port"; return 1; }
}

# pyserver NAME MODE PORT [ARGS]: one of the small servers in servers.py.
pyserver() {
  local name=$1; shift
  start "$name" "$PY" -u "$E2E_DIR/servers.py" "$@"
  wait_port "$2" 10 || { diag "servers.py $1 ($name) did not listen on $2" "$(cat "$WORK/$name.log")"; return 1; }
}

# tohex FORMAT: printf FORMAT (escapes such as \r\n allowed) as hex, for servers.py send.
tohex() { printf "$1" | od -An -v -tx1 | tr -d ' \n'; }

# pysend HOST PORT HEX [--pause S HEX]... [--max S] [--shut]: a raw client;
# prints one JSON object (end, first_byte_after_send, seconds, reply, ...).
pysend() { "$PY" "$E2E_DIR/servers.py" send "$@"; }

# jget JSON KEY: one field of a JSON object given as text.
jget() { printf '%s' "$1" | "$PY" -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$2"; }

# tests/e2e/tunnel_lib.sh — helpers for the relay + agent scenarios
# (tests/e2e/1NN-tunnel-*.sh). Sourced instead of lib.sh (it sources lib.sh).
#
# The topology is the honest NAT test: the AGENT and its local services run in
# a network namespace made for the scenario (veth pair, a private /30), which
# accepts no inbound connection (nft, or iptables, input policy drop except
# loopback and established/related); the RELAY runs on the host and listens
# for agents on the host side of the veth; its public entries and every client
# are on the host's 127.0.0.1. When network namespaces cannot be made (not
# root, no `ip netns`), tnl_topology says why (NAT_WHY) and everything runs on
# loopback instead: the scenarios still run, the NAT checks are skipped.
#
#   topology   tnl_topology -> 0 (NAT=1, IN_NS=(ip netns exec NS)) or 1 (NAT=0,
#                IN_NS=(), NAT_WHY); RELAY_IP (agents connect there), AGENT_IP
#              tnl_firewall (no inbound into the namespace; FW_TOOL nft|iptables)
#              tnl_setup (both when possible, else a diag and loopback)
#              tcp_reach IP PORT [read] (a TCP connect within 1 s [and a first byte])
#              in_ns CMD... (run CMD where the agent runs)
#   ports      free_range N -> "FIRST LAST", N consecutive free ports, reserved
#   pki        tnl_pki (CA + relay cert in $TPKI) | agent_cert NAME [ROLE] [CADIR]
#              relay_tls -> Lua table | agent_tls NAME [CA-FILE] -> Lua table
#              openssl_client_cert DIR NAME ROLE START END [CADIR] (any dates: expired)
#   tunnel     start_relay NAME [RUN-OPTS] SCRIPT (host) | start_agent NAME SCRIPT (netns)
#              wait_exposed LOG SERVICE [TIMEOUT] | exposed_port LOG SERVICE
#              sessions LOG [AGENT] (count of "session" events)
#              wait_sessions LOG N [TIMEOUT] [AGENT]
#   agent side ns_port_listening PORT | ns_wait_port PORT [TIMEOUT]
#              ns_http NAME PORT BODY | ns_tls NAME PORT CERTNAME BODY
#              ns_py NAME MODE PORT [ARGS] | ns_trap NAME PORT (trap_accepts NAME)
#              ns_postgres NAME PORT (PGBIN; returns 2 when PostgreSQL is missing)
#   data       sha256_of [FILE] | random_file FILE BYTES
#   log times  jts LOG FILTER... (Unix time of the last match) | ts_delta A B
#   clients    hcode HOST PORT [PATH] (HTTP status through a relay entry)
#              hbody HOST PORT [PATH] | hok HOST PORT [PATH]
#              banner_of PORT (a servers.py banner service: "BANNER|ping")
#              tcp_outcome PORT [N] [HOST] (refused, closed, reset, timeout, data:...)
#              start_poller NAME HOST PORT | stop_poller NAME (POLL_TOTAL, POLL_OK)
#   processes  kill9 NAME (SIGKILL, reaped) | listening_of PID (ss -ltunp lines)
#              watch_exits T0 TIMEOUT NAME... (EXITED_NAME: s after T0) | size_at_least FILE N

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  exit 0      # a helper, not a scenario (tests/run-e2e runs every *.sh)
fi

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAT=0
NAT_WHY=
IN_NS=()
RELAY_IP=127.0.0.1
AGENT_IP=127.0.0.1
NS=
FW_TOOL=
_TNL_VETH=
_TNL_NETLOCK=

# ---------------------------------------------------------------------------
# Cleanup: every process started (some live in the namespace), then the
# namespace and its veth, then lib.sh's own cleanup (TAP plan, logs, ports).

_tnl_netns_down() {
  if [ -n "$NS" ]; then
    ip netns del "$NS" 2>/dev/null
    NS=
  fi
  if [ -n "$_TNL_VETH" ]; then
    ip link del "$_TNL_VETH" 2>/dev/null
    _TNL_VETH=
  fi
  [ -n "$_TNL_NETLOCK" ] && rm -rf "$_TNL_NETLOCK"
  _TNL_NETLOCK=
  return 0
}

_tnl_exit() {
  local st=$? i name
  trap - EXIT
  for (( i = ${#_ORDER[@]} - 1; i >= 0; i-- )); do
    name=${_ORDER[$i]}
    [ -n "${_PIDS[$name]:-}" ] && kill -TERM "${_PIDS[$name]}" 2>/dev/null
  done
  for (( i = ${#_ORDER[@]} - 1; i >= 0; i-- )); do
    name=${_ORDER[$i]}
    [ -n "${_PIDS[$name]:-}" ] && stop "$name" 5 >/dev/null 2>&1
  done
  _tnl_netns_down
  (exit "$st")
  _e2e_cleanup
}
trap _tnl_exit EXIT

# ---------------------------------------------------------------------------
# Topology

in_ns() { "${IN_NS[@]}" "$@"; }

# tnl_topology: make the namespace and the veth pair (10.254.X.1/30 on the
# host, .2 inside; X reserved under a lock directory shared by parallel runs).
tnl_topology() {
  local x lockdir=${TMPDIR:-/tmp}/tunnel-e2e-netns out i owner
  if [ "$(id -u)" != 0 ]; then NAT_WHY="not root: network namespaces need CAP_NET_ADMIN"; return 1; fi
  if ! command -v ip >/dev/null; then NAT_WHY="ip (iproute2) not installed"; return 1; fi
  mkdir -p "$lockdir" 2>/dev/null
  for i in $(seq 1 300); do
    x=$(( RANDOM % 250 + 2 ))
    if ! mkdir "$lockdir/$x" 2>/dev/null; then
      owner=$(cat "$lockdir/$x/owner" 2>/dev/null)
      [ -n "$owner" ] && [ ! -d "/proc/$owner" ] && rm -rf "${lockdir:?}/$x"
      continue
    fi
    echo $$ > "$lockdir/$x/owner"
    if ip -4 -o addr show 2>/dev/null | grep -q " 10\.254\.$x\."; then
      rm -rf "${lockdir:?}/$x"
      continue
    fi
    _TNL_NETLOCK=$lockdir/$x
    break
  done
  if [ -z "$_TNL_NETLOCK" ]; then NAT_WHY="no free 10.254.X.0/30"; return 1; fi
  NS=tnl-e2e-$$
  if ! out=$(ip netns add "$NS" 2>&1); then
    NS=
    NAT_WHY="ip netns add is not permitted here: $out"
    _tnl_netns_down
    return 1
  fi
  _TNL_VETH=tnh$$
  if ! out=$( { ip link add "$_TNL_VETH" type veth peer name "tnn$$" netns "$NS" &&
                ip addr add "10.254.$x.1/30" dev "$_TNL_VETH" &&
                ip link set "$_TNL_VETH" up &&
                ip -n "$NS" addr add "10.254.$x.2/30" dev "tnn$$" &&
                ip -n "$NS" link set "tnn$$" up &&
                ip -n "$NS" link set lo up; } 2>&1); then
    NAT_WHY="veth setup failed: $out"
    _tnl_netns_down
    return 1
  fi
  RELAY_IP=10.254.$x.1
  AGENT_IP=10.254.$x.2
  IN_NS=(ip netns exec "$NS")
  NAT=1
  return 0
}

# tnl_firewall: the namespace accepts no inbound connection: input policy drop,
# loopback and replies (established/related) excepted.
tnl_firewall() {
  local out
  [ "$NAT" = 1 ] || return 1
  if command -v nft >/dev/null; then
    FW_TOOL=nft
    out=$(in_ns nft -f - 2>&1 <<'EOF'
table inet e2e_nat {
  chain input {
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    ct state established,related accept
  }
}
EOF
) || { NAT_WHY="nft in the namespace failed: $out"; return 1; }
  elif command -v iptables >/dev/null; then
    FW_TOOL=iptables
    out=$( { in_ns iptables -P INPUT DROP &&
             in_ns iptables -A INPUT -i lo -j ACCEPT &&
             in_ns iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT; } 2>&1) ||
      { NAT_WHY="iptables in the namespace failed: $out"; return 1; }
  else
    NAT_WHY="neither nft (Debian: nftables) nor iptables is installed"
    return 1
  fi
}

# tnl_setup: the topology for scenarios that do not assert the NAT itself:
# the namespace with its firewall when possible, else say why and go on.
tnl_setup() {
  if tnl_topology; then
    tnl_firewall || diag "the namespace has no firewall: $NAT_WHY"
  else
    diag "agent on loopback: $NAT_WHY"
  fi
  return 0
}

# tcp_reach IP PORT [read]: a TCP connection within 1 s (over a veth a SYN
# that is not dropped is answered at once); with "read", also a first byte.
tcp_reach() {
  "$PY" - "$1" "$2" "${3:-}" <<'EOF'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    if sys.argv[3] == "read":
        s.settimeout(2)
        sys.exit(0 if s.recv(1) else 1)
except OSError as e:
    print(e)
    sys.exit(1)
EOF
}

# ---------------------------------------------------------------------------
# Ports

# free_range N: N consecutive unused ports, each reserved like free_port's.
free_range() {
  local n=$1 p i j ok
  mkdir -p "$_PORT_LOCKS" 2>/dev/null && chmod 1777 "$_PORT_LOCKS" 2>/dev/null
  for i in $(seq 1 300); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % (12000 - n) ))
    ok=1
    for (( j = 0; j < n; j++ )); do
      if ! mkdir "$_PORT_LOCKS/$((p + j))" 2>/dev/null; then ok=0; break; fi
      echo $$ > "$_PORT_LOCKS/$((p + j))/owner"
      if _port_in_use $((p + j)); then j=$((j + 1)); ok=0; break; fi
    done
    if [ $ok = 1 ]; then echo "$p $((p + n - 1))"; return 0; fi
    for (( j = j - 1; j >= 0; j-- )); do rm -rf "${_PORT_LOCKS:?}/$((p + j))"; done
  done
  echo "free_range: no $n free consecutive ports" >&2
  return 1
}

# ---------------------------------------------------------------------------
# Credentials ($TPKI): one CA, the relay's server certificate for "relay.test".

TPKI=$WORK/tpki

tnl_pki() {
  "$TUNNEL" ca init "$TPKI/ca" >/dev/null &&
  "$TUNNEL" cert issue --ca "$TPKI/ca" --name relay --server --dns relay.test --dns localhost \
    --out "$TPKI/relay" >/dev/null
}

# agent_cert NAME [ROLE] [CADIR]: $TPKI/NAME/NAME.{crt,key}.
agent_cert() {
  local role=()
  [ -n "${2:-}" ] && role=(--role "$2")
  "$TUNNEL" cert issue --ca "${3:-$TPKI/ca}" --name "$1" "${role[@]}" --out "$TPKI/$1" >/dev/null
}

relay_tls() {
  printf '{ cert = "%s", key = "%s", ca = "%s" }' \
    "$TPKI/relay/relay.crt" "$TPKI/relay/relay.key" "$TPKI/ca/ca.crt"
}

# agent_tls NAME [CA-FILE]: the agent verifies the relay by CA and name.
agent_tls() {
  printf '{ cert = "%s", key = "%s", ca = "%s", server_name = "relay.test" }' \
    "$TPKI/$1/$1.crt" "$TPKI/$1/$1.key" "${2:-$TPKI/ca/ca.crt}"
}

# ---------------------------------------------------------------------------
# The tunnel processes

_tnl_started() { grep -q '"event":"start"' "$WORK/$1.log" 2>/dev/null || ! alive "$1"; }

# start_relay NAME [RUN-OPTIONS] SCRIPT: on the host; waits for "start".
start_relay() { start_tunnel "$@"; }

# start_agent NAME [RUN-OPTIONS] SCRIPT: in the namespace; waits for "start".
start_agent() {
  local name=$1; shift
  start "$name" "${IN_NS[@]}" "$TUNNEL" run "$@"
  wait_until 10 _tnl_started "$name"
  if ! grep -q '"event":"start"' "$WORK/$name.log"; then
    diag "agent $name did not start:" "$(tail -n 20 "$WORK/$name.log")"
    return 1
  fi
}

# wait_exposed LOG SERVICE [TIMEOUT]: the relay logged expose/expose_refresh.
wait_exposed() { wait_jlog "$1" "${3:-10}" 'event~^expose(_refresh)?$' "service=$2"; }

# exposed_port LOG SERVICE: the port of the last exposure of a tcp service.
exposed_port() { jlast "$1" port 'event~^expose(_refresh)?$' "service=$2"; }

# sessions LOG [AGENT]: how many agent sessions the relay accepted.
sessions() {
  if [ -n "${2:-}" ]; then jcount "$1" event=session "agent=$2"; else jcount "$1" event=session; fi
}

# wait_sessions LOG N [TIMEOUT] [AGENT]: until the relay has accepted N sessions.
_sessions_at_least() { [ "$(sessions "$1" "${3:-}")" -ge "$2" ]; }
wait_sessions() { wait_until "${3:-10}" _sessions_at_least "$1" "$2" "${4:-}"; }

# kill9 NAME: SIGKILL, reaped (EXIT_CODE set).
kill9() {
  signal "$1" KILL
  wait_exit "$1" 10 2>/dev/null     # (no "Killed" job notice in the TAP stream)
}

# listening_of PID: the listening TCP/UDP sockets of PID, where the agent runs.
listening_of() { in_ns ss -Hltunp | grep -E "pid=$1,"; }

# ---------------------------------------------------------------------------
# The agent's local services (in the namespace, on its 127.0.0.1)

ns_port_listening() { [ -n "$(in_ns ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]; }
ns_wait_port() { wait_until "${2:-10}" ns_port_listening "$1"; }

# ns_http NAME PORT BODY: nginx in the namespace serving BODY (nginx_site).
ns_http() {
  local name=$1 port=$2 dir=$WORK/$1
  nginx_site "$name" "127.0.0.1:$port backlog=4096" "$3"
  start "$name" "${IN_NS[@]}" nginx -e stderr -p "$dir" -c "$dir/nginx.conf"
  ns_wait_port "$port" 10 || { diag "nginx $name did not listen on $port" "$(cat "$WORK/$name.log")"; return 1; }
}

# ns_tls NAME PORT CERTNAME BODY: openssl s_server -WWW (cert from make_cert).
ns_tls() {
  local name=$1 port=$2 cert=$3 body=$4
  mkdir -p "$WORK/$name"
  printf '%s' "$body" > "$WORK/$name/index.html"
  ( cd "$WORK/$name" && exec "${IN_NS[@]}" openssl s_server -quiet -accept "127.0.0.1:$port" \
      -cert "$WORK/pki/$cert.pem" -key "$WORK/pki/$cert.key" -WWW ) \
    > "$WORK/$name.log" 2>&1 < /dev/null &
  _PIDS[$name]=$!
  _ORDER+=("$name")
  ns_wait_port "$port" 10 || { diag "s_server $name did not listen on $port"; return 1; }
}

# ns_py NAME MODE PORT [ARGS]: a servers.py server where the agent runs.
ns_py() {
  local name=$1; shift
  start "$name" "${IN_NS[@]}" "$PY" -u "$E2E_DIR/servers.py" "$@"
  ns_wait_port "$2" 10 || { diag "servers.py $1 ($name) did not listen on $2" "$(cat "$WORK/$name.log")"; return 1; }
}

# ns_trap NAME PORT: a listener that logs "accept <peer>" for every
# connection to $WORK/NAME.log (and answers nothing).
ns_trap() {
  local name=$1 port=$2
  start "$name" "${IN_NS[@]}" "$PY" -u -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
print("ready", flush=True)
while True:
    c, a = s.accept()
    print("accept %s:%d" % a, flush=True)
    c.close()
' "$port"
  ns_wait_port "$port" 10
}
trap_accepts() { grep -c '^accept ' "$WORK/$1.log" 2>/dev/null; }

# ns_postgres NAME PORT: a real PostgreSQL server (ssl=on, trust auth) on the
# agent side's 127.0.0.1:PORT; PGBIN is set; returns 2 when not installed.
ns_postgres() {
  local name=$1 port=$2 pg=$WORK/$1 as=()
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/postgres" ] || ! command -v psql >/dev/null; then return 2; fi
  local osuser
  osuser=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    osuser=postgres
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  mkdir -p "$pg/sock"
  [ -f "$WORK/pki/ca.pem" ] || make_ca || return 1
  make_cert "$name" localhost localhost || return 1
  cp "$WORK/pki/$name.pem" "$pg/server.crt"
  cp "$WORK/pki/$name.key" "$pg/server.key"
  chmod 600 "$pg/server.key"
  chown -R "$osuser" "$pg"
  "${as[@]}" "$PGBIN/initdb" -D "$pg/data" -U postgres --auth=trust -E UTF8 --no-sync \
    > "$WORK/$name-initdb.log" 2>&1 || { diag "initdb failed" "$(tail -n 20 "$WORK/$name-initdb.log")"; return 1; }
  start "$name" "${IN_NS[@]}" "${as[@]}" "$PGBIN/postgres" -D "$pg/data" -k "$pg/sock" -h 127.0.0.1 -p "$port" \
    -c ssl=on -c ssl_cert_file="$pg/server.crt" -c ssl_key_file="$pg/server.key" \
    -c fsync=off -c full_page_writes=off -c synchronous_commit=off
  ns_wait_port "$port" 30 || { diag "postgres did not listen on $port" "$(tail "$WORK/$name.log")"; return 1; }
  wait_until 30 in_ns "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" || { diag "postgres not ready"; return 1; }
}

# ---------------------------------------------------------------------------
# Clients (on the host, through a relay entry on 127.0.0.1)

hcode() { curl -s -o /dev/null --max-time 10 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$2${3:-/}"; }
hbody() { curl -s --max-time 10 -H "Host: $1" "http://127.0.0.1:$2${3:-/}"; }
# hok HOST PORT [PATH]: a 200 (for wait_until).
hok() { [ "$(hcode "$@")" = 200 ]; }

# banner_of PORT: the first line a tcp service sends through 127.0.0.1:PORT,
# after echoing "ping" (servers.py banner): prints "BANNER|ping".
banner_of() {
  "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.settimeout(5)
buf = b""
while buf.count(b"\r\n") < 1:
    d = s.recv(4096)
    if not d: break
    buf += d
s.sendall(b"ping\r\n")
while buf.count(b"\r\n") < 2:
    d = s.recv(4096)
    if not d: break
    buf += d
print("|".join(l.decode() for l in buf.split(b"\r\n")[:2]))
EOF
}

# sha256_of [FILE]: the hex SHA-256 of FILE or of stdin (hashlib: SHA-NI fast).
sha256_of() {
  "$PY" -c '
import hashlib, sys
f = open(sys.argv[1], "rb") if len(sys.argv) > 1 else sys.stdin.buffer
h = hashlib.sha256()
while True:
    b = f.read(1 << 20)
    if not b:
        break
    h.update(b)
print(h.hexdigest())' "$@"
}

# random_file FILE BYTES: pseudo-random content, fast (AES-CTR keystream).
random_file() {
  openssl enc -aes-128-ctr -pass "pass:$RANDOM$RANDOM" -nosalt -pbkdf2 -in /dev/zero 2>/dev/null |
    head -c "$2" > "$1"
}

# tcp_outcome PORT [N] [HOST]: N clients (default 1) connect and send a line
# at once (as a client speaking first does, e.g. psql), all before any reads
# (a burst); then how each ended within 3 s: refused | closed (clean FIN, no
# data) | reset | timeout | data:<first bytes>. Prints the outcome, or with
# N > 1 the counts ("closed=28 reset=2").
tcp_outcome() {
  "$PY" - "${3:-127.0.0.1}" "$1" "${2:-1}" <<'EOF'
import collections, socket, sys
def start():
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return "connect-error:%s" % e
    try:
        s.sendall(b"hello\r\n")
    except ConnectionResetError:
        s.close()
        return "reset"
    return s
def finish(s):
    if isinstance(s, str):
        return s
    s.settimeout(3)
    try:
        d = s.recv(4096)
        return "data:%r" % d[:40] if d else "closed"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return "error:%s" % e
    finally:
        s.close()
n = int(sys.argv[3])
got = [finish(s) for s in [start() for _ in range(n)]]
if n == 1:
    print(got[0])
else:
    print(" ".join("%s=%d" % kv for kv in sorted(collections.Counter(got).items())))
EOF
}

# openssl_client_cert DIR NAME ROLE START END [CADIR]: a client certificate
# made by `openssl ca` (any validity window, e.g. one in the past: the tunnel
# CLI refuses negative TTLs) from the tunnel CA ($TPKI/ca unless CADIR), with
# the tunnel's identity layout (OU = role, CN = name, clientAuth).
# START/END as YYYYMMDDHHMMSSZ. Writes DIR/NAME.{crt,key}.
openssl_client_cert() {
  local dir=$1 name=$2 ou=$3 start=$4 end=$5 ca=${6:-$TPKI/ca} oca=$1/oca
  mkdir -p "$oca"
  : > "$oca/index.txt"
  [ -f "$oca/serial" ] || echo 1000 > "$oca/serial"
  cat > "$oca/ca.cnf" <<EOF
[ ca ]
default_ca = e2e
[ e2e ]
dir = $oca
database = $oca/index.txt
new_certs_dir = $oca
serial = $oca/serial
default_md = sha256
policy = pol
unique_subject = no
x509_extensions = ext
[ pol ]
organizationalUnitName = optional
commonName = supplied
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
EOF
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/OU=$ou/CN=$name" \
    -keyout "$dir/$name.key" -out "$oca/$name.csr" >/dev/null 2>&1 &&
  openssl ca -batch -notext -config "$oca/ca.cnf" -cert "$ca/ca.crt" -keyfile "$ca/ca.key" \
    -startdate "$start" -enddate "$end" -in "$oca/$name.csr" -out "$dir/$name.crt" >/dev/null 2>&1
}

# watch_exits T0 TIMEOUT NAME...: poll until every NAME has exited (or
# TIMEOUT s); EXITED_<NAME> (dashes as _) is when each was first seen gone,
# in seconds after T0 (empty if still running). Returns 1 on timeout.
watch_exits() {
  local t0=$1 timeout=$2 n v left deadline
  shift 2
  for n in "$@"; do eval "EXITED_${n//-/_}="; done
  deadline=$(awk -v t="$timeout" -v n="$(now)" 'BEGIN { printf "%.3f", n + t }')
  while :; do
    left=0
    for n in "$@"; do
      v="EXITED_${n//-/_}"
      if [ -z "${!v}" ]; then
        if alive "$n"; then left=1; else eval "$v=$(elapsed "$t0")"; fi
      fi
    done
    [ $left = 0 ] && return 0
    awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n > d) }' && return 1
    sleep 0.02
  done
}

# size_at_least FILE BYTES
size_at_least() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }

# start_poller NAME HOST PORT: a client asking http://127.0.0.1:PORT/ for
# HOST every 50 ms, one status code per line in $WORK/NAME.log.
# stop_poller NAME: let it finish its request and stop; POLL_TOTAL, POLL_OK
# (the number of 200s).
start_poller() {
  cat > "$WORK/$1.sh" <<EOF
while [ ! -e "$WORK/$1.stop" ]; do
  curl -s -o /dev/null --max-time 5 -w '%{http_code}\n' -H 'Host: $2' "http://127.0.0.1:$3/"
  sleep 0.05
done
EOF
  start "$1" bash "$WORK/$1.sh"
}
stop_poller() {
  touch "$WORK/$1.stop"
  wait_exit "$1" 10 || stop "$1"
  POLL_TOTAL=$(grep -c . "$WORK/$1.log")
  POLL_OK=$(grep -c '^200$' "$WORK/$1.log")
}

# jts LOG FILTER...: the time ("ts") of the last matching JSON line, as Unix
# seconds (comparable with `now`). ts_delta A B: B - A in seconds.
jts() {
  local ts
  ts=$(jlast "$1" ts "${@:2}")
  [ -n "$ts" ] && date -u -d "$ts" +%s.%N
}
ts_delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# shellcheck shell=bash
# tests/e2e/identity_lib.sh — helpers for the identity scenarios
# (tests/e2e/2NN-identity-*.sh): enrollment with bootstrap tokens, refusals,
# renewal, crash safety. Sourced instead of tunnel_lib.sh (it sources it, so
# the agent runs in its own network namespace when possible).
#
# The relay's state lives in $RS (ca/, relay/, bootstrap.json, deny.txt,
# token.secret); each agent's own files in $WORK/home-NAME (what a fresh
# machine would have: the bootstrap token and the CA certificate, later its
# enrolled credentials in $WORK/home-NAME/creds).
#
#   pki        id_pki (CA + relay certificate for relay.test, with the CLI)
#              id_relay_tls -> Lua table for tunnel.relay{tls = ...}
#   enrolling  bootstrap NAME ROLE [ARGS...] -> the token (stdout), store $RS/bootstrap.json
#              agent_home NAME TOKEN -> $WORK/home-NAME with token (0600) and ca.crt
#              enroll NAME DIR [ARGS...] (in the namespace, with $WORK/home-NAME's
#                token and CA; DIR "" = $WORK/home-NAME/creds; ARGS come last, so a
#                later --name wins; output in $WORK/enroll-NAME.out, its exit status)
#              $P_EN: the relay's enrollment port (set by the scenario)
#   agents     dir_tls DIR -> Lua table { dir = DIR, server_name = "relay.test" }
#              token_tls FILE -> Lua table { token_file = FILE, ca, server_name }
#              agent_script FILE NAME TLS SERVICES [EXTRA-LUA]
#   certs      fp_of PEM (lowercase hex SHA-256) | cert_epoch PEM startdate|enddate
#              serial_of PEM (hex, no leading zeros) | subject_of PEM
#              eku_of PEM (the extendedKeyUsage line) | pubkey_of_cert PEM | pubkey_of_key KEY
#              pair_ok DIR [CA-FILE] [AT] (DIR/current is a key+cert pair that verifies,
#                at Unix time AT if given; prints why not) | gen_of DIR (what DIR/current names)
#              key_b64 KEY (the base64 lines of a PEM key, one a line)
#              openssl_eku_cert DIR NAME ROLE EKU [CADIR] (any extendedKeyUsage,
#                e.g. serverAuth; valid from an hour ago for a day)
#   tokens     craft_token SECRET-FILE ID ROLE EXP (a correctly signed token, any exp)
#              flip_char TOKEN POS [CHAR] (TOKEN with the character at POS replaced)
#   traffic    mitm NAME PORT UPSTREAM-PORT CERT KEY CA OUT (a TLS man in the middle
#                that we are allowed to be: the relay's own CA signed its certificate;
#                the client's plaintext is appended to OUT)
#   relay log  new_reason LOG EVENT N (the reason of the first EVENT line after the first N)
#              _ecount LOG EVENT (how many EVENT lines; grep, fast enough to poll)
#              wait_more LOG EVENT N [TIMEOUT] (more than N EVENT lines)
#              wait_count LOG N TIMEOUT FILTER... (at least N matching lines)
#              ts_of LOG FILTER... (Unix time of the last match, as jts)
#   time       next_tick T0 PERIOD (the first T0 + k*PERIOD after now)
#              sleep_until T (Unix time)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  exit 0      # a helper, not a scenario
fi

. "$(dirname "${BASH_SOURCE[0]}")/tunnel_lib.sh"

RS=$WORK/relay-state
P_EN=${P_EN:-}

# ---------------------------------------------------------------------------
# PKI, with the tunnel's own CLI

id_pki() {
  mkdir -p "$RS" &&
  "$TUNNEL" ca init "$RS/ca" >/dev/null &&
  "$TUNNEL" cert issue --ca "$RS/ca" --name relay --server --dns relay.test --out "$RS/relay" >/dev/null
}

id_relay_tls() {
  printf '{ cert = "%s", key = "%s", ca = "%s" }' "$RS/relay/relay.crt" "$RS/relay/relay.key" "$RS/ca/ca.crt"
}

# ---------------------------------------------------------------------------
# Enrollment

bootstrap() {
  local name=$1 role=$2; shift 2
  "$TUNNEL" token bootstrap --name "$name" --role "$role" --store "$RS/bootstrap.json" "$@" 2>>"$WORK/bootstrap.err"
}

agent_home() {
  local home=$WORK/home-$1
  mkdir -p "$home" && chmod 700 "$home"
  ( umask 077; printf '%s\n' "$2" > "$home/token" )
  cp "$RS/ca/ca.crt" "$home/ca.crt"
}

# enroll NAME DIR [ARGS...]: `tunnel enroll` where the agent runs, with the
# token and CA in $WORK/home-NAME; credentials to DIR ("" = $WORK/home-NAME/creds).
enroll() {
  local name=$1 dir=${2:-$WORK/home-$1/creds}
  shift 2
  in_ns "$TUNNEL" enroll --relay "$RELAY_IP:$P_EN" --name "$name" --out "$dir" \
    --token-file "$WORK/home-$name/token" --ca "$WORK/home-$name/ca.crt" --server-name relay.test "$@" \
    > "$WORK/enroll-$name.out" 2>&1
}

# ---------------------------------------------------------------------------
# Agent scripts

dir_tls() { printf '{ dir = "%s", server_name = "relay.test" }' "$1"; }
token_tls() { printf '{ token_file = "%s", ca = "%s", server_name = "relay.test" }' "$1" "$RS/ca/ca.crt"; }

# agent_script FILE NAME TLS SERVICES [EXTRA]: SERVICES is the inside of the
# services list; EXTRA more agent options (a trailing comma each).
agent_script() {
  write_script "$1" <<EOF
local tunnel = require "tunnel"
AGENT = tunnel.agent{
  name = "$2",
  relays = { "$RELAY_IP:$P_AG" },
  tls = $3,
  reconnect = { min = 0.2, max = 1 },
  services = { $4 },
  ${5:-}
}
EOF
}

# ---------------------------------------------------------------------------
# Certificates

fp_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'; }
cert_epoch() { date -u -d "$(openssl x509 -in "$1" -noout -"$2" | sed 's/^[^=]*=//')" +%s; }
serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//; s/^\(00\)*//' | tr 'a-f' 'A-F'; }
subject_of() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
eku_of() { openssl x509 -in "$1" -noout -ext extendedKeyUsage 2>/dev/null | sed -n '2,$p' | sed 's/^ *//'; }
pubkey_of_cert() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null; }
pubkey_of_key() { openssl pkey -in "$1" -pubout 2>/dev/null; }
key_b64() { grep -v -- '-----' "$1"; }
gen_of() { readlink "$1/current" 2>/dev/null; }

# pair_ok DIR [CA-FILE] [AT]: DIR/current names a generation whose key.pem and
# cert.pem belong together, and the certificate verifies against CA-FILE
# (default: the generation's own ca.pem), now or at Unix time AT.
pair_ok() {
  local dir=$1 gen cur at=()
  [ -n "${3:-}" ] && at=(-attime "${3%.*}")
  gen=$(gen_of "$dir") || { echo "no $dir/current"; return 1; }
  cur=$dir/$gen
  [ -n "$gen" ] && [ -d "$cur" ] || { echo "current -> '$gen' is not a folder"; return 1; }
  local f
  for f in key.pem cert.pem ca.pem; do
    [ -s "$cur/$f" ] || { echo "$gen/$f is missing or empty"; return 1; }
  done
  local kp cp
  kp=$(pubkey_of_key "$cur/key.pem"); cp=$(pubkey_of_cert "$cur/cert.pem")
  [ -n "$kp" ] || { echo "$gen/key.pem is not a key"; return 1; }
  [ -n "$cp" ] || { echo "$gen/cert.pem is not a certificate"; return 1; }
  [ "$kp" = "$cp" ] || { echo "$gen: the certificate's public key is not the key's"; return 1; }
  openssl verify "${at[@]}" -CAfile "${2:-$cur/ca.pem}" "$cur/cert.pem" 2>&1 | grep -q ': OK$' ||
    { echo "$gen: $(openssl verify "${at[@]}" -CAfile "${2:-$cur/ca.pem}" "$cur/cert.pem" 2>&1 | tr '\n' ' ')"; return 1; }
}

# openssl_eku_cert DIR NAME ROLE EKU [CADIR]: like openssl_client_cert, but
# with the extendedKeyUsage given (serverAuth, clientAuth, ...).
openssl_eku_cert() {
  local dir=$1 name=$2 ou=$3 eku=$4 ca=${5:-$RS/ca}
  mkdir -p "$dir"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' \
    "$eku" > "$dir/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/OU=$ou/CN=$name" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" >/dev/null 2>&1 &&
  openssl x509 -req -in "$dir/$name.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 1 -extfile "$dir/$name.ext" -out "$dir/$name.crt" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# Tokens

# craft_token SECRET-FILE ID ROLE EXP: tnl1.<payload>.<mac> as docs/identity.md
# describes it, signed with the secret (hex on one line).
craft_token() {
  "$PY" - "$@" <<'EOF'
import base64, hashlib, hmac, json, sys
secret = bytes.fromhex(open(sys.argv[1]).read().strip())
payload = json.dumps({"id": sys.argv[2], "role": sys.argv[3], "exp": int(sys.argv[4])}, separators=(",", ":"))
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = "tnl1." + b64(payload.encode())
print(head + "." + b64(hmac.new(secret, head.encode(), hashlib.sha256).digest()))
EOF
}

# flip_char TOKEN POS [CHAR]: CHAR (default: another base64url digit) at POS.
flip_char() {
  "$PY" - "$@" <<'EOF'
import sys
t, i = sys.argv[1], int(sys.argv[2])
c = sys.argv[3] if len(sys.argv) > 3 else ("B" if t[i] == "A" else "A")
assert c != t[i]
print(t[:i] + c + t[i + 1:])
EOF
}

# ---------------------------------------------------------------------------
# A TLS man in the middle for the enrollment listener: terminates TLS with a
# certificate the agent trusts (we hold the CA), writes everything the client
# sends to OUT, and passes it on to the real listener over TLS.

mitm() {
  local name=$1 port=$2 up=$3 cert=$4 key=$5 ca=$6 out=$7
  cat > "$WORK/$name.py" <<'EOF'
import re, socket, ssl, sys, threading
host, port, uhost, uport, cert, key, ca, out = sys.argv[1:9]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.load_verify_locations(ca)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, int(port)))
srv.listen(8)
print("ready", flush=True)
lock = threading.Lock()
def handle(c):
    # One request (head + Content-Length body), recorded and passed on; then
    # the whole answer back, and close.
    try:
        tc = sctx.wrap_socket(c, server_side=True)
        tc.settimeout(10)
        buf = b""
        while True:
            d = tc.recv(65536)
            if not d:
                break
            buf += d
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if len(body) >= (int(m.group(1)) if m else 0):
                    break
        with lock, open(out, "ab") as f:
            f.write(buf)
        u = cctx.wrap_socket(socket.create_connection((uhost, int(uport)), timeout=10), server_hostname="relay.test")
        u.sendall(buf)
        while True:
            try:
                d = u.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not d:
                break
            tc.sendall(d)
        u.close()
    except (OSError, ssl.SSLError) as e:
        print("mitm error", e, flush=True)
    c.close()
    try:
        tc.close()
    except Exception:
        pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
EOF
  start "$name" "$PY" -u "$WORK/$name.py" "$RELAY_IP" "$port" "$RELAY_IP" "$up" "$cert" "$key" "$ca" "$out"
  wait_port "$port" 10
}

# ---------------------------------------------------------------------------
# The relay's log

# new_reason LOG EVENT N: the reason of the first EVENT line after the first N.
# (grep and sed, not Python: it is called often, and Python starts slowly on
# a busy machine.)
new_reason() {
  grep "\"event\":\"$2\"" "$1" 2>/dev/null | sed -n "$(($3 + 1))p" |
    sed -n 's/.*"reason":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | sed 's/\\"/"/g; s/\\\\/\\/g'
}
_ecount() { grep -c "\"event\":\"$2\"" "$1" 2>/dev/null; }    # (fast: polled)
_more_than() { [ "$(_ecount "$1" "$2")" -gt "$3" ]; }
# wait_more LOG EVENT N [TIMEOUT]: until there are more than N EVENT lines.
wait_more() { wait_until "${4:-5}" _more_than "$1" "$2" "$3"; }

# wait_count LOG N TIMEOUT FILTER...: until at least N lines match.
_count_at_least() { local f=$1 n=$2; shift 2; [ "$(jcount "$f" "$@")" -ge "$n" ]; }
wait_count() { local f=$1 n=$2 t=$3; shift 3; wait_until "$t" _count_at_least "$f" "$n" "$@"; }

ts_of() { jts "$@"; }

# next_tick T0 PERIOD: the first T0 + k*PERIOD (k >= 1) later than now.
next_tick() { awk -v t="$1" -v p="$2" -v n="$(now)" 'BEGIN { while (t <= n) t += p; printf "%.3f", t }'; }
# sleep_until T: sleep until Unix time T (returns at once if it has passed).
sleep_until() {
  local d
  d=$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
  sleep "$d"
}

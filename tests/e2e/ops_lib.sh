# tests/e2e/ops_lib.sh — helpers for the operations scenarios
# (tests/e2e/3NN-ops-*.sh). Sourced instead of tunnel_lib.sh (it sources it).
# shellcheck shell=bash
#
#   management  mcode ADDR PATH [TOKEN] -> HTTP status ("000": no answer)
#               mbody ADDR PATH [TOKEN] -> body
#               scrape ADDR FILE [TOKEN] (GET /metrics into FILE)
#               mval FILE SERIES -> the value of one series ('name{labels}' as
#               printed), empty when absent | mdelta A B SERIES -> B - A
#               jq_py EXPR < JSON -> the Python expression EXPR over d = the JSON
#   ops.py      ops CMD ARGS... (the Python tool below, written to $WORK/ops.py):
#     servers   pump PORT [--host H]: per connection, a command line, then
#                 "SRC RATE SECONDS [BYTES]"
#                                     send at RATE B/s (0: as fast as possible)
#                                     for SECONDS (0: until the client closes)
#                                     or BYTES, then close
#                 "SINK FILE"         read until EOF, recording the received
#                                     bytes over time in FILE ("-": none), then
#                                     answer "n=<len> sha256=<hex>"
#                 "ECHO"              echo every byte back
#     clients   recv HOST PORT CMD [--samples F] [--max S] [--stop FILE] [--src IP]
#                 send CMD, then read and record (unix time, cumulative bytes)
#                 every 20 ms; JSON {bytes, seconds, end}
#               send HOST PORT CMD [--rate R] [--max S] [--stop FILE] [--samples F] [--bytes N]
#                 send CMD, then data at R B/s (0: flat out) for S s (or N bytes), half-close,
#                 JSON {sent, reply, end}
#               idle HOST PORT [--every E] [--max S]: "ECHO", then a byte every
#                 E s (0: none); JSON {closed, open_for, since_last, echoed}
#               flood HOST PORT N [--src IP] [--rate R] [--conc C] [--hold H]
#                 N non-blocking connection attempts (R per second, at most C
#                 in flight); each connected one waits H s for the server to
#                 close it: JSON {attempts, closed, open, failed, seconds}
#     analysis  rate FILE A B: mean bytes/s of a samples file between unix times A, B
#               medians FILE A B STEP: the median of the rates of STEP-s intervals
#   agent side  ns_pump NAME PORT (an ops.py pump where the agent runs)
#   host side   host_pump NAME PORT
#   logs        jcount_ge N LOG FILTER... (at least N matching lines; for wait_until)
#   arithmetic  calc EXPR (awk; e.g. calc "$a / $b") | past T (now > Unix time T)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  exit 0      # a helper, not a scenario (tests/run-e2e runs every *.sh)
fi

. "$(dirname "${BASH_SOURCE[0]}")/tunnel_lib.sh"

OPS_PY=$WORK/ops.py
cat > "$OPS_PY" <<'PYEOF'
import errno, hashlib, json, os, selectors, socket, statistics, sys, threading, time

BLOCK = bytes(range(256)) * 256          # 64 KiB
IP_BIND_ADDRESS_NO_PORT = 24


def opts(argv, spec):
    """--key value options (spec: name -> type) after the positional ones."""
    pos, o, i = [], {k: d for k, (t, d) in spec.items()}, 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and a[2:] in spec:
            o[a[2:]] = spec[a[2:]][0](argv[i + 1])
            i += 2
        else:
            pos.append(a)
            i += 1
    return pos, o


class Samples:
    def __init__(self, path, every=0.02):
        self.f = open(path, "w", buffering=1) if path and path != "-" else None
        self.n, self.last, self.every = 0, 0.0, every
        self.mark()

    def mark(self):
        self.last = time.time()
        if self.f:
            self.f.write("%.4f %d\n" % (self.last, self.n))

    def add(self, n):
        self.n += n
        if time.time() - self.last >= self.every:
            self.mark()

    def close(self):
        self.mark()
        if self.f:
            self.f.close()


def pace_send(sock, rate, seconds, stop=None, samples=None, limit=0):
    t0, sent = time.time(), 0
    while True:
        t = time.time() - t0
        if limit and sent >= limit:
            return sent, "bytes"
        if seconds and t >= seconds:
            return sent, "max"
        if stop and os.path.exists(stop):
            return sent, "stop"
        if rate:
            want = int(rate * t) - sent
            if want < 4096:
                time.sleep(0.002)
                continue
            n = min(want, len(BLOCK))
        else:
            n = len(BLOCK)
        if limit:
            n = min(n, limit - sent)
        sock.sendall(BLOCK[:n])
        sent += n
        if samples:
            samples.add(n)


# ---- pump server ----------------------------------------------------------

def read_line(c):
    buf = b""
    while b"\n" not in buf and len(buf) < 1024:
        d = c.recv(1)
        if not d:
            break
        buf += d
    return buf.decode(errors="replace").strip()


def handle(c):
    try:
        cmd = read_line(c).split()
        if not cmd:
            return
        if cmd[0] == "SRC":
            pace_send(c, float(cmd[1]), float(cmd[2]), limit=int(cmd[3]) if len(cmd) > 3 else 0)
            c.shutdown(socket.SHUT_WR)
            c.settimeout(5)
            while c.recv(65536):
                pass
        elif cmd[0] == "SINK":
            s = Samples(cmd[1] if len(cmd) > 1 else "-")
            h, n = hashlib.sha256(), 0
            while True:
                d = c.recv(262144)
                if not d:
                    break
                h.update(d)
                n += len(d)
                s.add(len(d))
            s.close()
            c.sendall(("n=%d sha256=%s\n" % (n, h.hexdigest())).encode())
        elif cmd[0] == "ECHO":
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
    except OSError:
        pass
    finally:
        c.close()


def pump(argv):
    pos, o = opts(argv, {"host": (str, "127.0.0.1")})
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((o["host"], int(pos[0])))
    s.listen(1024)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


# ---- clients ----------------------------------------------------------------

def connect(host, port, src=None, timeout=10):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((host, int(port)))
    return s


def recv_client(argv):
    pos, o = opts(argv, {"samples": (str, "-"), "max": (float, 60.0), "stop": (str, ""), "src": (str, "")})
    t0 = time.time()
    s = connect(pos[0], pos[1], o["src"] or None)
    s.sendall((pos[2] + "\n").encode())
    smp = Samples(o["samples"])
    s.settimeout(0.1)
    end = "max"
    while time.time() - t0 < o["max"]:
        if o["stop"] and os.path.exists(o["stop"]):
            end = "stop"
            break
        try:
            d = s.recv(262144)
        except socket.timeout:
            continue
        except OSError as e:
            end = "error:%s" % e
            break
        if not d:
            end = "eof"
            break
        smp.add(len(d))
    smp.close()
    s.close()
    print(json.dumps({"bytes": smp.n, "seconds": round(time.time() - t0, 3), "end": end}))


def send_client(argv):
    pos, o = opts(argv, {"rate": (float, 0.0), "max": (float, 10.0), "stop": (str, ""), "samples": (str, "-"),
                         "bytes": (int, 0)})
    s = connect(pos[0], pos[1])
    s.sendall((pos[2] + "\n").encode())
    smp = Samples(o["samples"])
    try:
        sent, end = pace_send(s, o["rate"], o["max"], o["stop"] or None, smp, o["bytes"])
        smp.close()
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        reply = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            reply += d
    except OSError as e:
        sent, end, reply = smp.n, "error:%s" % e, b""
    print(json.dumps({"sent": sent, "end": end, "reply": reply.decode(errors="replace").strip()}))


def idle_client(argv):
    pos, o = opts(argv, {"every": (float, 0.0), "max": (float, 10.0)})
    t0 = time.time()
    s = connect(pos[0], pos[1])
    s.sendall(b"ECHO\n")
    last = time.time()
    nxt = t0 + o["every"] if o["every"] else None
    echoed, closed, why = 0, False, ""
    while time.time() - t0 < o["max"]:
        if nxt and time.time() >= nxt:
            try:
                s.sendall(b".")
            except OSError as e:
                closed, why = True, "send: %s" % e
                break
            last = time.time()
            nxt += o["every"]
        wait = 0.05 if not nxt else max(0.001, min(0.05, nxt - time.time()))
        s.settimeout(wait)
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        except OSError as e:
            closed, why = True, "recv: %s" % e
            break
        if not d:
            closed, why = True, "eof"
            break
        echoed += len(d)
        last = time.time()
    t = time.time()
    s.close()
    print(json.dumps({"closed": closed, "why": why, "open_for": round(t - t0, 3),
                      "since_last": round(t - last, 3), "echoed": echoed}))


def flood(argv):
    pos, o = opts(argv, {"src": (str, ""), "rate": (float, 0.0), "conc": (int, 200), "hold": (float, 0.3),
                         "timeout": (float, 3.0)})
    host, port, n = pos[0], int(pos[1]), int(pos[2])
    sel = selectors.DefaultSelector()
    pending = {}
    cnt = {"closed": 0, "open": 0, "failed": 0, "data": 0}
    started, t0 = 0, time.time()

    def done(s, what):
        cnt[what] += 1
        sel.unregister(s)
        del pending[s]
        s.close()

    while started < n or pending:
        t = time.time()
        while started < n and len(pending) < o["conc"] and (not o["rate"] or started < o["rate"] * (t - t0) + 1):
            started += 1
            s = socket.socket()
            s.setblocking(False)
            if o["src"]:
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((o["src"], 0))
            err = s.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                cnt["failed"] += 1
                s.close()
                continue
            pending[s] = ["connecting", t + o["timeout"]]
            sel.register(s, selectors.EVENT_WRITE)
        for key, _ in sel.select(timeout=0.002):
            s = key.fileobj
            st = pending[s]
            if st[0] == "connecting":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    done(s, "failed")
                    continue
                st[0], st[1] = "connected", time.time() + o["hold"]
                sel.modify(s, selectors.EVENT_READ)
            else:
                try:
                    d = s.recv(1)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                done(s, "data" if d else "closed")
        t = time.time()
        for s, st in list(pending.items()):
            if t > st[1]:
                done(s, "failed" if st[0] == "connecting" else "open")
    cnt["attempts"] = n
    cnt["seconds"] = round(time.time() - t0, 3)
    print(json.dumps(cnt))


# ---- analysis -----------------------------------------------------------------

def load(path):
    pts = []
    for line in open(path):
        p = line.split()
        if len(p) == 2:
            pts.append((float(p[0]), int(p[1])))
    return pts


def at(pts, t):
    """Cumulative bytes at time t (linear between samples)."""
    if not pts or t <= pts[0][0]:
        return pts[0][1] if pts else 0
    for (ta, na), (tb, nb) in zip(pts, pts[1:]):
        if ta <= t <= tb:
            return na if tb == ta else na + (nb - na) * (t - ta) / (tb - ta)
    return pts[-1][1]


def rate(argv):
    pts, a, b = load(argv[0]), float(argv[1]), float(argv[2])
    print("%.0f" % ((at(pts, b) - at(pts, a)) / (b - a)))


def medians(argv):
    pts, a, b, step = load(argv[0]), float(argv[1]), float(argv[2]), float(argv[3])
    rates, t = [], a
    while t + step <= b + 1e-9:
        rates.append((at(pts, t + step) - at(pts, t)) / step)
        t += step
    print("%.0f" % statistics.median(rates) if rates else "0")


CMDS = {"pump": pump, "recv": recv_client, "send": send_client, "idle": idle_client, "flood": flood,
        "rate": rate, "medians": medians}

if __name__ == "__main__":
    CMDS[sys.argv[1]](sys.argv[2:])
PYEOF

ops() { "$PY" "$OPS_PY" "$@"; }

ns_pump() {
  start "$1" "${IN_NS[@]}" "$PY" -u "$OPS_PY" pump "$2"
  ns_wait_port "$2" 10 || { diag "pump $1 did not listen on $2" "$(cat "$WORK/$1.log")"; return 1; }
}

host_pump() {
  start "$1" "$PY" -u "$OPS_PY" pump "$2"
  wait_port "$2" 10 || { diag "pump $1 did not listen on $2" "$(cat "$WORK/$1.log")"; return 1; }
}

# (parenthesised: a bare ">" in awk's printf would redirect to a file)
calc() { awk "BEGIN { printf \"%.3f\", ($1) }"; }

# jcount_ge N LOG FILTER...: at least N matching JSON log lines (for wait_until,
# which evaluates its arguments once).
jcount_ge() { local n=$1; shift; [ "$(jcount "$@")" -ge "$n" ]; }

# past T: the clock is past the Unix time T (for wait_until).
past() { awk -v t="$1" -v n="$(now)" 'BEGIN { exit !(n > t) }'; }

# ---------------------------------------------------------------------------
# The management endpoint

mcode() {
  local h=()
  [ -n "${3:-}" ] && h=(-H "Authorization: Bearer $3")
  curl -s -o /dev/null --max-time 5 -w '%{http_code}' "${h[@]}" "http://$1$2"
}

mbody() {
  local h=()
  [ -n "${3:-}" ] && h=(-H "Authorization: Bearer $3")
  curl -s --max-time 5 "${h[@]}" "http://$1$2"
}

scrape() { mbody "$1" /metrics "${3:-}" > "$2"; }

mval() { awk -v k="$2" '$1 == k { print $2; exit }' "$1"; }

mdelta() { awk -v a="$(mval "$1" "$3")" -v b="$(mval "$2" "$3")" 'BEGIN { printf "%.0f", b - a }'; }

jq_py() { "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

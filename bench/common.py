#!/usr/bin/python3
"""common.py — what bench.py (the router bench) and tunnel_bench.py (the relay
and agent bench) share: the knobs both read (BENCH_REPS, BENCH_SECS,
BENCH_ONLY, BENCH_NGINX_WORKERS, BENCH_TUNNEL_CONFIG; each script's docstring
documents them), processes started and stopped by PID, free ports, /proc
sampling, statistics, the nginx backend, the iperf3 and wrk clients,
bench/holdconns.py, and BaseBench: the run and report machinery (warm-up,
rounds of interleaved contestants, medians and ratios, the report's common
sections, runs CSV and results JSON, main()). Standard library only.

Every process is started through PROCS and stopped by its PID (with the
children it made, checked by start time): never by name, other people's
processes run on this machine.
"""
import csv
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# ---------------------------------------------------------------------------
# The knobs both benchmarks read.

REPS = int(os.environ.get("BENCH_REPS", "5"))
SECS = int(os.environ.get("BENCH_SECS", "3"))
# One nginx worker: on 2 cores the client (wrk -t2) and the proxy under test
# already want both; a second worker only adds a process competing with the
# proxy, and one worker serves direct loopback faster than either proxy goes.
NGINX_WORKERS = os.environ.get("BENCH_NGINX_WORKERS", "1")
# Experiments only (by hand, to explain a MISS); the report says when it is set.
TUNNEL_CONFIG = os.environ.get("BENCH_TUNNEL_CONFIG", "").strip()  # e.g. "buffer_size = 16384"
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").replace(" ", "").split(",") if w]
HTTP_HOST = "www.bench.test"


def workloads(names):
    """names, less those BENCH_ONLY (when set) leaves out."""
    return [w for w in names if not ONLY or w in ONLY]


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# Processes: started here, stopped here, by PID.

class Procs:
    def __init__(self):
        self.live = []      # (name, Popen)

    def start(self, name, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, **kw)
        self.live.append((name, p))
        return p

    @staticmethod
    def descendants(pid):
        """(PID, start time) of pid's children, grandchildren, ... (nginx workers)."""
        kids = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                kids.setdefault(int(fields[1]), []).append((int(d), fields[19]))
            except (OSError, IndexError, ValueError):
                continue
        out, todo = [], [pid]
        while todo:
            for k in kids.get(todo.pop(), []):
                out.append(k)
                todo.append(k[0])
        return out

    @staticmethod
    def kill_if_same(pid, start):
        """SIGKILL pid only if it is still the process we saw (same start time)."""
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[19] != start:
                    return
            os.kill(pid, signal.SIGKILL)
        except (OSError, IndexError):
            pass

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            kids = self.descendants(p.pid)
            try:
                p.terminate()
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for pid, start in kids:     # children it left behind (nginx workers), by PID
                self.kill_if_same(pid, start)
        self.live = [(n, q) for n, q in self.live if q is not p]

    def run(self, name, argv, timeout):
        """Run a client to completion; it is stopped with the rest on a signal."""
        p = self.start(name, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(p)
            out, err = "", "%s: timed out after %d s" % (name, timeout)
        self.live = [(n, q) for n, q in self.live if q is not p]
        return subprocess.CompletedProcess(argv, p.returncode, out, err)

    def stop_all(self):
        for _, p in list(reversed(self.live)):
            try:
                self.stop(p)
            except Exception:       # keep going: every other PID still gets stopped
                pass


PROCS = Procs()


def on_signal(signum, frame):
    PROCS.stop_all()
    sys.exit(128 + signum)


# ---------------------------------------------------------------------------
# Small helpers: ports, /proc sampling, statistics.

def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def listening(port):
    want = ":%04X" % port
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def wait_listening(ports, procs, what, timeout=10.0):
    """Wait until every port listens; procs (a Popen or a list of them) must
    not exit meanwhile."""
    if not isinstance(procs, (list, tuple)):
        procs = [procs]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError("%s exited with status %s at start" % (what, p.returncode))
        if all(listening(p) for p in ports):
            return
        time.sleep(0.05)
    raise RuntimeError("%s is not listening on %s after %.0f s" % (what, ports, timeout))


def proc_status(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tree_cpu_ticks(pid):
    """utime+stime of pid and its descendants (all threads), in clock ticks."""
    total = 0
    for p in [pid] + [k for k, _ in Procs.descendants(pid)]:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def runqueue_wait_ns(pid):
    """Time the threads of pid and its descendants spent runnable but not
    running (schedstat), in ns."""
    total = 0
    for p in [pid] + [k for k, _ in Procs.descendants(pid)]:
        try:
            tasks = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/schedstat" % (p, t)) as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return total


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v), idle


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def raise_nofile(want):
    """Raise RLIMIT_NOFILE's soft limit to want (and the hard one when allowed:
    root may); children inherit it. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    return soft


def install_signal_handlers():
    """Stop every started process on exit and on SIGINT/SIGTERM/SIGHUP."""
    import atexit
    atexit.register(PROCS.stop_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)


# ---------------------------------------------------------------------------
# CPU of watched processes over a run.

def sample(procs):
    """procs: name -> Popen (or None). A snapshot for cpu_pct."""
    return ({k: tree_cpu_ticks(v.pid) for k, v in procs.items() if v},
            {k: runqueue_wait_ns(v.pid) for k, v in procs.items() if v},
            machine_ticks(), time.monotonic())


def cpu_pct(before, after):
    """CPU % per watched process over the run (100 = one core), the % of
    the run its threads spent runnable but waiting for a CPU, and how busy
    the whole machine was."""
    (b, wb, (mt0, mi0), t0), (a, wa, (mt1, mi1), t1) = before, after
    wall = t1 - t0
    out = {k: round(100.0 * (a[k] - b[k]) / TICK / wall, 1) for k in a if k in b}
    out.update({k + "_rqwait": round(100.0 * (wa[k] - wb[k]) / 1e9 / wall, 1) for k in wa if k in wb})
    out["machine_busy"] = round(100.0 * (1 - (mi1 - mi0) / max(1, mt1 - mt0)), 1)
    return out


# ---------------------------------------------------------------------------
# Backends: nginx serving a 1 KiB file, iperf3 -s.

def fill(template, values):
    """Replace each {key} of values in template (Lua and nginx use braces too)."""
    for k, v in values.items():
        template = template.replace("{%s}" % k, str(v))
    return template


def nginx_config(out, port, workers, generator="bench/bench.py"):
    d = os.path.join(out, "nginx")
    return """\
# generated by {generator}: the HTTP backend, the same for every contestant.
daemon off;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    default_type application/octet-stream;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {out}/www;
        location / {{ }}
    }}
}}
""".format(generator=generator, workers=workers, d=d, out=out, port=port)


def start_nginx(out, port, workers, cmds, generator="bench/bench.py", readable=()):
    """nginx on 127.0.0.1:port serving out/www/1k.bin; config in out/nginx,
    stderr in out/nginx.stderr. readable: more directories nginx's workers
    (nobody, when run as root) must be able to enter."""
    www = os.path.join(out, "www")
    os.makedirs(www, exist_ok=True)
    os.makedirs(os.path.join(out, "nginx", "tmp"), exist_ok=True)
    with open(os.path.join(www, "1k.bin"), "wb") as f:
        f.write(bytes((i * 7 + 13) & 0xff for i in range(1024)))
    for d in tuple(readable) + (out, www):      # nginx workers (nobody) read the file
        os.chmod(d, 0o755)
    conf = os.path.join(out, "nginx", "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_config(out, port, workers, generator))
    argv = ["nginx", "-p", os.path.join(out, "nginx"), "-e",
            os.path.join(out, "nginx", "error.log"), "-c", conf]
    cmds["nginx"] = " ".join(argv)
    p = PROCS.start("nginx", argv, stdout=subprocess.DEVNULL,
                    stderr=open(os.path.join(out, "nginx.stderr"), "w"))
    wait_listening([port], p, "nginx")
    return p


def start_iperf_server(port, cmds):
    argv = ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)]
    cmds["iperf3 server"] = " ".join(argv)
    p = PROCS.start("iperf3", argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening([port], p, "iperf3 -s")
    return p


# ---------------------------------------------------------------------------
# Clients: iperf3 and wrk, parsed.

def run_iperf(port, streams, secs):
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(secs), "-O", "1", "-J"]
    if streams > 1:
        argv += ["-P", str(streams)]
    last = None
    for attempt in range(4):
        r = PROCS.run("iperf3", argv, secs + 30)
        try:
            j = json.loads(r.stdout)
        except ValueError:
            j = {"error": (r.stderr or r.stdout).strip()[:200]}
        if "error" not in j:
            s = j["end"]["sum_received"]
            retr = j["end"].get("sum_sent", {}).get("retransmits")
            return {"gbps": s["bits_per_second"] / 1e9, "retransmits": retr}
        last = j["error"]
        time.sleep(1.0)           # "the server is busy": the last test is still closing
    return {"gbps": None, "error": last}


WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(port, close, secs, host):
    argv = ["wrk", "-t2", "-c50", "-d%ds" % secs, "--latency", "-H", "Host: " + host]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append("http://127.0.0.1:%d/1k.bin" % port)
    r = PROCS.run("wrk", argv, secs + 30)
    out = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res = {"rps": float(m.group(1)) if m else None}
    for pct in (50, 90, 99):
        q = re.search(r"^\s+%d%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, out, re.M)
        res["p%d_ms" % pct] = float(q.group(1)) * WRK_UNITS[q.group(2)] if q else None
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in errs.groups()) if errs else 0
    res["timeouts"] = int(errs.group(4)) if errs else 0
    res["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    if res["rps"] is None:
        res["error"] = (r.stderr or out).strip()[:200]
    return res


def cost(workload, cpu, row):
    """CPU per unit of work, cpu being the % of a core the contestant used
    over the run (row): ms per GB for iperf3, µs per request or connection
    for wrk. Independent of how much CPU the busy machine left it."""
    if cpu is None:
        return {}
    if workload.startswith("iperf"):
        # rate over rate: CPU-seconds per second over GB per second
        gbs = (row.get("gbps") or 0) / 8
        return {"cpu_ms_per_gb": round(cpu / 100 * 1000 / gbs, 1)} if gbs else {}
    rps = row.get("rps")
    return {"cpu_us_per_req": round(cpu / 100 * 1e6 / rps, 2)} if rps else {}


# ---------------------------------------------------------------------------
# bench/holdconns.py: idle connections through a contestant.

HOLDCONNS = os.path.join(HERE, "holdconns.py")


def start_holdconns(args, **kw):
    """Start bench/holdconns.py with args and wait until it holds them all.
    Returns (its process, its READY line or what it said instead)."""
    h = PROCS.start("holdconns", [sys.executable, HOLDCONNS] + [str(a) for a in args],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kw)
    first = h.stdout.readline().strip()
    ready = h.stdout.readline().strip() if first == "LISTENING" else first
    return h, ready


def held(ready):
    """How many connections holdconns.py's READY line says it holds."""
    return int(ready.split()[1]) if len(ready.split()) > 1 else 0


def stop_holdconns(h, timeout):
    """Let holdconns.py close its connections and exit, then stop it."""
    try:
        h.stdin.write("\n")
        h.stdin.flush()
        h.wait(timeout)
    except (OSError, subprocess.TimeoutExpired):
        pass
    PROCS.stop(h)


# ---------------------------------------------------------------------------
# The machine, for the report's header.

def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return ((r.stdout or "") + (r.stderr or "")).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def read_sysctl(path):
    try:
        with open(path) as f:
            return " ".join(f.read().split())
    except OSError:
        return "?"


def cpuinfo(field):
    """The first value of field in /proc/cpuinfo, or None."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    return None


def machine_meta():
    """date, CPU, kernel, load, client/backend versions, the sysctls that matter."""
    cpu = cpuinfo("model name") or "?"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpu_model": cpu, "cpus": os.cpu_count(), "kernel": os.uname().release,
        "loadavg": " ".join(read_sysctl("/proc/loadavg").split()[:3]),
        "nginx_version": first_line(["nginx", "-v"]).split("/")[-1],
        "iperf3_version": first_line(["iperf3", "-v"]).split(" ")[1] if shutil.which("iperf3") else "?",
        "wrk_version": first_line(["wrk", "-v"]).split(" ")[1] if shutil.which("wrk") else "?",
        "somaxconn": read_sysctl("/proc/sys/net/core/somaxconn"),
        "tw_reuse": read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse"),
        "port_range": read_sysctl("/proc/sys/net/ipv4/ip_local_port_range"),
    }


# ---------------------------------------------------------------------------
# Report formatting.

def align_tables(lines):
    """Pad markdown table cells so that the table reads as well on a terminal."""
    out, block = [], []

    def flush():
        if not block:
            return
        cells = [[c.strip() for c in l.strip().strip("|").split("|")] for l in block]
        widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(cells[0]))]
        sep = [r for r in cells if all(set(c) <= set("-:") for c in r)]
        right = [c.endswith(":") for c in sep[0]] if sep else [False] * len(widths)
        for r in cells:
            if r in sep:
                out.append("|" + "|".join("-" * (w + 1) + ":" if rt else "-" * (w + 2)
                                          for w, rt in zip(widths, right)) + "|")
            else:
                out.append("| " + " | ".join(c.rjust(w) if rt else c.ljust(w)
                                             for c, w, rt in zip(r, widths, right)) + " |")
        block.clear()

    for l in lines:
        if l.startswith("|"):
            block.append(l)
        else:
            flush()
            out.append(l)
    flush()
    return out


def table(head, align, rows):
    """A markdown table: head, the column names; align, "l" or "r" per column;
    rows, lists of cells. align_tables() pads it."""
    return (["| " + " | ".join(head) + " |", "|" + "".join("---:|" if a == "r" else "---|" for a in align)] +
            ["| " + " | ".join(r) + " |" for r in rows])


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, digits, suffix=""):
    if v is None:
        return "n/a"
    return ("%%.%df%%s" % digits) % (v, suffix)


def short(row, keys):
    """A run on one line: those of keys it has."""
    return " ".join("%s=%s" % (k, ("%.3g" % row[k]) if isinstance(row[k], float) else row[k])
                    for k in keys if row.get(k) is not None)


# ---------------------------------------------------------------------------
# The run and report machinery.

# The lines of the throughput and latency table: (workload, label, unit, key
# of the runs, which is better). Those of workloads a bench does not run are
# left out.
SPEC = [("iperf1", "iperf3 1 stream", "Gbit/s", "gbps", "higher"),
        ("iperf8", "iperf3 8 streams", "Gbit/s", "gbps", "higher"),
        ("wrk_ka", "wrk keep-alive (50 conns)", "req/s", "rps", "higher"),
        ("wrk_ka", "wrk keep-alive p50", "ms", "p50_ms", "lower"),
        ("wrk_ka", "wrk keep-alive p99", "ms", "p99_ms", "lower"),
        ("wrk_close", "wrk Connection: close", "conn/s", "rps", "higher"),
        ("wrk_close", "wrk Connection: close p50", "ms", "p50_ms", "lower"),
        ("wrk_close", "wrk Connection: close p99", "ms", "p99_ms", "lower")]


# The first columns of each bench's runs CSV: the run and what its client reported.
CLIENT_KEYS = ["workload", "round", "contestant", "gbps", "retransmits", "rps", "p50_ms", "p90_ms", "p99_ms",
               "socket_errors", "timeouts", "non2xx"]


class BaseBench:
    """A benchmark of contestants, each a path from the iperf3 and wrk clients
    to the same backends (iperf3 -s, nginx), measured in rounds that run the
    contestants back to back. A subclass says what is its own: the class
    attributes below, and these methods:
      entry(who, service)        the port a client of service ("iperf" or "http")
                                 connects to through contestant who;
      watch(who, backend)        name -> Popen (or None) whose CPU is sampled over
                                 a run of who;
      cost(workload, row)        the run's cost per unit of work (see cost());
      throughput(), memory()     start the contestants and measure the workloads
                                 (measure(), record());
      cpu_summary(workload, per) the medians of a workload's CPU figures, for its
                                 summary row; memory_summary() those of MEMORY;
      sections(rows, mem)        the report's lines between header and targets;
      targets(rows, mem)         [(target, measured, verdict)] (ratio_target());
      meta_lines(elapsed)        the report's header (meta_head(), meta_tail());
      collect_meta()             self.meta, before the first run;
    and may change setup(), banner(), clean(), missing(), preflight(),
    raw_params()."""
    NAME = "bench"                  # what its log lines and errors start with
    USAGE = "usage: bench/run BUILD\n"
    TITLE = "# benchmark"           # the report's first line
    GENERATOR = "bench/bench.py"    # named in the generated configs
    ALL_WORKLOADS = []
    WORKLOADS = []                  # ALL_WORKLOADS less those BENCH_ONLY leaves out
    MEMORY = "memory"               # the workload that is not throughput and latency
    CONTESTANTS = []                # in the order of a round; "direct" first
    HEADS = {}                      # a contestant's column head, if not its name
    LOG_WIDTH = 8                   # of the contestant in a progress line
    SHORT_KEYS = ()                 # what a progress line shows of a run
    TOOLS = ("iperf3", "wrk", "nginx")
    RATIOS = []                     # (row key, numerator, denominator) of ratios of medians;
                                    # the first is the one the targets judge
    ROUNDS = None                   # (row key, numerator, denominator) of the per-round ratios
    VERSUS = ""                     # the targets' reference, as the report names it
    RATIO_DIGITS = 2                # of the targets' ratios
    TARGETS_NOTE = ""               # the paragraph under the targets
    PORT_NOTE = ""                  # the Commands list's last line: what PORT is
    REPORT_MD, RUNS_CSV, RESULTS_JSON = "report.md", "runs.csv", "results.json"
    CSV_KEYS = []

    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tunnel_bin = os.path.join(self.build, "tunnel")
        self.out = os.path.join(self.build, "bench")
        self.work = self.out    # where the generated configs go
        self.runs = []          # one dict per measured run
        self.meta = {}
        self.notes = []         # warnings of the set-up, for the report
        self.cmds = {}
        self.servers = {}       # name -> Popen (backends)
        self.stalls = None      # bench/stallprobe.py's output file ("": no probe)

    # -- what a subclass may change -------------------------------------------

    def setup(self):
        """Before the clock starts: limits, notes. Nothing started yet."""

    def banner(self):
        """The log lines before the first run."""

    def run(self):
        """Start the backends and measure every workload; RuntimeError if the
        set-up broke."""
        self.start_backends()
        if any(w != self.MEMORY for w in self.WORKLOADS):
            self.throughput()
        if self.MEMORY in self.WORKLOADS:
            self.memory()

    def clean(self):
        """Remove what earlier runs of this bench wrote."""

    def missing(self):
        return [t for t in self.TOOLS if not shutil.which(t)]

    def preflight(self):
        """Why it cannot run here (after the tools and the build are found), or None."""
        return None

    # -- backends --------------------------------------------------------------

    def start_backends(self):
        self.ports = dict(zip(["iperf", "http"], free_ports(2)))
        if any(w.startswith("iperf") for w in self.WORKLOADS):
            self.servers["iperf3"] = start_iperf_server(self.ports["iperf"], self.cmds)
        if any(w.startswith("wrk") for w in self.WORKLOADS):
            self.servers["nginx"] = start_nginx(self.work, self.ports["http"], NGINX_WORKERS, self.cmds,
                                                generator=self.GENERATOR, readable=(self.out,))

    # -- measured runs ----------------------------------------------------------

    def target(self, who, workload):
        service = "iperf" if workload.startswith("iperf") else "http"
        return self.ports[service] if who == "direct" else self.entry(who, service)

    def run_once(self, workload, who, secs):
        port = self.target(who, workload)
        if workload.startswith("iperf"):
            return run_iperf(port, 8 if workload == "iperf8" else 1, secs)
        return run_wrk(port, workload == "wrk_close", secs, HTTP_HOST)

    def record(self, row):
        """Keep a measured run and log it on one line."""
        self.runs.append(row)
        log("  %-9s round %d/%d %-*s %s" % (row["workload"], row["round"], REPS, self.LOG_WIDTH,
                                            row["contestant"], short(row, self.SHORT_KEYS)))

    def start_stall_probe(self):
        """bench/stallprobe.py beside the runs (once), or a note why not."""
        if self.stalls is not None:
            return
        self.stalls = os.path.join(self.out, "host-stalls-%s.txt" % self.NAME)
        open(self.stalls, "w").close()
        p = PROCS.start("stallprobe", [sys.executable, os.path.join(HERE, "stallprobe.py"), self.stalls],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.2)
        if p.poll() is not None:
            self.notes.append("no host-stall probe (%s): rounds the host stopped are not marked" %
                              p.stderr.read().decode(errors="replace").strip())
            self.stalls = ""

    def stall_ms(self, t0, t1):
        """The longest host stall (ms, of any CPU) that overlapped [t0, t1], or None."""
        if not self.stalls:
            return None
        worst = None
        with open(self.stalls) as f:
            for line in f:
                try:
                    end, gap = (float(x) for x in line.split()[:2])
                except ValueError:
                    continue
                if end > t0 and end - gap / 1e3 < t1:
                    worst = max(worst or 0.0, gap)
        return worst

    def measure(self, work):
        """Warm-up, then REPS rounds of each workload of work, every round
        running the contestants back to back, so that the machine's drift hits
        all alike. Each run records the client's figures, the CPU of what
        watch() names and its cost per unit of work."""
        # Warm-up, not recorded: nginx's file cache, the contestants' buffer
        # pools, the kernel's socket caches.
        self.start_stall_probe()
        log("warm-up (1 s per contestant and workload kind, not recorded)")
        for w in sorted({("iperf1" if w.startswith("iperf") else "wrk_ka") for w in work}):
            for who in self.CONTESTANTS:
                self.run_once(w, who, 1)
                time.sleep(0.3)
        for w in work:
            for rnd in range(1, REPS + 1):
                for who in self.CONTESTANTS:
                    watch = self.watch(who, self.servers["iperf3" if w.startswith("iperf") else "nginx"])
                    before = sample(watch)
                    t0 = time.monotonic()
                    res = self.run_once(w, who, SECS)
                    t1 = time.monotonic()
                    cpu = cpu_pct(before, sample(watch))
                    row = {"workload": w, "round": rnd, "contestant": who}
                    row.update(res)
                    stall = self.stall_ms(t0, t1)
                    if stall:
                        row["host_stall_ms"] = round(stall)
                    row.update({"cpu_" + k: v for k, v in cpu.items()})
                    row.update(self.cost(w, row))
                    self.record(row)
                    time.sleep(0.3 if w.startswith("wrk") else 0.5)

    # -- summary ----------------------------------------------------------------

    def values(self, workload, who, key):
        return [r.get(key) for r in self.runs if r["workload"] == workload and r["contestant"] == who]

    def medians(self, workload, contestants, keys):
        """contestant -> name -> median of the runs' key; keys: names that are
        the runs' keys, or a dict name -> key."""
        keys = keys if isinstance(keys, dict) else {k: k for k in keys}
        return {who: {k: median(self.values(workload, who, v)) for k, v in keys.items()} for who in contestants}

    def round_ratios(self, workload, key, num, den, marks=None):
        """num/den of each round; marks, if a list, gets for each whether a host
        stall fell in either run."""
        out = []
        for rnd in range(1, REPS + 1):
            a = [r for r in self.runs if r["workload"] == workload and r["round"] == rnd and r["contestant"] == num]
            b = [r for r in self.runs if r["workload"] == workload and r["round"] == rnd and r["contestant"] == den]
            if a and b and a[0].get(key) and b[0].get(key):
                out.append(a[0][key] / b[0][key])
                if marks is not None:
                    marks.append(bool(a[0].get("host_stall_ms") or b[0].get("host_stall_ms")))
        return out

    def summary(self):
        """(one row per line of the throughput and latency table, the memory summary)"""
        rows = []
        for w, label, unit, key, better in SPEC:
            if w not in self.WORKLOADS:
                continue
            med = {who: median(self.values(w, who, key)) for who in self.CONTESTANTS}
            row = {"workload": w, "label": label, "unit": unit, "key": key, "better": better, "median": med}
            row.update(self.cpu_summary(w, "cpu_ms_per_gb" if w.startswith("iperf") else "cpu_us_per_req"))
            row.update({"cost_unit": "CPU ms/GB" if w.startswith("iperf") else
                                     "CPU µs/conn" if w == "wrk_close" else "CPU µs/req",
                        "busy_pct": median(self.values(w, "tunnel", "cpu_machine_busy"))})
            row.update({k: ratio(med[num], med[den]) for k, num, den in self.RATIOS})
            k, num, den = self.ROUNDS
            marks = []
            row[k] = [round(x, 3) for x in self.round_ratios(w, key, num, den, marks)]
            row[k + "_stalled"] = marks
            rows.append(row)
        mem = self.memory_summary() if self.MEMORY in self.WORKLOADS else None
        return rows, mem

    def ratio_target(self, name, rows, workload, key, bound, want_ge):
        """(name, measured, verdict): the (workload, key) line's per-round
        ROUNDS ratios against bound (want_ge: at least bound, else at most).
        The verdict takes their median: each round runs the contestants back
        to back, so a ratio within a round is free of the drift between rounds,
        which a ratio of medians is not (one contestant's median can come from
        a slow stretch, the other's from a fast one). The ratio of medians (the
        first of RATIOS, the tables' figure) is shown beside it."""
        r = next((r for r in rows if (r["workload"], r["key"]) == (workload, key)), None)
        k = self.RATIOS[0][0]
        if not r or r[k] is None:
            return (name, "n/a", "n/a")
        rr = r[self.ROUNDS[0]]
        value = median(rr) if rr else r[k]
        ok = value >= bound if want_ge else value <= bound
        spread = ""
        if rr:
            lo, hi = min(rr), max(rr)
            spread = " (median of per-round ratios %.2f–%.2f%s; ratio of medians %.*f×)" % (
                lo, hi, ", straddles %.1f" % bound if lo < bound < hi else "", self.RATIO_DIGITS, r[k])
        return (name, "%.*f× %s%s" % (self.RATIO_DIGITS, value, self.VERSUS, spread), "PASS" if ok else "MISS")

    # -- report -----------------------------------------------------------------

    def ratio_table(self, rows):
        """The throughput and latency table: each contestant's median, RATIOS,
        and the per-round ROUNDS."""
        heads = [self.HEADS.get(c, c) for c in self.CONTESTANTS] + ["%s/%s" % (n, d) for _, n, d in self.RATIOS]
        body = []
        for r in rows:
            digits = 2 if r["unit"] in ("Gbit/s", "ms") else 0
            body.append([r["label"], r["unit"]] + [fmt(r["median"][c], digits) for c in self.CONTESTANTS] +
                        [fmt(r[k], 2, "×") for k, _, _ in self.RATIOS] +
                        [" ".join("%.2f%s" % (x, "*" if m else "") for x, m in
                                  zip(r[self.ROUNDS[0]], r[self.ROUNDS[0] + "_stalled"]))])
        return table(["workload", "unit"] + heads + ["per-round %s/%s" % self.ROUNDS[1:]],
                     "ll" + "r" * len(heads) + "l", body)

    def ratio_section(self, rows, connect_note=""):
        """The throughput and latency section: heading, ratio_table() and what
        its figures mean."""
        return (["## Throughput and latency (medians of %d interleaved rounds)" % REPS, ""] +
                self.ratio_table(rows) +
                ["", "Ratios are of medians; for latency lower is better (a ratio below 1.0 means the tunnel "
                     "is faster). wrk's latency runs from writing a request to reading its response: with "
                     "Connection: close it leaves out the TCP connect%s. A * marks a round in which a "
                     "CPU of the machine stopped for 20 ms or more (a host stall, seen by bench/stallprobe.py; "
                     "the Warnings list them): that round's latency says nothing about the contestants, "
                     "and the medians mostly leave it out." % connect_note])

    def meta_head(self, elapsed, cpus_extra=""):
        """The report header's first lines: date, machine, method."""
        m = self.meta
        return [
            "date: %s; total run time %.0f s" % (m["date"], elapsed),
            "machine: %s, %s CPUs%s, kernel %s; load average at start %s" % (
                m["cpu_model"], m["cpus"], cpus_extra, m["kernel"], m["loadavg"]),
            "method: %d rounds per figure, contestants interleaved %s in every round; %d s per run "
            "(iperf3 adds 1 s omitted warm-up); figures are medians, comparisons ratios of medians" % (
                REPS, " → ".join(self.CONTESTANTS), SECS),
        ]

    def meta_tail(self, nginx_extra="", sysctl_extra=""):
        """The report header's last lines: nginx, the clients, the sysctls."""
        m = self.meta
        return [
            "nginx: %s, worker_processes %s, 1 KiB static file, access_log off%s" % (
                m["nginx_version"], NGINX_WORKERS, nginx_extra),
            "iperf3 %s; wrk %s" % (m["iperf3_version"], m["wrk_version"]),
            "sysctl: somaxconn %s, tcp_tw_reuse %s, ip_local_port_range %s%s" % (
                m["somaxconn"], m["tw_reuse"], m["port_range"], sysctl_extra),
        ]

    def warnings(self):
        w = list(self.notes)
        for r in self.runs:
            if r.get("error"):
                w.append("%s round %d %s: %s" % (r["workload"], r["round"], r["contestant"], r["error"]))
            if r.get("host_stall_ms"):
                w.append("%s round %d %s: a host stall of %d ms fell in this run (a CPU of the machine "
                         "stopped; bench/stallprobe.py)" % (r["workload"], r["round"], r["contestant"], r["host_stall_ms"]))
            if r.get("socket_errors") or r.get("non2xx"):
                w.append("%s round %d %s: %d socket errors (%d timeouts), %d non-2xx responses" % (
                    r["workload"], r["round"], r["contestant"], r.get("socket_errors", 0),
                    r.get("timeouts", 0), r.get("non2xx", 0)))
        return w

    def report(self, elapsed):
        """Write REPORT_MD, RUNS_CSV and RESULTS_JSON, and print the report."""
        rows, mem = self.summary()
        targets = self.targets(rows, mem)
        md = [self.TITLE, ""] + ["- " + line for line in self.meta_lines(elapsed)] + [""]
        md += self.sections(rows, mem)
        md += ["", "## Targets", ""]
        md += table(["target", "measured", "verdict"], "lll", [[a, b, "**%s**" % c] for a, b, c in targets])
        md += ["", self.TARGETS_NOTE]
        warn = self.warnings()
        if warn:
            md += ["", "## Warnings", ""] + ["- " + w for w in warn]
        md += ["", "## Commands", ""] + ["- %s: `%s`" % kv for kv in self.cmds.items()]
        md.append("- iperf3 client: `iperf3 -c 127.0.0.1 -p PORT -t %d -O 1 -J%s`" % (
            SECS, " [-P 8]" if "iperf8" in self.ALL_WORKLOADS else ""))
        md.append("- wrk: `wrk -t2 -c50 -d%ds --latency -H 'Host: %s' [-H 'Connection: close'] "
                  "http://127.0.0.1:PORT/1k.bin`" % (SECS, HTTP_HOST))
        md.append("- PORT is " + self.PORT_NOTE)
        md += ["", "Raw per-run numbers: %s, %s." % (self.RUNS_CSV, self.RESULTS_JSON)]
        text = "\n".join(align_tables(md)) + "\n"
        with open(os.path.join(self.out, self.REPORT_MD), "w") as f:
            f.write(text)
        self.write_raw(rows, mem, targets, elapsed)
        print()
        print(text)

    def raw_params(self):
        """The results JSON's knobs beside reps and secs."""
        return {}

    def write_raw(self, rows, mem, targets, elapsed):
        with open(os.path.join(self.out, self.RUNS_CSV), "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=self.CSV_KEYS, extrasaction="ignore")
            wr.writeheader()
            for r in self.runs:
                wr.writerow(r)
        with open(os.path.join(self.out, self.RESULTS_JSON), "w") as f:
            json.dump({"meta": self.meta, "elapsed_s": round(elapsed, 1), "reps": REPS, "secs": SECS,
                       **self.raw_params(), "summary": rows, self.MEMORY: mem,
                       "targets": [{"target": a, "measured": b, "verdict": c} for a, b, c in targets],
                       "runs": self.runs, "commands": self.cmds}, f, indent=1)

    # -- main -------------------------------------------------------------------

    @classmethod
    def main(cls):
        """bench/run's entry: check, set up, run, report; the exit status."""
        if len(sys.argv) != 2:
            sys.stderr.write(cls.USAGE)
            return 2
        if not cls.WORKLOADS:       # BENCH_ONLY names only the other bench's workloads (bench/run runs both)
            log("%s: BENCH_ONLY=%s names none of %s; nothing to do" % (
                cls.NAME, ",".join(ONLY), ",".join(cls.ALL_WORKLOADS)))
            return 0
        b = cls(sys.argv[1])
        missing = b.missing()
        if missing:
            sys.stderr.write("%s: missing %s (make deps installs them)\n" % (cls.NAME, ", ".join(missing)))
            return 1
        if not os.access(b.tunnel_bin, os.X_OK):
            sys.stderr.write("%s: %s not built (make BUILD=%s all)\n" % (cls.NAME, b.tunnel_bin, sys.argv[1]))
            return 1
        why = b.preflight()
        if why:
            sys.stderr.write("%s: %s\n" % (cls.NAME, why))
            return 1
        os.makedirs(b.out, exist_ok=True)
        b.clean()
        install_signal_handlers()
        b.setup()
        t0 = time.monotonic()
        b.collect_meta()
        b.banner()
        try:
            b.run()
        except RuntimeError as e:
            sys.stderr.write("%s: %s\n" % (cls.NAME, e))
            PROCS.stop_all()
            return 1
        PROCS.stop_all()
        b.report(time.monotonic() - t0)
        return 0

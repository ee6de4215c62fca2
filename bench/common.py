#!/usr/bin/python3
"""common.py — what bench.py (the router bench) and tunnel_bench.py (the relay
and agent bench) share: processes started and stopped by PID, free ports,
/proc sampling, statistics, the nginx backend, the iperf3 and wrk clients,
and the report's table formatting. Standard library only.

Every process is started through PROCS and stopped by its PID (with the
children it made, checked by start time): never by name, other people's
processes run on this machine.
"""
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


def wait_listening(ports, proc, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with status %s at start" % (what, proc.returncode))
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


def machine_meta():
    """date, CPU, kernel, load, client/backend versions, the sysctls that matter."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
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


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, digits, suffix=""):
    if v is None:
        return "n/a"
    return ("%%.%df%%s" % digits) % (v, suffix)

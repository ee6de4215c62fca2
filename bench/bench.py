#!/usr/bin/python3
"""bench.py BUILD — the tunnel router beside direct loopback and haproxy `mode tcp`.

Started by bench/run (what `make bench` calls). Everything runs on 127.0.0.1 on
ports picked free at start; every process this script starts is stopped by PID
on exit (normal exit, error, SIGINT/SIGTERM/SIGHUP), with the children it made
(nginx workers).

Contestants, each a path from a client to the same backend:
  direct   the client talks to the backend itself;
  haproxy  haproxy `mode tcp`, generated config, default nbthread, no logging;
  tunnel   BUILD/tunnel run on a generated router script: route_table policy,
           iperf3 sniffed as opaque, HTTP routed by Host, log_level "warn".

Workloads (each repeated BENCH_REPS times, rounds interleaved direct, haproxy,
tunnel, direct, ... so that the machine's drift hits all three alike):
  iperf1    iperf3 -t SECS -O 1, one stream, client -> server;
  iperf8    the same with -P 8;
  wrk_ka    wrk -t2 -c50 -dSECS --latency, keep-alive, 1 KiB file from nginx;
  wrk_close the same with "Connection: close" (new connections per second);
  memory    (haproxy, tunnel) RSS idle after start, and with BENCH_CONNS idle
            spliced connections (bench/holdconns.py), fresh process each round.

Figures are medians; comparisons are ratios of medians, with the spread of the
per-round ratios beside them. A benchmark does not fail the build: the targets
are printed PASS/MISS and the exit status is 0 unless the set-up itself broke.

Environment: BENCH_REPS (5), BENCH_SECS (3), BENCH_CONNS (1000),
BENCH_ONLY (comma list of workloads), BENCH_NGINX_WORKERS (1); for experiments
only, BENCH_HAPROXY_GLOBAL / BENCH_HAPROXY_DEFAULTS add ";"-separated lines to
haproxy's config (e.g. "nbthread 1", "option splice-auto") and
BENCH_TUNNEL_CONFIG adds fields to tunnel.config{} (e.g. "buffer_size = 16384").
"""
import atexit
import csv
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True       # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (PROCS, align_tables, cpu_pct, fill, first_line, fmt, free_ports,  # noqa: E402
                    log, machine_meta, median, on_signal, proc_status, ratio, run_iperf, run_wrk,
                    sample, start_iperf_server, start_nginx, wait_listening)

# bench/profile.py reaches these through this module.
TICK = common.TICK
tree_cpu_ticks = common.tree_cpu_ticks
machine_ticks = common.machine_ticks

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

REPS = int(os.environ.get("BENCH_REPS", "5"))
SECS = int(os.environ.get("BENCH_SECS", "3"))
CONNS = int(os.environ.get("BENCH_CONNS", "1000"))
# One nginx worker: on 2 cores the client (wrk -t2) and the proxy under test
# already want both; a second worker only adds a process competing with the
# proxy, and one worker serves direct loopback faster than either proxy goes.
NGINX_WORKERS = os.environ.get("BENCH_NGINX_WORKERS", "1")


def _extra_lines(var):
    return "".join("    %s\n" % l.strip() for l in os.environ.get(var, "").split(";") if l.strip())


# Experiments only (by hand, to explain a MISS); the report says when they are set.
HAPROXY_GLOBAL = _extra_lines("BENCH_HAPROXY_GLOBAL")        # e.g. "nbthread 1"
HAPROXY_DEFAULTS = _extra_lines("BENCH_HAPROXY_DEFAULTS")    # e.g. "option splice-auto"
TUNNEL_CONFIG = os.environ.get("BENCH_TUNNEL_CONFIG", "").strip()  # e.g. "buffer_size = 16384"
# tunnel run --workers for the traffic workloads: "auto" = one per CPU, as
# haproxy's default nbthread is. The memory workload always uses one process
# (it measures per-connection memory of a single process).
TUNNEL_WORKERS = os.environ.get("BENCH_TUNNEL_WORKERS", "auto")
ALL_WORKLOADS = ["iperf1", "iperf8", "wrk_ka", "wrk_close", "memory"]
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").replace(" ", "").split(",") if w]
WORKLOADS = [w for w in ALL_WORKLOADS if not ONLY or w in ONLY]
CONTESTANTS = ["direct", "haproxy", "tunnel"]
HTTP_HOST = "www.bench.test"
HOLD_HOST = "hold.bench.test"

# ---------------------------------------------------------------------------
# Cost per unit of work.

def cost(workload, row):
    """Proxy CPU per unit of work: µs per request or connection, ms per GB.
    Independent of how much CPU the busy machine left the proxy."""
    cpu = row.get("cpu_proxy")
    if cpu is None:
        return {}
    if workload.startswith("iperf"):
        # rate over rate: CPU-seconds per second over GB per second
        gbs = (row.get("gbps") or 0) / 8
        return {"cpu_ms_per_gb": round(cpu / 100 * 1000 / gbs, 1)} if gbs else {}
    rps = row.get("rps")
    return {"cpu_us_per_req": round(cpu / 100 * 1e6 / rps, 2)} if rps else {}


# ---------------------------------------------------------------------------
# Configurations.

def tunnel_script(p):
    """The router script; p holds the ports. Same shape for every tunnel run."""
    return fill("""\
-- generated by bench/bench.py: the router under benchmark.
-- iperf3's first bytes (a 37-byte cookie) match no built-in sniffer: opaque.
-- HTTP is routed by Host through the route_table policy, one hook call per
-- connection; the table has a few entries so that the lookup is a real one.
local tunnel = require "tunnel"
local route_table = require "policies.route_table"

tunnel.config{ log_level = "warn"{tunnel_extra} }     -- per-connection info logs are not free

tunnel.listen{
  name = "bench-iperf",
  addr = "127.0.0.1:{iperf_in}",
  route = route_table{ opaque = "127.0.0.1:{iperf}" },
}

tunnel.listen{
  name = "bench-http",
  addr = "127.0.0.1:{http_in}",
  route = route_table{
    http = {
      ["{host}"] = "127.0.0.1:{nginx}",
      ["api.bench.test"] = "127.0.0.1:{nginx}",
      ["*.static.bench.test"] = "127.0.0.1:{nginx}",
      ["*.bench.test"] = "127.0.0.1:{nginx}",
    },
    tls = { ["*.bench.test"] = "127.0.0.1:{nginx}" },
  },
}

tunnel.listen{
  name = "bench-hold",
  addr = "127.0.0.1:{hold_in}",
  route = route_table{ http = { ["{hold_host}"] = "127.0.0.1:{hold}" } },
}
""", dict(p, host=HTTP_HOST, hold_host=HOLD_HOST,
                tunnel_extra=(", " + TUNNEL_CONFIG) if TUNNEL_CONFIG else ""))


def haproxy_config(p):
    return """\
# generated by bench/bench.py: haproxy `mode tcp`, the reference forwarder.
# nbthread is left at haproxy's default (one thread per CPU it may run on);
# no `log` line, so haproxy logs nothing.
global
    maxconn 4000
{global_extra}
defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m
{defaults_extra}

listen bench-iperf
    bind 127.0.0.1:{iperf_in}
    server iperf 127.0.0.1:{iperf}

listen bench-http
    bind 127.0.0.1:{http_in}
    server nginx 127.0.0.1:{nginx}

listen bench-hold
    bind 127.0.0.1:{hold_in}
    server hold 127.0.0.1:{hold}
""".format(global_extra=HAPROXY_GLOBAL, defaults_extra=HAPROXY_DEFAULTS, **p)


# ---------------------------------------------------------------------------
# Contestant set-up.

class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tunnel_bin = os.path.join(self.build, "tunnel")
        self.out = os.path.join(self.build, "bench")
        self.runs = []          # one dict per measured run
        self.meta = {}
        self.notes = []
        self.cmds = {}
        self.servers = {}       # name -> Popen (backends and proxies)

    # -- backends --------------------------------------------------------------

    def start_backends(self):
        ports = dict(zip(["iperf", "nginx"], free_ports(2)))
        self.ports = ports
        if any(w.startswith("iperf") for w in WORKLOADS):
            self.servers["iperf3"] = start_iperf_server(ports["iperf"], self.cmds)
        if any(w.startswith("wrk") for w in WORKLOADS):
            self.servers["nginx"] = start_nginx(self.out, ports["nginx"], NGINX_WORKERS, self.cmds)

    # -- proxies ---------------------------------------------------------------

    def proxy_ports(self, hold_backend):
        iperf_in, http_in, hold_in = free_ports(3)
        return {"iperf_in": iperf_in, "http_in": http_in, "hold_in": hold_in,
                "iperf": self.ports["iperf"], "nginx": self.ports["nginx"], "hold": hold_backend}

    def start_haproxy(self, p, tag):
        conf = os.path.join(self.out, "haproxy-%s.cfg" % tag)
        with open(conf, "w") as f:
            f.write(haproxy_config(p))
        argv = ["haproxy", "-db", "-f", conf]
        self.cmds["haproxy"] = "haproxy -db -f $BUILD/bench/haproxy-<tag>.cfg"
        proc = PROCS.start("haproxy", argv, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(self.out, "haproxy-%s.stderr" % tag), "w"))
        wait_listening([p["iperf_in"], p["http_in"], p["hold_in"]], proc, "haproxy")
        return proc

    def start_tunnel(self, p, tag):
        script = os.path.join(self.out, "router-%s.lua" % tag)
        with open(script, "w") as f:
            f.write(tunnel_script(p))
        workers = "1" if tag == "mem" else TUNNEL_WORKERS
        argv = [self.tunnel_bin, "run", "--workers", workers, script]
        self.cmds["tunnel"] = "%s run --workers %s $BUILD/bench/router-<tag>.lua (memory: --workers 1)" % (
            os.path.relpath(self.tunnel_bin, ROOT), TUNNEL_WORKERS)
        proc = PROCS.start("tunnel", argv, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(self.out, "tunnel-%s.stderr" % tag), "w"))
        wait_listening([p["iperf_in"], p["http_in"], p["hold_in"]], proc, "tunnel")
        return proc

    # -- one measured run ------------------------------------------------------

    sample = staticmethod(sample)
    cpu_pct = staticmethod(cpu_pct)

    def target(self, who, workload):
        if who == "direct":
            return self.ports["iperf"] if workload.startswith("iperf") else self.ports["nginx"]
        return self.proxy[who]["iperf_in"] if workload.startswith("iperf") else self.proxy[who]["http_in"]

    @staticmethod
    def run_iperf(port, streams, secs):
        return run_iperf(port, streams, secs)

    @staticmethod
    def run_wrk(port, close, secs):
        return run_wrk(port, close, secs, HTTP_HOST)

    def run_once(self, workload, who, secs):
        port = self.target(who, workload)
        if workload.startswith("iperf"):
            return self.run_iperf(port, 8 if workload == "iperf8" else 1, secs)
        return self.run_wrk(port, workload == "wrk_close", secs)

    # -- throughput and latency workloads -------------------------------------

    def throughput(self):
        hold_dummy = free_ports(1)[0]
        self.proxy = {}
        self.proxy_proc = {}
        for who, start in (("haproxy", self.start_haproxy), ("tunnel", self.start_tunnel)):
            p = self.proxy_ports(hold_dummy)
            self.proxy[who] = p
            self.proxy_proc[who] = start(p, "main")
        self.proxy_proc["direct"] = None
        hp = self.proxy_proc["haproxy"].pid
        self.meta["haproxy_threads"] = proc_status(hp, "Threads")
        self.meta["tunnel_threads"] = proc_status(self.proxy_proc["tunnel"].pid, "Threads")
        self.meta["tunnel_rss_kib_at_start_main"] = proc_status(self.proxy_proc["tunnel"].pid, "VmRSS")

        work = [w for w in WORKLOADS if w != "memory"]
        # Warm-up, not recorded: nginx's file cache, the proxies' buffer pools, the
        # kernel's socket caches.
        log("warm-up (1 s per contestant and workload kind, not recorded)")
        for w in sorted({("iperf1" if w.startswith("iperf") else "wrk_ka") for w in work}):
            for who in CONTESTANTS:
                self.run_once(w, who, 1)
                time.sleep(0.3)
        for w in work:
            for rnd in range(1, REPS + 1):
                for who in CONTESTANTS:
                    backend = self.servers["iperf3" if w.startswith("iperf") else "nginx"]
                    watch = {"proxy": self.proxy_proc[who], "backend": backend}
                    before = self.sample(watch)
                    res = self.run_once(w, who, SECS)
                    cpu = self.cpu_pct(before, self.sample(watch))
                    row = {"workload": w, "round": rnd, "contestant": who}
                    row.update(res)
                    row.update({"cpu_" + k: v for k, v in cpu.items()})
                    row.update(cost(w, row))
                    self.runs.append(row)
                    log("  %-9s round %d/%d %-8s %s" % (w, rnd, REPS, who, short(row)))
                    time.sleep(0.3 if w.startswith("wrk") else 0.5)
        for who in ("haproxy", "tunnel"):
            PROCS.stop(self.proxy_proc[who])

    # -- memory ---------------------------------------------------------------

    def memory(self):
        helper = os.path.join(HERE, "holdconns.py")
        self.cmds["holdconns"] = "%s bench/holdconns.py BACKEND_PORT PROXY_HOLD_PORT %d %s" % (
            sys.executable, CONNS, HOLD_HOST)
        for rnd in range(1, REPS + 1):
            for who, start in (("haproxy", self.start_haproxy), ("tunnel", self.start_tunnel)):
                hold = free_ports(1)[0]
                p = self.proxy_ports(hold)
                proc = start(p, "mem")
                self.meta.setdefault("%s_threads" % who, proc_status(proc.pid, "Threads"))
                time.sleep(0.5)
                idle = proc_status(proc.pid, "VmRSS")
                h = PROCS.start("holdconns", [sys.executable, helper, str(hold), str(p["hold_in"]),
                                              str(CONNS), HOLD_HOST],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                first = h.stdout.readline().strip()
                ready = h.stdout.readline().strip() if first == "LISTENING" else first
                ok = ready.startswith("READY")
                time.sleep(0.5)
                loaded = proc_status(proc.pid, "VmRSS")
                fds = len(os.listdir("/proc/%d/fd" % proc.pid))
                try:
                    h.stdin.write("\n")
                    h.stdin.flush()
                    h.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                PROCS.stop(h)
                time.sleep(1.0)
                after = proc_status(proc.pid, "VmRSS")
                PROCS.stop(proc)
                n = int(ready.split()[1]) if len(ready.split()) > 1 else 0
                row = {"workload": "memory", "round": rnd, "contestant": who,
                       "rss_idle_kib": idle, "rss_loaded_kib": loaded, "rss_after_close_kib": after,
                       "conns": n, "fds": fds,
                       "kib_per_conn": (loaded - idle) / n if ok and n else None}
                if not ok:
                    row["error"] = "holdconns: %s" % ready
                self.runs.append(row)
                log("  memory    round %d/%d %-8s %s" % (rnd, REPS, who, short(row)))

    # -- report ---------------------------------------------------------------

    def values(self, workload, who, key):
        return [r.get(key) for r in self.runs if r["workload"] == workload and r["contestant"] == who]

    def round_ratios(self, workload, key, num, den):
        out = []
        for rnd in range(1, REPS + 1):
            a = [r.get(key) for r in self.runs if r["workload"] == workload and r["round"] == rnd
                 and r["contestant"] == num]
            b = [r.get(key) for r in self.runs if r["workload"] == workload and r["round"] == rnd
                 and r["contestant"] == den]
            if a and b and a[0] and b[0]:
                out.append(a[0] / b[0])
        return out

    def summary(self):
        rows = []      # one per (workload, metric) line of the table
        spec = [("iperf1", "iperf3 1 stream", "Gbit/s", "gbps", "higher"),
                ("iperf8", "iperf3 8 streams", "Gbit/s", "gbps", "higher"),
                ("wrk_ka", "wrk keep-alive (50 conns)", "req/s", "rps", "higher"),
                ("wrk_ka", "wrk keep-alive p50", "ms", "p50_ms", "lower"),
                ("wrk_ka", "wrk keep-alive p99", "ms", "p99_ms", "lower"),
                ("wrk_close", "wrk Connection: close", "conn/s", "rps", "higher"),
                ("wrk_close", "wrk Connection: close p50", "ms", "p50_ms", "lower"),
                ("wrk_close", "wrk Connection: close p99", "ms", "p99_ms", "lower")]
        for w, label, unit, key, better in spec:
            if w not in WORKLOADS:
                continue
            med = {who: median(self.values(w, who, key)) for who in CONTESTANTS}
            per = "cpu_ms_per_gb" if w.startswith("iperf") else "cpu_us_per_req"
            cpu = {who: {"cpu": median(self.values(w, who, "cpu_proxy")),
                         "rqwait": median(self.values(w, who, "cpu_proxy_rqwait")),
                         "per_unit": median(self.values(w, who, per))} for who in ("haproxy", "tunnel")}
            rr = self.round_ratios(w, key, "tunnel", "haproxy")
            rows.append({"workload": w, "label": label, "unit": unit, "key": key, "better": better,
                         "median": med, "proxy": cpu,
                         "cost_unit": "CPU ms/GB" if w.startswith("iperf") else
                                      "CPU µs/conn" if w == "wrk_close" else "CPU µs/req",
                         "busy_pct": median(self.values(w, "tunnel", "cpu_machine_busy")),
                         "t_h": ratio(med["tunnel"], med["haproxy"]),
                         "t_d": ratio(med["tunnel"], med["direct"]),
                         "h_d": ratio(med["haproxy"], med["direct"]),
                         "rounds_t_h": [round(x, 3) for x in rr]})
        mem = None
        if "memory" in WORKLOADS:
            mem = {}
            for who in ("haproxy", "tunnel"):
                mem[who] = {k: median(self.values("memory", who, k))
                            for k in ("rss_idle_kib", "rss_loaded_kib", "rss_after_close_kib",
                                      "kib_per_conn", "conns")}
        return rows, mem

    def targets(self, rows, mem):
        t = []
        by = {(r["workload"], r["key"]): r for r in rows}

        def add(name, r, want_ge):
            if not r or r["t_h"] is None:
                t.append((name, "n/a", "n/a"))
                return
            rr = r["rounds_t_h"]
            ok = r["t_h"] >= 1.0 if want_ge else r["t_h"] <= 1.0
            spread = ""
            if rr:
                lo, hi = min(rr), max(rr)
                spread = " (per-round %.2f–%.2f%s)" % (lo, hi, ", straddles 1.0" if lo < 1.0 < hi else "")
            t.append((name, "%.2f× haproxy%s" % (r["t_h"], spread), "PASS" if ok else "MISS"))

        add("single-stream throughput ≥ 1.0× haproxy", by.get(("iperf1", "gbps")), True)
        add("8-stream throughput ≥ 1.0× haproxy", by.get(("iperf8", "gbps")), True)
        add("keep-alive req/s ≥ 1.0× haproxy", by.get(("wrk_ka", "rps")), True)
        add("new connections/s (Connection: close) ≥ 1.0× haproxy", by.get(("wrk_close", "rps")), True)
        add("keep-alive p99 ≤ haproxy's", by.get(("wrk_ka", "p99_ms")), False)
        add("Connection: close p99 ≤ haproxy's", by.get(("wrk_close", "p99_ms")), False)
        if mem:
            m = mem["tunnel"]
            idle = m["rss_idle_kib"]
            t.append(("tunnel idle RSS < 10 MiB",
                      "%.1f MiB (haproxy %.1f MiB)" % (idle / 1024, (mem["haproxy"]["rss_idle_kib"] or 0) / 1024)
                      if idle else "n/a",
                      "n/a" if idle is None else "PASS" if idle < 10 * 1024 else "MISS"))
            k = m["kib_per_conn"]
            t.append(("≤ 20 KiB per idle spliced connection",
                      "%.1f KiB (haproxy %s KiB)" % (k, fmt(mem["haproxy"]["kib_per_conn"], 1)) if k else "n/a",
                      "n/a" if k is None else "PASS" if k <= 20 else "MISS"))
        return t

    def report(self, elapsed):
        rows, mem = self.summary()
        targets = self.targets(rows, mem)
        md = []
        md.append("# tunnel router benchmark")
        md.append("")
        for line in self.meta_lines(elapsed):
            md.append("- " + line)
        md.append("")
        md.append("## Throughput and latency (medians of %d interleaved rounds)" % REPS)
        md.append("")
        md.append("| workload | unit | direct | haproxy | tunnel | tunnel/haproxy | tunnel/direct | "
                  "haproxy/direct | per-round tunnel/haproxy |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            digits = 2 if r["unit"] in ("Gbit/s", "ms") else 0
            md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["label"], r["unit"], fmt(r["median"]["direct"], digits), fmt(r["median"]["haproxy"], digits),
                fmt(r["median"]["tunnel"], digits), fmt(r["t_h"], 2, "×"), fmt(r["t_d"], 2, "×"),
                fmt(r["h_d"], 2, "×"), " ".join("%.2f" % x for x in r["rounds_t_h"])))
        md.append("")
        md.append("Ratios are of medians; for latency lower is better (a ratio below 1.0 means "
                  "the tunnel is faster). wrk's latency runs from writing a request to reading its "
                  "response: with Connection: close it leaves out the TCP connect.")
        md.append("")
        md.append("## Where the proxies' CPU went (medians)")
        md.append("")
        md.append("| workload | haproxy CPU % | haproxy run-queue wait % | tunnel CPU % | "
                  "tunnel run-queue wait % | cost unit | haproxy | tunnel | tunnel/haproxy cost |")
        md.append("|---|---:|---:|---:|---:|---|---:|---:|---:|")
        for r in rows:
            if r["unit"] == "ms":
                continue
            h, t = r["proxy"]["haproxy"], r["proxy"]["tunnel"]
            md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["label"], fmt(h["cpu"], 0), fmt(h["rqwait"], 0), fmt(t["cpu"], 0), fmt(t["rqwait"], 0),
                r["cost_unit"], fmt(h["per_unit"], 1), fmt(t["per_unit"], 1),
                fmt(ratio(t["per_unit"], h["per_unit"]), 2, "×")))
        md.append("")
        md.append("CPU %% is the process's utime+stime over the run (100 = one core; the machine has %s "
                  "CPUs, haproxy runs %s threads, the tunnel %s). Run-queue wait is the time its threads "
                  "were runnable but had no CPU (schedstat): what the busy, shared machine took from it. "
                  "Cost is proxy CPU per unit of work, which does not depend on the CPU share it got."
                  % (self.meta.get("cpus"), self.meta.get("haproxy_threads"), self.meta.get("tunnel_threads")))
        if mem:
            md.append("")
            md.append("## Memory (medians of %d rounds, fresh process each round, %d idle spliced connections)"
                      % (REPS, CONNS))
            md.append("")
            md.append("| process | RSS idle | RSS with %d conns | RSS after they close | KiB per idle connection |"
                      % CONNS)
            md.append("|---|---:|---:|---:|---:|")
            for who in ("haproxy", "tunnel"):
                m = mem[who]
                md.append("| %s | %s KiB | %s KiB | %s KiB | %s |" % (
                    who, fmt(m["rss_idle_kib"], 0), fmt(m["rss_loaded_kib"], 0),
                    fmt(m["rss_after_close_kib"], 0), fmt(m["kib_per_conn"], 1)))
        md.append("")
        md.append("## Targets")
        md.append("")
        md.append("| target | measured | verdict |")
        md.append("|---|---|---|")
        for name, val, verdict in targets:
            md.append("| %s | %s | **%s** |" % (name, val, verdict))
        md.append("")
        md.append("A verdict whose per-round ratios straddle 1.0 is within this machine's noise: "
                  "another run may flip it. Medians of more rounds (BENCH_REPS) narrow it.")
        warn = self.warnings()
        if warn:
            md.append("")
            md.append("## Warnings")
            md.append("")
            for w in warn:
                md.append("- " + w)
        md.append("")
        md.append("## Commands")
        md.append("")
        for k, v in self.cmds.items():
            md.append("- %s: `%s`" % (k, v))
        md.append("- iperf3 client: `iperf3 -c 127.0.0.1 -p PORT -t %d -O 1 -J [-P 8]`" % SECS)
        md.append("- wrk: `wrk -t2 -c50 -d%ds --latency -H 'Host: %s' [-H 'Connection: close'] "
                  "http://127.0.0.1:PORT/1k.bin`" % (SECS, HTTP_HOST))
        md.append("- PORT is the backend (direct), haproxy's or the tunnel's listener; the generated "
                  "configs are in this directory.")
        md.append("")
        md.append("Raw per-run numbers: runs.csv, results.json.")
        text = "\n".join(align_tables(md)) + "\n"
        with open(os.path.join(self.out, "report.md"), "w") as f:
            f.write(text)
        self.write_raw(rows, mem, targets, elapsed)
        print()
        print(text)

    def warnings(self):
        w = []
        for r in self.runs:
            if r.get("error"):
                w.append("%s round %d %s: %s" % (r["workload"], r["round"], r["contestant"], r["error"]))
            if r.get("socket_errors") or r.get("non2xx"):
                w.append("%s round %d %s: %d socket errors (%d timeouts), %d non-2xx responses" % (
                    r["workload"], r["round"], r["contestant"], r.get("socket_errors", 0),
                    r.get("timeouts", 0), r.get("non2xx", 0)))
        return w

    def meta_lines(self, elapsed):
        m = self.meta
        return [
            "date: %s; total run time %.0f s" % (m["date"], elapsed),
            "machine: %s, %s CPUs, kernel %s; load average at start %s" % (
                m["cpu_model"], m["cpus"], m["kernel"], m["loadavg"]),
            "method: %d rounds per figure, contestants interleaved direct → haproxy → tunnel in every "
            "round; %d s per run (iperf3 adds 1 s omitted warm-up); figures are medians, comparisons "
            "ratios of medians" % (REPS, SECS),
            "tunnel: %s, `tunnel.config{ log_level = \"warn\" }` (per-connection info logs off), "
            "route_table policy, %s thread(s)%s" % (
                os.path.relpath(self.tunnel_bin, ROOT), m.get("tunnel_threads"),
                "; EXPERIMENT, tunnel.config adds: %s" % TUNNEL_CONFIG if TUNNEL_CONFIG else ""),
            "haproxy: %s, `mode tcp`, no logging, %s threads observed%s" % (
                m["haproxy_version"],
                m.get("haproxy_threads") if HAPROXY_GLOBAL else
                "nbthread left at its default: %s" % m.get("haproxy_threads"),
                "; EXPERIMENT, extra config: %s" % " ".join((HAPROXY_GLOBAL + HAPROXY_DEFAULTS).split())
                if HAPROXY_GLOBAL or HAPROXY_DEFAULTS else ""),
            "nginx: %s, worker_processes %s, 1 KiB static file, access_log off, keepalive_requests "
            "unlimited" % (m["nginx_version"], NGINX_WORKERS),
            "iperf3 %s; wrk %s" % (m["iperf3_version"], m["wrk_version"]),
            "sysctl: somaxconn %s, tcp_tw_reuse %s, ip_local_port_range %s" % (
                m["somaxconn"], m["tw_reuse"], m["port_range"]),
        ]

    def write_raw(self, rows, mem, targets, elapsed):
        keys = ["workload", "round", "contestant", "gbps", "retransmits", "rps", "p50_ms", "p90_ms", "p99_ms",
                "socket_errors", "timeouts", "non2xx", "rss_idle_kib", "rss_loaded_kib",
                "rss_after_close_kib", "conns", "fds", "kib_per_conn", "cpu_proxy", "cpu_proxy_rqwait",
                "cpu_backend", "cpu_backend_rqwait", "cpu_machine_busy", "cpu_ms_per_gb",
                "cpu_us_per_req", "error"]
        with open(os.path.join(self.out, "runs.csv"), "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            wr.writeheader()
            for r in self.runs:
                wr.writerow(r)
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump({"meta": self.meta, "elapsed_s": round(elapsed, 1), "reps": REPS, "secs": SECS,
                       "conns": CONNS, "summary": rows, "memory": mem,
                       "targets": [{"target": a, "measured": b, "verdict": c} for a, b, c in targets],
                       "runs": self.runs, "commands": self.cmds}, f, indent=1)

    def collect_meta(self):
        self.meta.update(machine_meta())
        self.meta.update({
            "haproxy_version": first_line(["haproxy", "-v"]).replace("HAProxy version ", "").split(" ")[0],
            "nginx_workers": NGINX_WORKERS, "workloads": WORKLOADS,
        })

def short(row):
    keys = ("gbps", "rps", "p99_ms", "rss_idle_kib", "rss_loaded_kib", "kib_per_conn",
            "cpu_proxy", "cpu_proxy_rqwait", "cpu_us_per_req", "cpu_ms_per_gb", "cpu_machine_busy", "error")
    return " ".join("%s=%s" % (k, ("%.3g" % row[k]) if isinstance(row[k], float) else row[k])
                    for k in keys if row.get(k) is not None)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: bench/run BUILD\n")
        return 2
    if not WORKLOADS:       # BENCH_ONLY names only the tunnel bench's workloads (bench/run runs both)
        log("bench: BENCH_ONLY=%s names none of %s; nothing to do" % (",".join(ONLY), ",".join(ALL_WORKLOADS)))
        return 0
    b = Bench(sys.argv[1])
    missing = [t for t in ("iperf3", "wrk", "haproxy", "nginx") if not shutil.which(t)]
    if missing:
        sys.stderr.write("bench: missing %s (make deps installs them)\n" % ", ".join(missing))
        return 1
    if not os.access(b.tunnel_bin, os.X_OK):
        sys.stderr.write("bench: %s not built (make BUILD=%s all)\n" % (b.tunnel_bin, sys.argv[1]))
        return 1
    os.makedirs(b.out, exist_ok=True)
    for name in os.listdir(b.out):                  # only what earlier runs of this script wrote
        if re.match(r"^(router-.*\.lua|haproxy-.*\.(cfg|stderr)|tunnel-.*\.stderr|runs\.csv|"
                    r"results\.json|report\.md|nginx\.stderr)$", name):
            os.unlink(os.path.join(b.out, name))
    atexit.register(PROCS.stop_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    # The memory workload needs ~2 descriptors per connection in each process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        want = min(hard, max(soft, 4 * CONNS + 1024))
    else:
        want = max(soft, 4 * CONNS + 1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    t0 = time.monotonic()
    b.collect_meta()
    log("bench: %d rounds × %d s, workloads %s; output in %s" % (REPS, SECS, ",".join(WORKLOADS), b.out))
    log("bench: tunnel runs with tunnel.config{ log_level = \"warn\" } and --workers %s; haproxy without logging"
        % TUNNEL_WORKERS)
    try:
        b.start_backends()
        if any(w != "memory" for w in WORKLOADS):
            b.throughput()
        if "memory" in WORKLOADS:
            b.memory()
    except RuntimeError as e:
        sys.stderr.write("bench: %s\n" % e)
        PROCS.stop_all()
        return 1
    PROCS.stop_all()
    b.report(time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""tunnel_bench.py BUILD — the tunnel path (relay + agent) beside direct loopback
and OpenSSH reverse tunnels (`ssh -N -R`).

Started by bench/run (what `make bench` calls) after the router bench. Everything
runs on 127.0.0.1 on ports picked free at start; every process this script
starts is stopped by PID on exit (normal exit, error, SIGINT/SIGTERM/SIGHUP),
with the children it made (sshd's per-session processes, nginx workers).

Contestants, each a path from a client to the same service:
  direct      the client talks to the service itself;
  ssh-aes     client -> sshd's forwarded port -> one SSH connection -> `ssh -N -R`
              -> service; cipher aes128-gcm@openssh.com. sshd is started here
              (`sshd -D -e -f CONFIG`, generated host key, generated user key in
              authorized_keys, UsePAM no), as the current user;
  ssh-chacha  the same with chacha20-poly1305@openssh.com (a second ssh client
              of the same sshd);
  tunnel      client -> relay (a `kind = "tcp"` service port, the public entry)
              -> one mutual-TLS 1.3 + yamux session -> agent -> service. Relay
              and agent are two `BUILD/tunnel run` processes with generated PKI
              (`tunnel ca init`, `tunnel cert issue`), log_level "warn".

Workloads (each repeated BENCH_REPS times, rounds interleaved direct, ssh-aes,
ssh-chacha, tunnel, direct, ... so that the machine's drift hits all alike):
  iperf1     iperf3 -t SECS -O 1, one stream (its control connection and its data
             connection both cross the path);
  wrk_ka     wrk -t2 -c50 -dSECS --latency, keep-alive, 1 KiB file from nginx;
  wrk_close  the same with "Connection: close": a new stream per request;
  idle       BENCH_STREAMS (10,000) idle connections on the one session
             (bench/holdconns.py): the relay's VmRSS once its /metrics count
             them all, and sshd's (all its processes) for ssh-aes; fresh
             processes each round. sshd and ssh take minutes of CPU to open
             10,000 channels, so ssh-aes holds BENCH_SSH_STREAMS (2,000) in
             BENCH_SSH_IDLE_REPS (1) of the rounds (bytes per stream are the
             same: they grow linearly).

Figures are medians; comparisons are ratios of medians, with the spread of the
per-round ratios beside them. A benchmark does not fail the build: the targets
are printed PASS/MISS and the exit status is 0 unless the set-up itself broke.

Environment: BENCH_REPS (5), BENCH_SECS (3), BENCH_STREAMS (10000),
BENCH_SSH_STREAMS (2000), BENCH_SSH_IDLE_REPS (1), BENCH_ONLY
(comma list of workloads; names of the router bench are ignored here),
BENCH_NGINX_WORKERS (1); for experiments only, BENCH_TUNNEL_CONFIG adds fields
to both processes' tunnel.config{} and BENCH_TUNNEL_MUX to both mux = {}
tables (e.g. "max_window = 1048576").
"""
import csv
import getpass
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True       # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (PROCS, Procs, align_tables, cpu_pct, fill, first_line, fmt,  # noqa: E402
                    free_ports, install_signal_handlers, listening, log, machine_meta, median,
                    proc_status, raise_nofile, ratio, run_iperf, run_wrk, sample,
                    start_iperf_server, start_nginx)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

REPS = int(os.environ.get("BENCH_REPS", "5"))
SECS = int(os.environ.get("BENCH_SECS", "3"))
STREAMS = int(os.environ.get("BENCH_STREAMS", "10000"))
# sshd and ssh go through every channel for each event: 10,000 channels take
# them minutes of CPU to open (2,000: seconds). Bytes per stream grow linearly
# (measured: ~34 KB from 2,000 to 10,000), so ssh -R is measured at
# BENCH_SSH_STREAMS, once, unless asked for more.
SSH_STREAMS = int(os.environ.get("BENCH_SSH_STREAMS", "2000"))
SSH_IDLE_REPS = int(os.environ.get("BENCH_SSH_IDLE_REPS", "1"))
NGINX_WORKERS = os.environ.get("BENCH_NGINX_WORKERS", "1")
TUNNEL_CONFIG = os.environ.get("BENCH_TUNNEL_CONFIG", "").strip()   # experiments only
TUNNEL_MUX = os.environ.get("BENCH_TUNNEL_MUX", "").strip()         # experiments only
ALL_WORKLOADS = ["iperf1", "wrk_ka", "wrk_close", "idle"]
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").replace(" ", "").split(",") if w]
WORKLOADS = [w for w in ALL_WORKLOADS if not ONLY or w in ONLY]
CONTESTANTS = ["direct", "ssh-aes", "ssh-chacha", "tunnel"]
CIPHERS = {"ssh-aes": "aes128-gcm@openssh.com", "ssh-chacha": "chacha20-poly1305@openssh.com"}
REF = "ssh-aes"                 # what the targets compare with
SSHD = "/usr/sbin/sshd"         # sshd re-executes itself: it wants an absolute path
HTTP_HOST = "www.bench.test"
SERVICES = ("iperf", "http")    # what the traffic workloads cross; "hold" for idle


# ---------------------------------------------------------------------------
# Configurations.

RELAY_LUA = """\
-- generated by bench/tunnel_bench.py: the relay under benchmark. Its public
-- entries are the ports of the agent's tcp services, bound on 127.0.0.1.
local tunnel = require "tunnel"

tunnel.config{ log_level = "warn", management = { addr = "127.0.0.1:{mgmt}" }{config_extra} }

assert(tunnel.relay{
  addr = "127.0.0.1:{agents}",
  tls = { cert = "{pki}/relay/relay.crt", key = "{pki}/relay/relay.key", ca = "{pki}/ca/ca.crt" },
  ports = { range = { {lo}, {hi} }, bind = "127.0.0.1" },
  mux = { max_streams = {max_streams}{mux_extra} },
})
"""

AGENT_LUA = """\
-- generated by bench/tunnel_bench.py: the agent under benchmark, next to the
-- services; one session to the relay carries every stream.
local tunnel = require "tunnel"

tunnel.config{ log_level = "warn", management = false{config_extra} }

tunnel.agent{
  name = "bench-agent",
  relays = { "127.0.0.1:{agents}" },
  tls = { cert = "{pki}/agent/bench-agent.crt", key = "{pki}/agent/bench-agent.key",
          ca = "{pki}/ca/ca.crt", server_name = "relay.bench.test" },
  services = {
{services}
  },
  mux = { max_streams = {max_streams}{mux_extra} },
}
"""

SSHD_CONFIG = """\
# generated by bench/tunnel_bench.py: an sshd of our own on loopback, run as
# the current user with `sshd -D -e -f THIS`, public-key login only.
Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_ed25519
PidFile {d}/sshd-{tag}.pid
AuthorizedKeysFile {d}/authorized_keys
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
AllowStreamLocalForwarding no
GatewayPorts no
X11Forwarding no
PermitTTY no
PrintMotd no
UseDNS no
Compression no
ClientAliveInterval 0
MaxStartups 100:30:200
Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com
LogLevel ERROR
"""


def lua_extra(s):
    return (", " + s) if s else ""


# ---------------------------------------------------------------------------

class TunnelBench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tunnel_bin = os.path.join(self.build, "tunnel")
        self.out = os.path.join(self.build, "bench")
        self.work = os.path.join(self.out, "tunnel")       # everything generated, ours alone
        self.pki = os.path.join(self.work, "pki")
        self.sshdir = os.path.join(self.work, "ssh")
        self.runs = []
        self.meta = {}
        self.cmds = {}
        self.notes = []
        self.servers = {}
        self.user = getpass.getuser()

    # -- credentials -----------------------------------------------------------

    def make_credentials(self):
        t = self.tunnel_bin
        steps = [[t, "ca", "init", os.path.join(self.pki, "ca"), "--name", "bench-ca"],
                 [t, "cert", "issue", "--ca", os.path.join(self.pki, "ca"), "--name", "relay", "--server",
                  "--dns", "relay.bench.test", "--out", os.path.join(self.pki, "relay")],
                 [t, "cert", "issue", "--ca", os.path.join(self.pki, "ca"), "--name", "bench-agent",
                  "--role", "bench", "--out", os.path.join(self.pki, "agent")]]
        os.makedirs(self.sshdir, mode=0o700)
        hk, uk = os.path.join(self.sshdir, "host_ed25519"), os.path.join(self.sshdir, "user_ed25519")
        steps += [["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-host", "-f", hk],
                  ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-user", "-f", uk]]
        for argv in steps:
            r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
            if r.returncode != 0:
                raise RuntimeError("%s failed: %s" % (" ".join(argv[:3]), (r.stderr or r.stdout).strip()))
        shutil.copy(uk + ".pub", os.path.join(self.sshdir, "authorized_keys"))
        with open(hk + ".pub") as f:
            self.host_pub = " ".join(f.read().split()[:2])
        self.cmds["pki"] = ("tunnel ca init $W/pki/ca; tunnel cert issue --ca $W/pki/ca --name relay --server "
                            "--dns relay.bench.test --out $W/pki/relay; tunnel cert issue --ca $W/pki/ca --name "
                            "bench-agent --role bench --out $W/pki/agent  (W = $BUILD/bench/tunnel)")
        self.cmds["ssh keys"] = "ssh-keygen -t ed25519 (host key, user key -> authorized_keys)"

    # -- backends --------------------------------------------------------------

    def start_backends(self):
        self.ports = dict(zip(["iperf", "http"], free_ports(2)))
        if "iperf1" in WORKLOADS:
            self.servers["iperf3"] = start_iperf_server(self.ports["iperf"], self.cmds)
        if any(w.startswith("wrk") for w in WORKLOADS):
            self.servers["nginx"] = start_nginx(self.work, self.ports["http"], NGINX_WORKERS, self.cmds,
                                                generator="bench/tunnel_bench.py", readable=(self.out,))

    # -- contestants -----------------------------------------------------------

    @staticmethod
    def wait_ports(ports, procs, what, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited with status %s at start" % (what, p.returncode))
            if all(listening(p) for p in ports):
                return
            time.sleep(0.05)
        raise RuntimeError("%s is not listening on %s after %.0f s" % (what, ports, timeout))

    def start_tunnel(self, tag, targets):
        """A relay and an agent exposing one tcp service per targets entry
        (name -> local port). Returns (relay, agent, public ports by name, mgmt port)."""
        names = sorted(targets)
        agents, mgmt, *pub = free_ports(2 + len(names))
        public = dict(zip(names, pub))
        max_streams = max(4096, STREAMS + 1024)
        v = {"agents": agents, "mgmt": mgmt, "pki": self.pki, "lo": min(pub), "hi": max(pub),
             "max_streams": max_streams, "config_extra": lua_extra(TUNNEL_CONFIG),
             "mux_extra": lua_extra(TUNNEL_MUX)}
        rscript = os.path.join(self.work, "relay-%s.lua" % tag)
        ascript = os.path.join(self.work, "agent-%s.lua" % tag)
        with open(rscript, "w") as f:
            f.write(fill(RELAY_LUA, v))
        services = "\n".join('    { service = "%s", kind = "tcp", port = %d, target = "127.0.0.1:%d" },'
                             % (n, public[n], targets[n]) for n in names)
        with open(ascript, "w") as f:
            f.write(fill(AGENT_LUA, dict(v, services=services)))
        run = [self.tunnel_bin, "run", "--drain", "1"]
        relay = PROCS.start("relay", run + [rscript], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(self.work, "relay-%s.stderr" % tag), "w"))
        self.wait_ports([agents], [relay], "the relay")
        agent = PROCS.start("agent", run + [ascript], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(self.work, "agent-%s.stderr" % tag), "w"))
        self.wait_ports(list(public.values()), [relay, agent], "the relay (agent's tcp services)")
        rel = os.path.relpath(self.tunnel_bin, ROOT)
        self.cmds["relay"] = "%s run --drain 1 $BUILD/bench/tunnel/relay-<tag>.lua" % rel
        self.cmds["agent"] = "%s run --drain 1 $BUILD/bench/tunnel/agent-<tag>.lua" % rel
        return relay, agent, public, mgmt

    def start_sshd(self, tag):
        port = free_ports(1)[0]
        conf = os.path.join(self.sshdir, "sshd_config-%s" % tag)
        with open(conf, "w") as f:
            f.write(fill(SSHD_CONFIG, {"port": port, "d": self.sshdir, "tag": tag}))
        r = subprocess.run([SSHD, "-t", "-f", conf], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("sshd -t -f %s: %s" % (conf, (r.stderr or r.stdout).strip()[:300]))
        proc = PROCS.start("sshd", [SSHD, "-D", "-e", "-f", conf], stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(self.sshdir, "sshd-%s.stderr" % tag), "w"))
        self.wait_ports([port], [proc], "sshd")
        with open(os.path.join(self.sshdir, "known_hosts"), "a") as f:
            f.write("[127.0.0.1]:%d %s\n" % (port, self.host_pub))
        self.cmds["sshd"] = "%s -D -e -f $BUILD/bench/tunnel/ssh/sshd_config-<tag>" % SSHD
        return proc, port

    def start_ssh(self, tag, cipher, sshd_port, targets, sshd):
        """ssh -N with one -R per targets entry (name -> local port), all on one
        connection. Returns (ssh process, forwarded (public) ports by name)."""
        names = sorted(targets)
        public = dict(zip(names, free_ports(len(names))))
        d = self.sshdir
        argv = ["ssh", "-N", "-F", "/dev/null", "-p", str(sshd_port),
                "-i", os.path.join(d, "user_ed25519"), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", "UserKnownHostsFile=%s" % os.path.join(d, "known_hosts"),
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "Ciphers=%s" % cipher,
                "-o", "Compression=no", "-o", "ServerAliveInterval=0", "-o", "ControlMaster=no",
                "-o", "ControlPath=none", "-o", "LogLevel=ERROR"]
        for n in names:
            argv += ["-R", "127.0.0.1:%d:127.0.0.1:%d" % (public[n], targets[n])]
        argv.append("%s@127.0.0.1" % self.user)
        proc = PROCS.start("ssh", argv, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(d, "ssh-%s.stderr" % tag), "w"))
        self.wait_ports(list(public.values()), [proc, sshd], "ssh -R (%s)" % cipher)
        self.cmds["ssh"] = ("ssh -N -F /dev/null -p SSHD_PORT -i $W/ssh/user_ed25519 -o Ciphers=CIPHER "
                            "-o Compression=no -o BatchMode=yes -o ExitOnForwardFailure=yes "
                            "-R 127.0.0.1:PUB:127.0.0.1:SERVICE ... %s@127.0.0.1" % self.user)
        return proc, public

    # -- one measured run ------------------------------------------------------

    def target(self, who, workload):
        svc = "iperf" if workload == "iperf1" else "http"
        return self.ports[svc] if who == "direct" else self.public[who][svc]

    def run_once(self, workload, who, secs):
        port = self.target(who, workload)
        if workload == "iperf1":
            return run_iperf(port, 1, secs)
        return run_wrk(port, workload == "wrk_close", secs, HTTP_HOST)

    @staticmethod
    def cost(workload, row):
        """CPU of the tunnel's two halves (relay side + agent side) per unit of
        work: ms per GB, µs per request or connection."""
        if row.get("cpu_relay") is None or row.get("cpu_agent") is None:
            return {}
        cpu = row["cpu_relay"] + row["cpu_agent"]
        if workload == "iperf1":
            gbs = (row.get("gbps") or 0) / 8
            return {"cpu_ms_per_gb": round(cpu / 100 * 1000 / gbs, 1)} if gbs else {}
        rps = row.get("rps")
        return {"cpu_us_per_req": round(cpu / 100 * 1e6 / rps, 2)} if rps else {}

    # -- throughput and latency workloads -------------------------------------

    def throughput(self):
        work = [w for w in WORKLOADS if w != "idle"]
        targets = {s: self.ports[s] for s in SERVICES}
        self.public = {}
        self.halves = {"direct": (None, None)}       # (relay side, agent side) processes
        sshd, sport = self.start_sshd("main")
        for who in ("ssh-aes", "ssh-chacha"):
            ssh, pub = self.start_ssh(who, CIPHERS[who], sport, targets, sshd)
            self.public[who] = pub
            self.halves[who] = (sshd, ssh)
        relay, agent, pub, _ = self.start_tunnel("main", targets)
        self.public["tunnel"] = pub
        self.halves["tunnel"] = (relay, agent)
        self.meta["relay_rss_kib_at_start"] = proc_status(relay.pid, "VmRSS")
        self.meta["agent_rss_kib_at_start"] = proc_status(agent.pid, "VmRSS")
        self.meta["relay_threads"] = proc_status(relay.pid, "Threads")
        self.meta["agent_threads"] = proc_status(agent.pid, "Threads")

        log("warm-up (1 s per contestant and workload kind, not recorded)")
        for w in sorted({("iperf1" if w == "iperf1" else "wrk_ka") for w in work}):
            for who in CONTESTANTS:
                self.run_once(w, who, 1)
                time.sleep(0.3)
        for w in work:
            for rnd in range(1, REPS + 1):
                for who in CONTESTANTS:
                    backend = self.servers["iperf3" if w == "iperf1" else "nginx"]
                    r, a = self.halves[who]
                    watch = {"relay": r, "agent": a, "backend": backend}
                    before = sample(watch)
                    res = self.run_once(w, who, SECS)
                    cpu = cpu_pct(before, sample(watch))
                    row = {"workload": w, "round": rnd, "contestant": who}
                    row.update(res)
                    row.update({"cpu_" + k: v for k, v in cpu.items()})
                    row.update(self.cost(w, row))
                    self.runs.append(row)
                    log("  %-9s round %d/%d %-10s %s" % (w, rnd, REPS, who, short(row)))
                    time.sleep(0.3 if w.startswith("wrk") else 0.5)
        # The sessions first (sshd's per-session processes end with them), then the rest.
        for p in (self.halves["ssh-aes"][1], self.halves["ssh-chacha"][1], sshd, agent, relay):
            PROCS.stop(p)

    # -- idle streams ------------------------------------------------------------

    @staticmethod
    def metrics(port):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            m = re.match(r"^(tunnel_streams|tunnel_connections_open|tunnel_sessions) ([\d.e+]+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    @staticmethod
    def tree_rss(pid):
        """VmRSS of pid and its descendants (sshd: listener, per-session
        monitor and child), KiB, and how many processes."""
        pids = [pid] + [k for k, _ in Procs.descendants(pid)]
        vals = [proc_status(p, "VmRSS") for p in pids]
        return sum(v for v in vals if v), len([v for v in vals if v])

    @staticmethod
    def hold_env(who):
        """holdconns.py's deadline and connects in flight. sshd listens for a
        -R forward with a backlog of 128 and opens channels slowly: more in
        flight overflow its queue and stall in SYN retransmits."""
        if who == "tunnel":
            return {"HOLD_DEADLINE": str(max(60, STREAMS // 100)), "HOLD_BATCH": "200"}
        return {"HOLD_DEADLINE": str(max(120, SSH_STREAMS // 25)), "HOLD_BATCH": "64"}

    def idle(self):
        helper = os.path.join(HERE, "holdconns.py")
        self.cmds["holdconns"] = "%s bench/holdconns.py BACKEND_PORT PUBLIC_PORT N (tunnel %d, ssh -R %d)" % (
            sys.executable, STREAMS, SSH_STREAMS)
        for rnd in range(1, REPS + 1):
            # sshd opens 10,000 channels slowly (minutes: its loop polls every
            # channel), so ssh -R gets SSH_IDLE_REPS rounds, the tunnel REPS.
            for who in (("ssh-aes", "tunnel") if rnd <= SSH_IDLE_REPS else ("tunnel",)):
                hold = free_ports(1)[0]
                mgmt = None
                if who == "tunnel":
                    relay_side, agent_side, pub, mgmt = self.start_tunnel("idle", {"hold": hold})
                    side_procs = [agent_side, relay_side]
                else:
                    relay_side, sport = self.start_sshd("idle")
                    agent_side, pub = self.start_ssh("idle", CIPHERS[who], sport, {"hold": hold}, relay_side)
                    side_procs = [agent_side, relay_side]
                time.sleep(0.5)
                rss = self.tree_rss if who != "tunnel" else (lambda pid: (proc_status(pid, "VmRSS"), 1))
                idle_relay, _ = rss(relay_side.pid)
                idle_agent = proc_status(agent_side.pid, "VmRSS")
                t0 = time.monotonic()
                want = STREAMS if who == "tunnel" else SSH_STREAMS
                h = PROCS.start("holdconns", [sys.executable, helper, str(hold), str(pub["hold"]), str(want)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, **self.hold_env(who)))
                first = h.stdout.readline().strip()
                ready = h.stdout.readline().strip() if first == "LISTENING" else first
                opened_s = time.monotonic() - t0
                ok = ready.startswith("READY")
                counted = None
                if who == "tunnel":
                    # The relay's own count: every stream open on the session.
                    end = time.monotonic() + 30
                    while time.monotonic() < end:
                        counted = self.metrics(mgmt).get("tunnel_streams")
                        if counted is not None and counted >= want:
                            break
                        time.sleep(0.2)
                    ok = ok and counted is not None and counted >= want
                time.sleep(1.0)
                loaded_relay, nprocs = rss(relay_side.pid)
                loaded_agent = proc_status(agent_side.pid, "VmRSS")
                try:
                    h.stdin.write("\n")
                    h.stdin.flush()
                    h.wait(30)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                PROCS.stop(h)
                for p in side_procs:
                    PROCS.stop(p)
                n = int(ready.split()[1]) if len(ready.split()) > 1 else 0
                row = {"workload": "idle", "round": rnd, "contestant": who, "streams": n,
                       "relay_counted": counted, "open_s": round(opened_s, 2),
                       "rss_relay_idle_kib": idle_relay, "rss_relay_kib": loaded_relay,
                       "rss_agent_idle_kib": idle_agent, "rss_agent_kib": loaded_agent, "relay_procs": nprocs,
                       "bytes_per_stream": (loaded_relay - idle_relay) * 1024 / n
                       if ok and n and loaded_relay and idle_relay else None,
                       "agent_bytes_per_stream": (loaded_agent - idle_agent) * 1024 / n
                       if ok and n and loaded_agent and idle_agent else None}
                if not ok:
                    row["error"] = "holdconns: %s%s" % (
                        ready, "" if counted is None else "; relay counts %d streams" % counted)
                self.runs.append(row)
                log("  idle      round %d/%d %-10s %s" % (rnd, REPS, who, short(row)))

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

    SPEC = [("iperf1", "iperf3 1 stream", "Gbit/s", "gbps", "higher"),
            ("wrk_ka", "wrk keep-alive (50 conns)", "req/s", "rps", "higher"),
            ("wrk_ka", "wrk keep-alive p50", "ms", "p50_ms", "lower"),
            ("wrk_ka", "wrk keep-alive p99", "ms", "p99_ms", "lower"),
            ("wrk_close", "wrk Connection: close", "conn/s", "rps", "higher"),
            ("wrk_close", "wrk Connection: close p50", "ms", "p50_ms", "lower"),
            ("wrk_close", "wrk Connection: close p99", "ms", "p99_ms", "lower")]

    def summary(self):
        rows = []
        for w, label, unit, key, better in self.SPEC:
            if w not in WORKLOADS:
                continue
            med = {who: median(self.values(w, who, key)) for who in CONTESTANTS}
            per = "cpu_ms_per_gb" if w == "iperf1" else "cpu_us_per_req"
            cpu = {who: {"relay": median(self.values(w, who, "cpu_relay")),
                         "agent": median(self.values(w, who, "cpu_agent")),
                         "relay_rqwait": median(self.values(w, who, "cpu_relay_rqwait")),
                         "agent_rqwait": median(self.values(w, who, "cpu_agent_rqwait")),
                         "per_unit": median(self.values(w, who, per))} for who in CONTESTANTS[1:]}
            rows.append({"workload": w, "label": label, "unit": unit, "key": key, "better": better,
                         "median": med, "cpu": cpu,
                         "cost_unit": "CPU ms/GB" if w == "iperf1" else
                                      "CPU µs/conn" if w == "wrk_close" else "CPU µs/req",
                         "busy_pct": median(self.values(w, "tunnel", "cpu_machine_busy")),
                         "t_aes": ratio(med["tunnel"], med["ssh-aes"]),
                         "t_chacha": ratio(med["tunnel"], med["ssh-chacha"]),
                         "t_d": ratio(med["tunnel"], med["direct"]),
                         "aes_d": ratio(med["ssh-aes"], med["direct"]),
                         "rounds_t_aes": [round(x, 3) for x in self.round_ratios(w, key, "tunnel", REF)]})
        mem = None
        if "idle" in WORKLOADS:
            mem = {who: {k: median(self.values("idle", who, k))
                         for k in ("streams", "rss_relay_idle_kib", "rss_relay_kib", "rss_agent_idle_kib",
                                   "rss_agent_kib", "bytes_per_stream", "agent_bytes_per_stream",
                                   "relay_procs", "open_s")}
                   for who in ("ssh-aes", "tunnel")}
        return rows, mem

    def targets(self, rows, mem):
        t = []
        by = {(r["workload"], r["key"]): r for r in rows}

        def add(name, r, bound, want_ge):
            if not r or r["t_aes"] is None:
                t.append((name, "n/a", "n/a"))
                return
            rr = r["rounds_t_aes"]
            ok = r["t_aes"] >= bound if want_ge else r["t_aes"] <= bound
            spread = ""
            if rr:
                lo, hi = min(rr), max(rr)
                spread = " (per-round %.2f–%.2f%s)" % (lo, hi, ", straddles %.1f" % bound
                                                       if lo < bound < hi else "")
            t.append((name, "%.3f× ssh -R%s" % (r["t_aes"], spread), "PASS" if ok else "MISS"))

        add("single-stream throughput ≥ 1.5× ssh -R aes128-gcm", by.get(("iperf1", "gbps")), 1.5, True)
        add("keep-alive req/s ≥ 3× ssh -R", by.get(("wrk_ka", "rps")), 3.0, True)
        add("new connections/s ≥ 2× ssh -R", by.get(("wrk_close", "rps")), 2.0, True)
        add("keep-alive p99 ≤ 0.5× ssh -R's", by.get(("wrk_ka", "p99_ms")), 0.5, False)
        add("Connection: close p99 ≤ 0.5× ssh -R's", by.get(("wrk_close", "p99_ms")), 0.5, False)
        if mem:
            m = mem["tunnel"]
            kib = m["rss_relay_kib"]
            bps = mem["ssh-aes"]["bytes_per_stream"]
            t.append(("%s idle streams: relay RSS ≤ 100 MiB" % "{:,}".format(STREAMS),
                      "%.1f MiB, %s bytes per stream (sshd: %s bytes per stream)" % (
                          kib / 1024, fmt(m["bytes_per_stream"], 0), fmt(bps, 0)) if kib else "n/a",
                      "n/a" if kib is None or not m["streams"] or m["streams"] < STREAMS
                      else "PASS" if kib <= 100 * 1024 else "MISS"))
        return t

    def report(self, elapsed):
        rows, mem = self.summary()
        targets = self.targets(rows, mem)
        md = ["# tunnel path benchmark: relay + agent beside ssh -R", ""]
        for line in self.meta_lines(elapsed):
            md.append("- " + line)
        md.append("")
        if rows:
            md.append("## Throughput and latency (medians of %d interleaved rounds)" % REPS)
            md.append("")
            md.append("| workload | unit | direct | ssh -R aes128-gcm | ssh -R chacha20 | tunnel | tunnel/ssh-aes | "
                      "tunnel/ssh-chacha | tunnel/direct | ssh-aes/direct | per-round tunnel/ssh-aes |")
            md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            for r in rows:
                digits = 2 if r["unit"] in ("Gbit/s", "ms") else 0
                m = r["median"]
                md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    r["label"], r["unit"], fmt(m["direct"], digits), fmt(m["ssh-aes"], digits),
                    fmt(m["ssh-chacha"], digits), fmt(m["tunnel"], digits), fmt(r["t_aes"], 2, "×"),
                    fmt(r["t_chacha"], 2, "×"), fmt(r["t_d"], 2, "×"), fmt(r["aes_d"], 2, "×"),
                    " ".join("%.2f" % x for x in r["rounds_t_aes"])))
            md.append("")
            md.append("Ratios are of medians; for latency lower is better (a ratio below 1.0 means the tunnel "
                      "is faster). wrk's latency runs from writing a request to reading its response: with "
                      "Connection: close it leaves out the TCP connect to the public port, but includes "
                      "opening the stream (yamux SYN, or SSH channel open) and the far side's connect to "
                      "the service.")
            md.append("")
            md.append("## Where the CPU went (medians)")
            md.append("")
            md.append("| workload | contestant | relay side CPU % | its run-queue wait % | agent side CPU % | "
                      "its run-queue wait % | cost unit | both sides' cost | cost / ssh-aes |")
            md.append("|---|---|---:|---:|---:|---:|---|---:|---:|")
            for r in rows:
                if r["unit"] == "ms":
                    continue
                ref = r["cpu"][REF]["per_unit"]
                for who in CONTESTANTS[1:]:
                    c = r["cpu"][who]
                    md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                        r["label"], who, fmt(c["relay"], 0), fmt(c["relay_rqwait"], 0), fmt(c["agent"], 0),
                        fmt(c["agent_rqwait"], 0), r["cost_unit"], fmt(c["per_unit"], 1),
                        fmt(ratio(c["per_unit"], ref), 2, "×")))
            md.append("")
            md.append("Relay side: the tunnel relay, or sshd with its per-session processes (the ssh -R "
                      "listener side). Agent side: the tunnel agent, or the ssh client. CPU %% is "
                      "utime+stime over the run (100 = one core; %s CPUs). Run-queue wait is the time the "
                      "threads were runnable but had no CPU (schedstat): what the busy, shared machine took. "
                      "Cost is both sides' CPU per unit of work, independent of the CPU share they got."
                      % self.meta.get("cpus"))
        if mem:
            md.append("")
            md.append("## Idle streams on one session (tunnel: medians of %d rounds; ssh -R: %d; "
                      "fresh processes each round)" % (REPS, min(REPS, SSH_IDLE_REPS)))
            md.append("")
            md.append("| relay side | idle streams | RSS idle | RSS loaded | MiB | bytes per stream (loaded − idle) "
                      "| agent side RSS loaded | agent bytes per stream | time to open them |")
            md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for who, label in (("tunnel", "tunnel relay"), ("ssh-aes", "sshd (all its processes)")):
                m = mem[who]
                md.append("| %s | %s | %s KiB | %s KiB | %s | %s | %s KiB | %s | %s s |" % (
                    label, "{:,}".format(int(m["streams"])) if m["streams"] else "n/a",
                    fmt(m["rss_relay_idle_kib"], 0), fmt(m["rss_relay_kib"], 0),
                    fmt(m["rss_relay_kib"] / 1024 if m["rss_relay_kib"] else None, 1),
                    fmt(m["bytes_per_stream"], 0), fmt(m["rss_agent_kib"], 0),
                    fmt(m["agent_bytes_per_stream"], 0), fmt(m["open_s"], 1)))
            md.append("")
            md.append("The relay's figure is read once its /metrics `tunnel_streams` counts every stream "
                      "and bench/holdconns.py has seen each connection's first bytes arrive at the service. "
                      "sshd's is the sum of VmRSS over its listener and per-session processes (%s of them); "
                      "the agent side is the tunnel agent or the ssh client. sshd and ssh go through "
                      "every channel on each event, so opening 10,000 channels costs them minutes of CPU "
                      "here: they are measured at %s streams (BENCH_SSH_STREAMS), where bytes per stream "
                      "are the same (they grow linearly)." %
                      (fmt(mem["ssh-aes"]["relay_procs"], 0), "{:,}".format(SSH_STREAMS)))
        md.append("")
        md.append("## Targets")
        md.append("")
        md.append("| target | measured | verdict |")
        md.append("|---|---|---|")
        for name, val, verdict in targets:
            md.append("| %s | %s | **%s** |" % (name, val, verdict))
        md.append("")
        md.append("Compared with ssh -R aes128-gcm (the faster cipher on a CPU with AES-NI), same run, same "
                  "machine. A verdict whose per-round ratios straddle its bound is within this machine's "
                  "noise: another run may flip it.")
        warn = self.warnings()
        if warn:
            md += ["", "## Warnings", ""] + ["- " + w for w in warn]
        md += ["", "## Commands", ""]
        for k, v in self.cmds.items():
            md.append("- %s: `%s`" % (k, v))
        md.append("- iperf3 client: `iperf3 -c 127.0.0.1 -p PORT -t %d -O 1 -J`" % SECS)
        md.append("- wrk: `wrk -t2 -c50 -d%ds --latency -H 'Host: %s' [-H 'Connection: close'] "
                  "http://127.0.0.1:PORT/1k.bin`" % (SECS, HTTP_HOST))
        md.append("- PORT is the service (direct), sshd's forwarded port or the relay's tcp service port; "
                  "the generated scripts and configs are in tunnel/.")
        md += ["", "Raw per-run numbers: runs-tunnel.csv, results-tunnel.json."]
        text = "\n".join(align_tables(md)) + "\n"
        with open(os.path.join(self.out, "report-tunnel.md"), "w") as f:
            f.write(text)
        self.write_raw(rows, mem, targets, elapsed)
        print()
        print(text)

    def warnings(self):
        w = list(self.notes)
        for r in self.runs:
            if r.get("error"):
                w.append("%s round %d %s: %s" % (r["workload"], r["round"], r["contestant"], r["error"]))
            if r.get("socket_errors") or r.get("non2xx"):
                w.append("%s round %d %s: %d socket errors (%d timeouts), %d non-2xx responses" % (
                    r["workload"], r["round"], r["contestant"], r.get("socket_errors", 0),
                    r.get("timeouts", 0), r.get("non2xx", 0)))
        for f in sorted(os.listdir(self.work)):
            if f.endswith(".stderr") and f.startswith(("relay-", "agent-")):
                lines = [l for l in open(os.path.join(self.work, f), errors="replace") if '"level":"error"' in l]
                if lines:
                    w.append("%s: %d error lines, the first: %s" % (f, len(lines), lines[0].strip()[:200]))
        return w

    def meta_lines(self, elapsed):
        m = self.meta
        return [
            "date: %s; total run time %.0f s" % (m["date"], elapsed),
            "machine: %s, %s CPUs (AES-NI: %s), kernel %s; load average at start %s" % (
                m["cpu_model"], m["cpus"], m["aesni"], m["kernel"], m["loadavg"]),
            "method: %d rounds per figure, contestants interleaved direct → ssh-aes → ssh-chacha → tunnel "
            "in every round; %d s per run (iperf3 adds 1 s omitted warm-up); figures are medians, "
            "comparisons ratios of medians" % (REPS, SECS),
            "tunnel: %s (%s, built %s, sha256 %s), relay and agent as two processes on loopback, one "
            "mutual-TLS 1.3 + yamux session, tcp services, `log_level = \"warn\"`%s%s" % (
                os.path.relpath(self.tunnel_bin, ROOT), m["tunnel_version"], m["tunnel_mtime"],
                m["tunnel_sha256"],
                "; EXPERIMENT, tunnel.config adds: %s" % TUNNEL_CONFIG if TUNNEL_CONFIG else "",
                "; EXPERIMENT, mux adds: %s" % TUNNEL_MUX if TUNNEL_MUX else ""),
            "OpenSSH: %s; sshd started here as %s, one ssh -N connection per cipher carrying every -R "
            "forward, Compression no" % (m["ssh_version"], self.user),
            "nginx: %s, worker_processes %s, 1 KiB static file, access_log off" % (
                m["nginx_version"], NGINX_WORKERS),
            "iperf3 %s; wrk %s" % (m["iperf3_version"], m["wrk_version"]),
            "sysctl: somaxconn %s, tcp_tw_reuse %s, ip_local_port_range %s; RLIMIT_NOFILE %s" % (
                m["somaxconn"], m["tw_reuse"], m["port_range"], m["nofile"]),
        ]

    def collect_meta(self):
        self.meta.update(machine_meta())
        flags = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line
                    break
        import hashlib
        with open(self.tunnel_bin, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()[:12]
        self.meta.update({
            "aesni": "yes" if " aes " in flags + " " else "no",
            "ssh_version": first_line(["ssh", "-V"]),
            "tunnel_version": first_line([self.tunnel_bin, "version"]),
            "tunnel_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(self.tunnel_bin).st_mtime)),
            "tunnel_sha256": sha,
            "nginx_workers": NGINX_WORKERS, "workloads": WORKLOADS, "streams": STREAMS,
            "ssh_streams": SSH_STREAMS,
        })

    def write_raw(self, rows, mem, targets, elapsed):
        keys = ["workload", "round", "contestant", "gbps", "retransmits", "rps", "p50_ms", "p90_ms", "p99_ms",
                "socket_errors", "timeouts", "non2xx", "cpu_relay", "cpu_relay_rqwait", "cpu_agent",
                "cpu_agent_rqwait", "cpu_backend", "cpu_backend_rqwait", "cpu_machine_busy", "cpu_ms_per_gb",
                "cpu_us_per_req", "streams", "relay_counted", "open_s", "rss_relay_idle_kib", "rss_relay_kib",
                "rss_agent_idle_kib", "rss_agent_kib", "relay_procs", "bytes_per_stream",
                "agent_bytes_per_stream", "error"]
        with open(os.path.join(self.out, "runs-tunnel.csv"), "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            wr.writeheader()
            for r in self.runs:
                wr.writerow(r)
        with open(os.path.join(self.out, "results-tunnel.json"), "w") as f:
            json.dump({"meta": self.meta, "elapsed_s": round(elapsed, 1), "reps": REPS, "secs": SECS,
                       "streams": STREAMS, "ssh_streams": SSH_STREAMS, "summary": rows, "idle": mem,
                       "targets": [{"target": a, "measured": b, "verdict": c} for a, b, c in targets],
                       "runs": self.runs, "commands": self.cmds}, f, indent=1)


def short(row):
    keys = ("gbps", "rps", "p99_ms", "streams", "rss_relay_kib", "bytes_per_stream", "rss_agent_kib",
            "cpu_relay", "cpu_agent", "cpu_us_per_req", "cpu_ms_per_gb", "cpu_machine_busy", "error")
    return " ".join("%s=%s" % (k, ("%.3g" % row[k]) if isinstance(row[k], float) else row[k])
                    for k in keys if row.get(k) is not None)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: bench/run BUILD  (BENCH_PART=tunnel for this part alone)\n")
        return 2
    if not WORKLOADS:
        log("tunnel bench: BENCH_ONLY=%s names none of %s; nothing to do" % (",".join(ONLY),
                                                                            ",".join(ALL_WORKLOADS)))
        return 0
    b = TunnelBench(sys.argv[1])
    missing = [t for t in ("iperf3", "wrk", "nginx", "ssh", "ssh-keygen") if not shutil.which(t)]
    if not os.access(SSHD, os.X_OK):
        missing.append(SSHD + " (openssh-server)")
    if missing:
        sys.stderr.write("tunnel bench: missing %s (make deps installs them)\n" % ", ".join(missing))
        return 1
    if not os.access(b.tunnel_bin, os.X_OK):
        sys.stderr.write("tunnel bench: %s not built (make BUILD=%s all)\n" % (b.tunnel_bin, sys.argv[1]))
        return 1
    if os.getuid() == 0 and not os.path.isdir("/run/sshd"):
        sys.stderr.write("tunnel bench: sshd run as root needs its privilege separation directory "
                         "/run/sshd (install openssh-server, or run as another user)\n")
        return 1
    os.makedirs(b.out, exist_ok=True)
    for name in ("report-tunnel.md", "runs-tunnel.csv", "results-tunnel.json"):   # what earlier runs wrote
        if os.path.exists(os.path.join(b.out, name)):
            os.unlink(os.path.join(b.out, name))
    if os.path.isdir(b.work):
        shutil.rmtree(b.work)
    os.makedirs(b.work)
    install_signal_handlers()
    # idle: the relay side and the agent side hold one descriptor per stream;
    # holdconns.py two (it splits itself in two processes if the limit is lower).
    most = max(STREAMS, SSH_STREAMS)
    nofile = raise_nofile(2 * most + 4096)
    if "idle" in WORKLOADS and nofile < most + 1024:
        b.notes.append("RLIMIT_NOFILE is %d and cannot be raised: %d idle streams need about %d descriptors "
                       "in the relay and the agent" % (nofile, most, most + 1024))

    t0 = time.monotonic()
    b.collect_meta()
    b.meta["nofile"] = nofile
    log("tunnel bench: %d rounds × %d s, workloads %s, %d idle streams; output in %s" % (
        REPS, SECS, ",".join(WORKLOADS), STREAMS, b.out))
    log("tunnel bench: relay + agent (log_level \"warn\") vs ssh -N -R (%s) vs direct" %
        ", ".join(CIPHERS.values()))
    try:
        b.make_credentials()
        b.start_backends()
        if any(w != "idle" for w in WORKLOADS):
            b.throughput()
        if "idle" in WORKLOADS:
            b.idle()
    except RuntimeError as e:
        sys.stderr.write("tunnel bench: %s\n" % e)
        PROCS.stop_all()
        return 1
    PROCS.stop_all()
    b.report(time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

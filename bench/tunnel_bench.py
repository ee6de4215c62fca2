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

Figures are medians; the tables compare ratios of medians, with the per-round
ratios beside them; a target's verdict takes the median of the per-round ratios
(each round runs the contestants back to back, so that ratio is free of the
drift between rounds). A benchmark does not fail the build: the targets
are printed PASS/MISS and the exit status is 0 unless the set-up itself broke.

Environment: BENCH_REPS (5), BENCH_SECS (3), BENCH_STREAMS (10000),
BENCH_SSH_STREAMS (2000), BENCH_SSH_IDLE_REPS (1), BENCH_ONLY
(comma list of workloads; names of the router bench are ignored here),
BENCH_NGINX_WORKERS (1); for experiments only, BENCH_TUNNEL_CONFIG adds fields
to both processes' tunnel.config{} and BENCH_TUNNEL_MUX to both mux = {}
tables (e.g. "max_window = 1048576").
"""
import getpass
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True       # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import (NGINX_WORKERS, PROCS, REPS, ROOT, SECS, TUNNEL_CONFIG, BaseBench, Procs,  # noqa: E402
                    fill, first_line, fmt, free_ports, held, log, proc_status, raise_nofile,
                    start_holdconns, stop_holdconns, table, wait_listening, workloads)

STREAMS = int(os.environ.get("BENCH_STREAMS", "10000"))
# sshd and ssh go through every channel for each event: 10,000 channels take
# them minutes of CPU to open (2,000: seconds). Bytes per stream grow linearly
# (measured: ~34 KB from 2,000 to 10,000), so ssh -R is measured at
# BENCH_SSH_STREAMS, once, unless asked for more.
SSH_STREAMS = int(os.environ.get("BENCH_SSH_STREAMS", "2000"))
SSH_IDLE_REPS = int(os.environ.get("BENCH_SSH_IDLE_REPS", "1"))
TUNNEL_MUX = os.environ.get("BENCH_TUNNEL_MUX", "").strip()         # experiments only
ALL_WORKLOADS = ["iperf1", "wrk_ka", "wrk_close", "idle"]
WORKLOADS = workloads(ALL_WORKLOADS)
# "chain": two plain routers in a row (tunnel.listen, no TLS, no mux): the
# same two user-space hops as relay + agent with nothing but the copies, a
# bound on what any relay + agent pair that encrypts in user space can reach.
CONTESTANTS = ["direct", "ssh-aes", "ssh-chacha", "tunnel", "chain"]
CIPHERS = {"ssh-aes": "aes128-gcm@openssh.com", "ssh-chacha": "chacha20-poly1305@openssh.com"}
REF = "ssh-aes"                 # what the targets compare with
SSHD = "/usr/sbin/sshd"         # sshd re-executes itself: it wants an absolute path
SERVICES = ("iperf", "http")    # what the traffic workloads cross; "hold" for idle
START_S = 15.0                  # how long a relay, agent, sshd or ssh may take to listen


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

CHAIN_LUA = """\
-- generated by bench/tunnel_bench.py: one of two plain routers in a row (the
-- "chain" reference: the tunnel's two hops without TLS or yamux). Zero copy
-- is off: the relay and agent copy every byte through user space (TLS and
-- yamux frames), and so does this reference.
local tunnel = require "tunnel"

tunnel.config{ log_level = "warn", management = false, zero_copy = false{config_extra} }
{listeners}
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

class TunnelBench(BaseBench):
    NAME = "tunnel bench"
    USAGE = "usage: bench/run BUILD  (BENCH_PART=tunnel for this part alone)\n"
    TITLE = "# tunnel path benchmark: relay + agent beside ssh -R"
    GENERATOR = "bench/tunnel_bench.py"
    ALL_WORKLOADS = ALL_WORKLOADS
    WORKLOADS = WORKLOADS
    MEMORY = "idle"
    CONTESTANTS = CONTESTANTS
    HEADS = {"ssh-aes": "ssh -R aes128-gcm", "ssh-chacha": "ssh -R chacha20", "chain": "plain chain"}
    LOG_WIDTH = 10
    SHORT_KEYS = ("gbps", "rps", "p99_ms", "streams", "rss_relay_kib", "bytes_per_stream", "rss_agent_kib",
                  "cpu_relay", "cpu_agent", "cpu_us_per_req", "cpu_ms_per_gb", "cpu_machine_busy", "error",
                  "host_stall_ms")
    TOOLS = ("iperf3", "wrk", "nginx", "ssh", "ssh-keygen")
    RATIOS = [("t_aes", "tunnel", "ssh-aes"), ("t_chacha", "tunnel", "ssh-chacha"), ("t_d", "tunnel", "direct"),
              ("aes_d", "ssh-aes", "direct"), ("chain_aes", "chain", "ssh-aes")]
    ROUNDS = ("rounds_t_aes", "tunnel", REF)
    VERSUS = "ssh -R"
    RATIO_DIGITS = 3
    TARGETS_NOTE = ("Compared with ssh -R aes128-gcm (the faster cipher on a CPU with AES-NI), same run, same "
                    "machine. A verdict whose per-round ratios straddle its bound is within this machine's "
                    "noise: another run may flip it.")
    PORT_NOTE = ("the service (direct), sshd's forwarded port or the relay's tcp service port; "
                 "the generated scripts and configs are in tunnel/.")
    REPORT_MD, RUNS_CSV, RESULTS_JSON = "report-tunnel.md", "runs-tunnel.csv", "results-tunnel.json"
    CSV_KEYS = common.CLIENT_KEYS + [
        "cpu_relay", "cpu_relay_rqwait", "cpu_agent", "cpu_agent_rqwait", "cpu_backend", "cpu_backend_rqwait",
        "cpu_machine_busy", "cpu_ms_per_gb", "cpu_us_per_req", "streams", "relay_counted", "open_s",
        "rss_relay_idle_kib", "rss_relay_kib", "rss_agent_idle_kib", "rss_agent_kib", "relay_procs",
        "bytes_per_stream", "agent_bytes_per_stream", "error", "host_stall_ms"]

    def __init__(self, build):
        super().__init__(build)
        self.work = os.path.join(self.out, "tunnel")       # everything generated, ours alone
        self.pki = os.path.join(self.work, "pki")
        self.sshdir = os.path.join(self.work, "ssh")
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

    # -- contestants -----------------------------------------------------------

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
        wait_listening([agents], [relay], "the relay", START_S)
        agent = PROCS.start("agent", run + [ascript], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(self.work, "agent-%s.stderr" % tag), "w"))
        wait_listening(list(public.values()), [relay, agent], "the relay (agent's tcp services)", START_S)
        rel = os.path.relpath(self.tunnel_bin, ROOT)
        self.cmds["relay"] = "%s run --drain 1 $BUILD/bench/tunnel/relay-<tag>.lua" % rel
        self.cmds["agent"] = "%s run --drain 1 $BUILD/bench/tunnel/agent-<tag>.lua" % rel
        return relay, agent, public, mgmt

    def start_chain(self, targets):
        """Two routers: public port -> first -> second -> service, one pair of
        listeners per targets entry, sniffing off (bytes go through as they
        come). Returns (first, second, public ports by name)."""
        names = sorted(targets)
        ports = free_ports(2 * len(names))
        public = dict(zip(names, ports[:len(names)]))
        middle = dict(zip(names, ports[len(names):]))
        procs = []
        for half, (src, dst) in enumerate(((public, middle), (middle, targets))):
            listeners = "".join(
                '\ntunnel.listen{ name = "%s", addr = "127.0.0.1:%d", sniff = { enabled = false },\n'
                '  route = function() return "127.0.0.1:%d" end }\n' % (n, src[n], dst[n]) for n in names)
            script = os.path.join(self.work, "chain-%d.lua" % (half + 1))
            with open(script, "w") as f:
                f.write(fill(CHAIN_LUA, {"config_extra": lua_extra(TUNNEL_CONFIG), "listeners": listeners}))
            procs.append(PROCS.start("chain-%d" % (half + 1), [self.tunnel_bin, "run", "--drain", "1", script],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.work, "chain-%d.stderr" % (half + 1)), "w")))
        wait_listening(list(public.values()) + list(middle.values()), procs, "the chain routers", START_S)
        self.cmds["chain"] = ("%s run --drain 1 $BUILD/bench/tunnel/chain-{1,2}.lua (two routers in a row)"
                              % os.path.relpath(self.tunnel_bin, ROOT))
        return procs[0], procs[1], public

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
        wait_listening([port], [proc], "sshd", START_S)
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
        wait_listening(list(public.values()), [proc, sshd], "ssh -R (%s)" % cipher, START_S)
        self.cmds["ssh"] = ("ssh -N -F /dev/null -p SSHD_PORT -i $W/ssh/user_ed25519 -o Ciphers=CIPHER "
                            "-o Compression=no -o BatchMode=yes -o ExitOnForwardFailure=yes "
                            "-R 127.0.0.1:PUB:127.0.0.1:SERVICE ... %s@127.0.0.1" % self.user)
        return proc, public

    # -- throughput and latency workloads -------------------------------------

    def entry(self, who, service):
        return self.public[who][service]

    def watch(self, who, backend):
        r, a = self.halves[who]
        return {"relay": r, "agent": a, "backend": backend}

    def cost(self, workload, row):
        """CPU of the tunnel's two halves (relay side + agent side) per unit of
        work: ms per GB, µs per request or connection."""
        if row.get("cpu_relay") is None or row.get("cpu_agent") is None:
            return {}
        return common.cost(workload, row["cpu_relay"] + row["cpu_agent"], row)

    def throughput(self):
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
        first, second, pub = self.start_chain(targets)
        self.public["chain"] = pub
        self.halves["chain"] = (first, second)
        self.meta["relay_rss_kib_at_start"] = proc_status(relay.pid, "VmRSS")
        self.meta["agent_rss_kib_at_start"] = proc_status(agent.pid, "VmRSS")
        self.meta["relay_threads"] = proc_status(relay.pid, "Threads")
        self.meta["agent_threads"] = proc_status(agent.pid, "Threads")
        self.measure([w for w in WORKLOADS if w != "idle"])
        # The sessions first (sshd's per-session processes end with them), then the rest.
        for p in (self.halves["ssh-aes"][1], self.halves["ssh-chacha"][1], sshd, agent, relay, first, second):
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

    def memory(self):
        """The idle workload: idle streams on one session (see the docstring)."""
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
                else:
                    relay_side, sport = self.start_sshd("idle")
                    agent_side, pub = self.start_ssh("idle", CIPHERS[who], sport, {"hold": hold}, relay_side)
                time.sleep(0.5)
                rss = self.tree_rss if who != "tunnel" else (lambda pid: (proc_status(pid, "VmRSS"), 1))
                idle_relay, _ = rss(relay_side.pid)
                idle_agent = proc_status(agent_side.pid, "VmRSS")
                t0 = time.monotonic()
                want = STREAMS if who == "tunnel" else SSH_STREAMS
                h, ready = start_holdconns([hold, pub["hold"], want], env=dict(os.environ, **self.hold_env(who)))
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
                stop_holdconns(h, 30)
                for p in (agent_side, relay_side):
                    PROCS.stop(p)
                n = held(ready)
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
                self.record(row)

    def run(self):
        self.make_credentials()
        super().run()

    # -- report ---------------------------------------------------------------

    def cpu_summary(self, workload, per):
        return {"cpu": self.medians(workload, CONTESTANTS[1:], {
            "relay": "cpu_relay", "agent": "cpu_agent", "relay_rqwait": "cpu_relay_rqwait",
            "agent_rqwait": "cpu_agent_rqwait", "per_unit": per})}

    def memory_summary(self):
        return self.medians("idle", ("ssh-aes", "tunnel"), (
            "streams", "rss_relay_idle_kib", "rss_relay_kib", "rss_agent_idle_kib", "rss_agent_kib",
            "bytes_per_stream", "agent_bytes_per_stream", "relay_procs", "open_s"))

    def targets(self, rows, mem):
        t = [self.ratio_target(name, rows, w, key, bound, want_ge) for name, w, key, bound, want_ge in (
            ("single-stream throughput ≥ 1.5× ssh -R aes128-gcm", "iperf1", "gbps", 1.5, True),
            ("keep-alive req/s ≥ 3× ssh -R", "wrk_ka", "rps", 3.0, True),
            ("new connections/s ≥ 2× ssh -R", "wrk_close", "rps", 2.0, True),
            ("keep-alive p99 ≤ 0.5× ssh -R's", "wrk_ka", "p99_ms", 0.5, False),
            ("Connection: close p99 ≤ 0.5× ssh -R's", "wrk_close", "p99_ms", 0.5, False))]
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

    def sections(self, rows, mem):
        md = []
        if rows:
            md += self.ratio_section(rows, " to the public port, but includes opening the stream (yamux "
                                           "SYN, or SSH channel open) and the far side's connect to the service")
            md += ["", "## Where the CPU went (medians)", ""]
            cpu = []
            for r in rows:
                if r["unit"] == "ms":
                    continue
                ref = r["cpu"][REF]["per_unit"]
                for who in CONTESTANTS[1:]:
                    c = r["cpu"][who]
                    cpu.append([r["label"], who, fmt(c["relay"], 0), fmt(c["relay_rqwait"], 0), fmt(c["agent"], 0),
                                fmt(c["agent_rqwait"], 0), r["cost_unit"], fmt(c["per_unit"], 1),
                                fmt(common.ratio(c["per_unit"], ref), 2, "×")])
            md += table(["workload", "contestant", "relay side CPU %", "its run-queue wait %", "agent side CPU %",
                         "its run-queue wait %", "cost unit", "both sides' cost", "cost / ssh-aes"],
                        "llrrrrlrr", cpu)
            md.append("")
            md.append("Relay side: the tunnel relay, sshd with its per-session processes (the ssh -R "
                      "listener side), or the chain's first router. Agent side: the tunnel agent, the ssh "
                      "client, or the chain's second router. CPU %% is "
                      "utime+stime over the run (100 = one core; %s CPUs). Run-queue wait is the time the "
                      "threads were runnable but had no CPU (schedstat): what the busy, shared machine took. "
                      "Cost is both sides' CPU per unit of work, independent of the CPU share they got."
                      % self.meta.get("cpus"))
        if mem:
            md += ["", "## Idle streams on one session (tunnel: medians of %d rounds; ssh -R: %d; "
                   "fresh processes each round)" % (REPS, min(REPS, SSH_IDLE_REPS)), ""]
            idle = []
            for who, label in (("tunnel", "tunnel relay"), ("ssh-aes", "sshd (all its processes)")):
                m = mem[who]
                idle.append([label, "{:,}".format(int(m["streams"])) if m["streams"] else "n/a",
                             fmt(m["rss_relay_idle_kib"], 0) + " KiB", fmt(m["rss_relay_kib"], 0) + " KiB",
                             fmt(m["rss_relay_kib"] / 1024 if m["rss_relay_kib"] else None, 1),
                             fmt(m["bytes_per_stream"], 0), fmt(m["rss_agent_kib"], 0) + " KiB",
                             fmt(m["agent_bytes_per_stream"], 0), fmt(m["open_s"], 1) + " s"])
            md += table(["relay side", "idle streams", "RSS idle", "RSS loaded", "MiB",
                         "bytes per stream (loaded − idle)", "agent side RSS loaded", "agent bytes per stream",
                         "time to open them"], "lrrrrrrrr", idle)
            md.append("")
            md.append("The relay's figure is read once its /metrics `tunnel_streams` counts every stream "
                      "and bench/holdconns.py has seen each connection's first bytes arrive at the service. "
                      "sshd's is the sum of VmRSS over its listener and per-session processes (%s of them); "
                      "the agent side is the tunnel agent or the ssh client. sshd and ssh go through "
                      "every channel on each event, so opening 10,000 channels costs them minutes of CPU "
                      "here: they are measured at %s streams (BENCH_SSH_STREAMS), where bytes per stream "
                      "are the same (they grow linearly)." %
                      (fmt(mem["ssh-aes"]["relay_procs"], 0), "{:,}".format(SSH_STREAMS)))
        return md

    def warnings(self):
        w = super().warnings()
        for f in sorted(os.listdir(self.work)):
            if f.endswith(".stderr") and f.startswith(("relay-", "agent-")):
                lines = [l for l in open(os.path.join(self.work, f), errors="replace") if '"level":"error"' in l]
                if lines:
                    w.append("%s: %d error lines, the first: %s" % (f, len(lines), lines[0].strip()[:200]))
        return w

    def meta_lines(self, elapsed):
        m = self.meta
        return self.meta_head(elapsed, " (AES-NI: %s)" % m["aesni"]) + [
            "tunnel: %s (%s, built %s, sha256 %s), relay and agent as two processes on loopback, one "
            "mutual-TLS 1.3 + yamux session, tcp services, `log_level = \"warn\"`%s%s" % (
                os.path.relpath(self.tunnel_bin, ROOT), m["tunnel_version"], m["tunnel_mtime"],
                m["tunnel_sha256"],
                "; EXPERIMENT, tunnel.config adds: %s" % TUNNEL_CONFIG if TUNNEL_CONFIG else "",
                "; EXPERIMENT, mux adds: %s" % TUNNEL_MUX if TUNNEL_MUX else ""),
            "OpenSSH: %s; sshd started here as %s, one ssh -N connection per cipher carrying every -R "
            "forward, Compression no" % (m["ssh_version"], self.user),
        ] + self.meta_tail(sysctl_extra="; RLIMIT_NOFILE %s" % m["nofile"])

    def raw_params(self):
        return {"streams": STREAMS, "ssh_streams": SSH_STREAMS}

    # -- main -------------------------------------------------------------------

    def missing(self):
        return super().missing() + ([] if os.access(SSHD, os.X_OK) else [SSHD + " (openssh-server)"])

    def preflight(self):
        if os.getuid() == 0 and not os.path.isdir("/run/sshd"):
            return ("sshd run as root needs its privilege separation directory "
                    "/run/sshd (install openssh-server, or run as another user)")
        return None

    def clean(self):
        for name in (self.REPORT_MD, self.RUNS_CSV, self.RESULTS_JSON):   # what earlier runs wrote
            if os.path.exists(os.path.join(self.out, name)):
                os.unlink(os.path.join(self.out, name))
        if os.path.isdir(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)

    def setup(self):
        # idle: the relay side and the agent side hold one descriptor per stream;
        # holdconns.py two (it splits itself in two processes if the limit is lower).
        most = max(STREAMS, SSH_STREAMS)
        self.nofile = raise_nofile(2 * most + 4096)
        if "idle" in WORKLOADS and self.nofile < most + 1024:
            self.notes.append("RLIMIT_NOFILE is %d and cannot be raised: %d idle streams need about %d "
                              "descriptors in the relay and the agent" % (self.nofile, most, most + 1024))

    def collect_meta(self):
        self.meta.update(common.machine_meta())
        flags = " %s " % (common.cpuinfo("flags") or "")
        with open(self.tunnel_bin, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()[:12]
        self.meta.update({
            "aesni": "yes" if " aes " in flags else "no",
            "ssh_version": first_line(["ssh", "-V"]),
            "tunnel_version": first_line([self.tunnel_bin, "version"]),
            "tunnel_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(self.tunnel_bin).st_mtime)),
            "tunnel_sha256": sha,
            "nginx_workers": NGINX_WORKERS, "workloads": WORKLOADS, "streams": STREAMS,
            "ssh_streams": SSH_STREAMS, "nofile": self.nofile,
        })

    def banner(self):
        log("tunnel bench: %d rounds × %d s, workloads %s, %d idle streams; output in %s" % (
            REPS, SECS, ",".join(WORKLOADS), STREAMS, self.out))
        log("tunnel bench: relay + agent (log_level \"warn\") vs ssh -N -R (%s) vs direct" %
            ", ".join(CIPHERS.values()))


if __name__ == "__main__":
    sys.exit(TunnelBench.main())

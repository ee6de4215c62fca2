#!/usr/bin/python3
"""profile.py BUILD WORKLOAD [TOOL] — one workload against one proxy, under a profiler.

    bench/profile.py build-bench wrk_close            perf stat + CPU per process
    bench/profile.py build-bench wrk_close record     perf record -g (dwarf) on the proxy
    bench/profile.py build-bench wrk_ka strace        strace -c -f on the proxy
    PROXY=haproxy bench/profile.py build-bench iperf1 record

WORKLOAD is one of bench.py's (iperf1, iperf8, wrk_ka, wrk_close); PROXY is
tunnel (default) or haproxy. The same generated configs and backends as the
benchmark are used; BENCH_SECS sets the length of the run (default 5). Output
goes to BUILD/bench/profile-<proxy>-<workload>.* and a summary to stdout.
Nothing here is part of `make bench`: it is for explaining a MISS.
"""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True       # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_SECS", "5")
import bench  # noqa: E402  (after the environment default above)


def top_cpu(pids, secs):
    """CPU % of each process (with its children) over secs, sampled from /proc,
    and for each main process the share of the run it spent runnable but
    waiting for a CPU (scheduler run-queue delay: the machine is busy)."""
    t0 = {n: bench.tree_cpu_ticks(p) for n, p in pids.items()}
    s0 = {n: bench.common.runqueue_wait_ns(p) for n, p in pids.items()}
    m0 = bench.machine_ticks()
    time.sleep(secs)
    t1 = {n: bench.tree_cpu_ticks(p) for n, p in pids.items()}
    s1 = {n: bench.common.runqueue_wait_ns(p) for n, p in pids.items()}
    m1 = bench.machine_ticks()
    out = {n: 100.0 * (t1[n] - t0[n]) / bench.TICK / secs for n in pids}
    for n in pids:
        out[n + "_runqueue_wait"] = 100.0 * (s1[n] - s0[n]) / 1e9 / secs
    out["machine_busy"] = 100.0 * (1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0]))
    return out


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    build, workload = sys.argv[1], sys.argv[2]
    tool = sys.argv[3] if len(sys.argv) > 3 else "stat"
    who = os.environ.get("PROXY", "tunnel")
    secs = bench.SECS
    bench.WORKLOADS[:] = [workload]
    b = bench.Bench(build)
    os.makedirs(b.out, exist_ok=True)
    import atexit
    atexit.register(bench.PROCS.stop_all)
    b.start_backends()
    p = b.proxy_ports(bench.free_ports(1)[0])
    b.proxy = {who: p}
    proc = (b.start_haproxy if who == "haproxy" else b.start_tunnel)(p, "profile")
    b.run_once(workload, who, 1)                # warm-up
    base = os.path.join(b.out, "profile-%s-%s" % (who, workload))
    prof = None
    # every worker, not only the parent (tunnel run --workers N)
    workers = [k for k, _ in bench.common.Procs.descendants(proc.pid)]
    pids = ",".join(str(p) for p in [proc.pid] + workers)
    if tool == "stat":
        prof = subprocess.Popen(["perf", "stat", "-p", pids, "-o", base + ".stat",
                                 "-e", "task-clock,context-switches,cpu-migrations,page-faults,"
                                 "cycles,instructions", "--", "sleep", str(secs)])
    elif tool == "record":
        prof = subprocess.Popen(["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf,16384",
                                 "-p", pids, "-o", base + ".data", "--", "sleep", str(secs)],
                                stderr=subprocess.DEVNULL)
    elif tool == "strace":
        prof = subprocess.Popen(["strace", "-c", "-f", "-o", base + ".strace"] +
                                [a for p in pids.split(",") for a in ("-p", p)],
                                stderr=subprocess.DEVNULL)
    backend = b.servers["iperf3" if workload.startswith("iperf") else "nginx"]
    time.sleep(0.3)
    import threading
    cpu = {}
    th = threading.Thread(target=lambda: cpu.update(top_cpu({"proxy": proc.pid, "backend": backend.pid},
                                                            secs - 0.5)))
    th.start()
    res = b.run_once(workload, who, secs)
    th.join()
    if tool == "strace":
        prof.terminate()
    if prof:
        prof.wait()
    print("%s %s: %s" % (who, workload, bench.short(res)))
    print("CPU % over the run: " + ", ".join("%s %.0f" % kv for kv in cpu.items()))
    if tool == "stat":
        print(open(base + ".stat").read())
    elif tool == "strace":
        print(open(base + ".strace").read())
    elif tool == "record":
        print("perf data: %s  (perf report -i %s --no-children --stdio)" % (base + ".data", base + ".data"))
    bench.PROCS.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""stallprobe.py OUT — write down when a CPU of the machine stops.

On this VM the host now and then stops a vCPU, sometimes both, for ~100 ms
(no steal time is reported; it looks like a host CPU quota with a 100 ms
period). Whatever runs there then waits, and the contestant of that round
gets a p99 of ~100 ms through no fault of its own. This probe runs one
process pinned to each CPU at SCHED_FIFO priority 50, so that it preempts
every process the benchmark runs there, sleeping 2 ms at a time: a wake-up
more than STALL_MS late means nothing ran on that CPU. Each such gap goes
to OUT as one line "END GAP_MS CPU", END on the CLOCK_MONOTONIC clock
(Python's time.monotonic()), so that the benchmark can mark the runs it
fell in (common.py: host_stall_ms). It costs well under 1% of a CPU.

Exits 2 at once when it may not use SCHED_FIFO (not root): then the
benchmark runs without it and says so.
"""
import os
import sys
import time

STALL_MS = 20.0
STEP = 0.002


def probe(cpu, path):
    os.sched_setaffinity(0, {cpu})
    with open(path, "a", buffering=1) as out:
        prev = time.monotonic()
        while True:
            time.sleep(STEP)
            now = time.monotonic()
            gap = (now - prev) * 1e3
            if gap - STEP * 1e3 > STALL_MS:
                out.write("%.4f %.1f %d\n" % (now, gap, cpu))
            prev = now


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    except (OSError, AttributeError) as e:
        sys.stderr.write("stallprobe: no SCHED_FIFO: %s\n" % e)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    for cpu in cpus[1:]:
        if os.fork() == 0:          # a child per further CPU (SCHED_FIFO is inherited)
            probe(cpu, sys.argv[1])
    probe(cpus[0], sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())

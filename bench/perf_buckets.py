#!/usr/bin/python3
"""perf_buckets.py PERF_DATA — where a proxy's CPU went, by what it was doing.

    bench/profile.py build-bench wrk_close record
    bench/perf_buckets.py build-bench/bench/profile-tunnel-wrk_close.data

Reads `perf script` call chains (record with --call-graph dwarf, as profile.py
does) and puts each sample in the first bucket whose frame appears anywhere in
its stack, innermost frame first. The kernel time a syscall spends (on loopback
that includes the peer's receive path, run in the sender's context) is charged
to the syscall's caller, which is what one can change in the proxy.
"""
import collections
import subprocess
import sys

# (bucket, frame names). Order matters: the first bucket with a frame in the
# sample's stack wins, so specific callers come before generic ones.
BUCKETS = [
    ("upstream connect() (SYN, peer's SYN-ACK)", {"tnl_sock_connect", "__libc_connect"}),
    ("connect result getsockopt(SO_ERROR)", {"tnl_sock_connect_result", "__getsockopt"}),
    ("splice send()", {"fd_write", "__libc_send", "__send"}),
    ("splice/sniff recv()", {"fd_read", "__libc_recv", "__recv"}),
    ("shutdown(SHUT_WR) (FIN)", {"fd_shutdown", "__GI_shutdown", "shutdown"}),
    ("close()", {"fd_close", "__GI___close", "__close"}),
    ("accept4()", {"accept4"}),
    ("setsockopt(TCP_NODELAY)", {"tnl_sock_nodelay", "__GI___setsockopt", "setsockopt_syscall"}),
    ("getsockname() + address strings", {"tnl_addr_format", "__GI_getsockname", "getsockname"}),
    ("socket()", {"__GI_socket", "__socket"}),
    ("epoll_ctl() (watcher changes)", {"epoll_ctl", "__GI_epoll_ctl", "epoll_modify"}),
    ("epoll_wait() + scheduling", {"epoll_wait", "epoll_poll"}),
    ("route hook: conn table, coroutine, Lua", {"tnl_route_call", "push_conn", "tnl_hook_prepare",
                                                "lua_resume", "route_done", "tnl_hook_start"}),
    ("logging", {"tnl_log_begin", "tnl_log_end", "tnl_logf"}),
    ("sniffers", {"tnl_sniff_builtin", "tnl_sniff_http1", "tnl_sniff_tls", "sniff"}),
    ("malloc/free", {"_int_malloc", "_int_free", "malloc", "free", "__GI___libc_free",
                     "__GI___libc_malloc", "calloc", "__libc_calloc", "unlink_chunk.constprop.0",
                     "malloc_consolidate", "cfree"}),
]


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    out = subprocess.run(["perf", "script", "-i", sys.argv[1], "-F", "ip,sym,dso"],
                         capture_output=True, text=True).stdout
    counts = collections.Counter()
    total = 0
    for sample in out.split("\n\n"):
        frames = []
        dsos = []
        for line in sample.strip().splitlines():
            parts = line.split(None, 1)
            if len(parts) < 2:
                continue
            rest = parts[1]
            sym = rest.rsplit(" (", 1)[0].split("+0x")[0].strip()
            dso = rest.rsplit("(", 1)[-1].rstrip(")")
            frames.append(sym)
            dsos.append(dso)
        if not frames:
            continue
        total += 1
        names = set(frames)
        for bucket, syms in BUCKETS:
            if names & syms:
                counts[bucket] += 1
                break
        else:
            # LuaJIT frames break dwarf unwinding: a stack that ends in the VM is Lua.
            if any("luajit" in d for d in dsos):
                counts["route hook: conn table, coroutine, Lua"] += 1
            elif any("kernel" in d for d in dsos[:1]):
                counts["other kernel (softirq, timers, ...)"] += 1
            else:
                counts["other user space (" + frames[0] + ")"] += 1
    print("%d samples from %s" % (total, sys.argv[1]))
    for bucket, n in counts.most_common(25):
        print("%6.1f%%  %s" % (100.0 * n / total, bucket))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""holdconns.py — open N idle connections through a proxy to a backend that holds them.

    holdconns.py BACKEND_PORT TARGET_PORT N [HOST]

One process plays both ends, on 127.0.0.1:
  * the backend listens on BACKEND_PORT, accepts, reads each connection's first
    request and then holds the connection open without answering;
  * the client opens N connections to TARGET_PORT (the proxy), each sending one
    small HTTP request line with "Host: HOST", so that a sniffing router sniffs,
    routes and splices it.

Protocol on stdout/stdin (line based, for bench.py):
  "LISTENING"        the backend is up; the client starts now;
  "READY <n>"        all N requests reached the backend (every connection is
                     spliced end to end and idle);
  "TIMEOUT <n>"      only n of them arrived within the deadline;
then it waits for a line (or EOF) on stdin and closes everything.

HOLD_DEADLINE (seconds, default 30) bounds the wait for all N; HOLD_BATCH
(default 200) is how many connects may be in flight at once. When the
descriptor limit cannot hold both ends (2 N), a forked child plays the backend.
"""
import os
import resource
import selectors
import socket
import sys
import time

DEADLINE = float(os.environ.get("HOLD_DEADLINE", "30"))
# connects in flight at once, well under any accept backlog (ssh -R listens
# with a backlog of 128: HOLD_BATCH lowers it)
BATCH = int(os.environ.get("HOLD_BATCH", "200"))


def fd_budget(n):
    """True if one process may hold both ends of n connections (raising the
    soft RLIMIT_NOFILE to the hard one if need be)."""
    want = 2 * n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        top = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
        soft = top
    return soft == resource.RLIM_INFINITY or soft >= want


def main():
    backend_port, target_port, n = (int(a) for a in sys.argv[1:4])
    host = sys.argv[4] if len(sys.argv) > 4 else "hold.bench.test"
    request = ("GET /hold HTTP/1.1\r\nHost: %s\r\nUser-Agent: holdconns\r\n\r\n" % host).encode()

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", backend_port))
    lsock.listen(4096)
    lsock.setblocking(False)

    # Both ends in one process, unless the descriptor limit cannot hold 2 n:
    # then a forked child plays the backend (n descriptors each) and reports
    # how many requests it has read over a pipe.
    child = None
    if fd_budget(n):
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ, ("listen", None))
        role_client = True
    else:
        progress_r, progress_w = os.pipe()
        quit_r, quit_w = os.pipe()
        child = os.fork()
        sel = selectors.DefaultSelector()     # after the fork: an epoll set of its own
        if child == 0:
            os.close(progress_r)
            os.close(quit_w)
            sel.register(lsock, selectors.EVENT_READ, ("listen", None))
            role_client = False
        else:
            os.close(progress_w)
            os.close(quit_r)
            lsock.close()
            sel.register(progress_r, selectors.EVENT_READ, ("progress", None))
            role_client = True
    if role_client:
        print("LISTENING", flush=True)

    held = []             # every socket we own, closed at the end
    received = {}         # backend socket -> bytes read so far
    complete = 0
    opened = 0 if role_client else n
    pending = 0           # client connects not yet writable
    deadline = time.monotonic() + DEADLINE
    progress = b""        # what the backend child wrote, line by line

    def open_some():
        nonlocal opened, pending
        while opened < n and pending < BATCH:
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", target_port))
            sel.register(c, selectors.EVENT_WRITE, ("client", None))
            held.append(c)
            opened += 1
            pending += 1

    open_some()
    while complete < n and time.monotonic() < deadline:
        before_round = complete
        for key, ev in sel.select(timeout=0.2):
            kind, _ = key.data
            s = key.fileobj
            if kind == "listen":
                while True:
                    try:
                        b, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    b.setblocking(False)
                    held.append(b)
                    received[b] = 0
                    sel.register(b, selectors.EVENT_READ, ("backend", None))
            elif kind == "client":
                sel.unregister(s)
                pending -= 1
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    s.send(request)
            elif kind == "progress":
                data = os.read(s, 4096)
                if not data:            # the backend child is gone
                    deadline = 0
                    break
                progress += data
                lines = progress.split(b"\n")
                progress = lines.pop()
                if lines:
                    complete = int(lines[-1])
            else:
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    continue
                before = received[s]
                received[s] += len(data)
                if before < len(request) <= received[s]:
                    complete += 1
                    sel.unregister(s)   # idle from now on: nothing more is read
        if child == 0 and complete != before_round:
            os.write(progress_w, b"%d\n" % complete)
        open_some()

    if child == 0:              # the backend half: hold until the client half is done
        try:
            os.read(quit_r, 1)
        finally:
            for s in held:
                s.close()
            os._exit(0)
    print(("READY %d" if complete >= n else "TIMEOUT %d") % complete, flush=True)
    try:
        sys.stdin.readline()
    finally:
        for s in held:
            s.close()
        lsock.close()
        if child:
            os.close(quit_w)
            os.waitpid(child, 0)


if __name__ == "__main__":
    main()

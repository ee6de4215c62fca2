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
"""
import selectors
import socket
import sys
import time

DEADLINE = 30.0
BATCH = 200          # connects in flight at once, well under any accept backlog


def main():
    backend_port, target_port, n = (int(a) for a in sys.argv[1:4])
    host = sys.argv[4] if len(sys.argv) > 4 else "hold.bench.test"
    request = ("GET /hold HTTP/1.1\r\nHost: %s\r\nUser-Agent: holdconns\r\n\r\n" % host).encode()

    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", backend_port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, ("listen", None))
    print("LISTENING", flush=True)

    held = []             # every socket we own, closed at the end
    received = {}         # backend socket -> bytes read so far
    complete = 0
    opened = 0
    pending = 0           # client connects not yet writable
    deadline = time.monotonic() + DEADLINE

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
        open_some()

    print(("READY %d" if complete >= n else "TIMEOUT %d") % complete, flush=True)
    try:
        sys.stdin.readline()
    finally:
        for s in held:
            s.close()
        lsock.close()


if __name__ == "__main__":
    main()

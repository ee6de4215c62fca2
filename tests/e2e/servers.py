#!/usr/bin/env python3
"""Small servers and clients for the end-to-end scenarios (tests/e2e/).

Servers (one thread per connection, listen on HOST, default 127.0.0.1):
  servers.py banner PORT TEXT [--host H]   send TEXT CRLF first, then echo
  servers.py ppv2 PORT [--host H]          read a PROXY v2 header, then an HTTP
                                           request; answer "src=.. dst=.. authority=.."
  servers.py sink PORT [--host H]          HTTP: answer a PUT/POST with
                                           "<sha256> <length>" of its body
  servers.py eofreply PORT NBYTES [--host H]
                                           read until the client's FIN, then send
                                           "n=<len> sha256=<hex>\n" and NBYTES bytes
                                           of pattern, then close
  servers.py hello PORT NAME [--host H]    read one line "hello WHO\r\n", answer
                                           "hi WHO from NAME\r\n"
  servers.py earlyclose PORT [--host H]    send "bye\n" and shut down its write
                                           side at once, then read until the client's
                                           FIN and print "got n=<len> sha256=<hex>"
  servers.py blackhole PORT [--host H]     a listener whose accept queue is full and
                                           never drained: new connects hang (SYN dropped)
Clients (print what they saw as one JSON object):
  servers.py silent HOST PORT MAX          connect, send nothing, time until the
                                           server closes or sends (or MAX seconds)
  servers.py send HOST PORT DATA [--pause S DATA]... [--max S] [--shut]
                                           send data (pausing between pieces),
                                           read until close; reply and timings.
                                           DATA is hex, or @FILE for a file's bytes
"""
import hashlib
import json
import socket
import socketserver
import struct
import sys
import time

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def pattern(n):
    block = bytes(range(256)) * 256
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def read_until(sock, marker, buf=b"", limit=1 << 20):
    while marker not in buf and len(buf) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def parse_ppv2(hdr, body):
    fam = hdr[13]
    out = {"src": "none", "dst": "none", "authority": ""}
    if fam == 0x11:
        s, d, sp, dp = struct.unpack("!4s4sHH", body[:12])
        out["src"] = "%s:%d" % (socket.inet_ntop(socket.AF_INET, s), sp)
        out["dst"] = "%s:%d" % (socket.inet_ntop(socket.AF_INET, d), dp)
        tlv = body[12:]
    elif fam == 0x21:
        s, d, sp, dp = struct.unpack("!16s16sHH", body[:36])
        out["src"] = "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, s), sp)
        out["dst"] = "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, d), dp)
        tlv = body[36:]
    else:
        tlv = b""
    while len(tlv) >= 3:
        t, ln = tlv[0], struct.unpack("!H", tlv[1:3])[0]
        if t == 0x02:
            out["authority"] = tlv[3:3 + ln].decode("latin-1")
        tlv = tlv[3 + ln:]
    return out


class Handler(socketserver.BaseRequestHandler):
    mode = None
    args = []

    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            getattr(self, "do_" + self.mode)(sock)
        except (ConnectionError, OSError):
            pass

    def do_banner(self, sock):
        sock.sendall(self.args[0].encode() + b"\r\n")
        while True:
            data = sock.recv(65536)
            if not data:
                break
            sock.sendall(data)

    def do_ppv2(self, sock):
        hdr = read_exact(sock, 16)
        if hdr[:12] == PP2_SIG:
            ln = struct.unpack("!H", hdr[14:16])[0]
            info = parse_ppv2(hdr, read_exact(sock, ln))
            rest = b""
        else:
            info = {"src": "none", "dst": "none", "authority": ""}
            rest = hdr
        read_until(sock, b"\r\n\r\n", rest)
        body = ("src=%s dst=%s authority=%s" % (info["src"], info["dst"], info["authority"])).encode()
        sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % len(body) + body)

    def do_sink(self, sock):
        buf = read_until(sock, b"\r\n\r\n")
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        expect = False
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
            if k.strip().lower() == b"expect":
                expect = True
        if expect:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        h = hashlib.sha256()
        h.update(rest)
        got = len(rest)
        while got < length:
            chunk = sock.recv(min(1 << 20, length - got))
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
        body = ("%s %d\n" % (h.hexdigest(), got)).encode()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % len(body) + body)

    def do_eofreply(self, sock):
        h = hashlib.sha256()
        n = 0
        while True:
            data = sock.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        sock.sendall(("n=%d sha256=%s\n" % (n, h.hexdigest())).encode())
        sock.sendall(pattern(int(self.args[0])))

    def do_earlyclose(self, sock):
        sock.sendall(b"bye\n")
        sock.shutdown(socket.SHUT_WR)
        h = hashlib.sha256()
        n = 0
        while True:
            data = sock.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        print("got n=%d sha256=%s" % (n, h.hexdigest()), flush=True)

    def do_hello(self, sock):
        line = read_until(sock, b"\r\n").split(b"\r\n")[0]
        who = line[6:].decode("latin-1") if line.startswith(b"hello ") else "?"
        sock.sendall(("hi %s from %s\r\n" % (who, self.args[0])).encode())


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


class Server6(Server):
    address_family = socket.AF_INET6


def serve(mode, port, args, host):
    Handler.mode = mode
    Handler.args = args
    cls = Server6 if ":" in host else Server
    with cls((host, port), Handler) as srv:
        srv.serve_forever()


def blackhole(port, host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(0)
    fillers = []
    for _ in range(3):  # fill the accept queue; later SYNs are dropped
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect((host, port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.5)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def client_silent(host, port, maxwait):
    t0 = time.monotonic()
    s = socket.create_connection((host, port))
    s.settimeout(maxwait)
    how = "closed"
    data = b""
    try:
        data = s.recv(65536)
        if data:
            how = "data"
    except socket.timeout:
        how = "timeout"
    except ConnectionResetError:
        how = "reset"
    print(json.dumps({"how": how, "seconds": round(time.monotonic() - t0, 3),
                      "data": data.decode("latin-1")}))


def data_arg(a):
    if a.startswith("@"):
        with open(a[1:], "rb") as f:
            return f.read()
    return bytes.fromhex(a)


def client_send(host, port, argv):
    pieces = [data_arg(argv[0])]
    pauses = []
    maxwait = 10.0
    shut = False
    i = 1
    while i < len(argv):
        if argv[i] == "--pause":
            pauses.append(float(argv[i + 1]))
            pieces.append(data_arg(argv[i + 2]))
            i += 3
        elif argv[i] == "--max":
            maxwait = float(argv[i + 1])
            i += 2
        elif argv[i] == "--shut":
            shut = True
            i += 1
        else:
            raise SystemExit("send: unknown option " + argv[i])
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    s.sendall(pieces[0])
    for pause, piece in zip(pauses, pieces[1:]):
        time.sleep(pause)
        s.sendall(piece)
    t_sent = time.monotonic()
    if shut:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(maxwait)
    reply = b""
    first = None
    end = "closed"
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
            if first is None:
                first = time.monotonic() - t_sent
            reply += data
    except socket.timeout:
        end = "timeout"
    except ConnectionResetError:
        end = "reset"
    print(json.dumps({"end": end, "first_byte_after_send": None if first is None else round(first, 4),
                      "seconds": round(time.monotonic() - t0, 3),
                      "reply": reply[:4096].decode("latin-1"), "reply_len": len(reply),
                      "reply_sha256": hashlib.sha256(reply).hexdigest()}))


def main(argv):
    host = "127.0.0.1"
    if "--host" in argv:
        i = argv.index("--host")
        host = argv[i + 1]
        del argv[i:i + 2]
    mode = argv[0]
    if mode == "silent":
        client_silent(argv[1], int(argv[2]), float(argv[3]))
    elif mode == "send":
        client_send(argv[1], int(argv[2]), argv[3:])
    elif mode == "blackhole":
        blackhole(int(argv[1]), host)
    elif mode in ("banner", "ppv2", "sink", "eofreply", "hello", "earlyclose"):
        serve(mode, int(argv[1]), argv[2:], host)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

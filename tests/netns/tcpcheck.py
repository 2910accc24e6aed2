#!/usr/bin/env python3
"""tcpcheck.py - plain-TCP checks for the NAT test bed (run inside a namespace by bed.sh).

  tcpcheck.py listen IP PORT SECONDS          accept connections, answer "hi\\n" to each, for SECONDS
  tcpcheck.py connect IP PORT TIMEOUT         exit 0 if a connection is made and "hi" read, else 1
  tcpcheck.py simopen LIP LPORT RIP RPORT SECONDS
        bind LIP:LPORT (SO_REUSEADDR) and connect to RIP:RPORT, retrying until SECONDS pass;
        both NATed hosts run this at once: a TCP simultaneous open. Exit 0 if connected and a
        line was exchanged both ways.
Everything is bounded by its SECONDS/TIMEOUT argument."""
import socket
import sys
import time


def listen(ip, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, int(port)))
    s.listen(16)
    s.settimeout(0.2)
    end = time.time() + float(seconds)
    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        try:
            c.sendall(b"hi\n")
        finally:
            c.close()
    return 0


def connect(ip, port, timeout):
    try:
        c = socket.create_connection((ip, int(port)), timeout=float(timeout))
        c.settimeout(float(timeout))
        ok = c.recv(3) == b"hi\n"
        c.close()
        return 0 if ok else 1
    except OSError:
        return 1


def simopen(lip, lport, rip, rport, seconds):
    end = time.time() + float(seconds)
    while time.time() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((lip, int(lport)))
        s.settimeout(max(0.1, min(3.0, end - time.time())))
        try:
            s.connect((rip, int(rport)))
        except OSError:
            s.close()
            time.sleep(0.05)
            continue
        try:
            s.sendall(b"hello\n")
            got = b""
            while not got.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
            s.close()
            return 0 if got == b"hello\n" else 1
        except OSError:
            s.close()
            return 1
    return 1


def main():
    if len(sys.argv) < 2:
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "listen" and len(args) == 3:
        return listen(*args)
    if cmd == "connect" and len(args) == 3:
        return connect(*args)
    if cmd == "simopen" and len(args) == 5:
        return simopen(*args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

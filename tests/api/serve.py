#!/usr/bin/env python3
"""unit: veil serve without a VM (no /dev/kvm needed): the socket's mode and refusal of an
existing path, the error paths before vm.create, the connection limit (the 17th concurrent
client gets a 503 and the first 16 are still served), pipelined requests on one connection,
and both ways out: vmm.shutdown (exit 0) and SIGTERM (exit 143), each removing the socket.
Usage: serve.py VEIL"""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

VEIL = sys.argv[1]
failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL: " + msg, file=sys.stderr)


def start(sock):
    p = subprocess.Popen([VEIL, "serve", "--api-socket", sock], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.1)
    return p


def raw(sock, data, conn=None):
    s = conn or socket.socket(socket.AF_UNIX)
    if not conn:
        s.connect(sock)
    s.settimeout(10)
    s.sendall(data)
    out = b""
    while b"\r\n\r\n" not in out or len(out) < out.index(b"\r\n\r\n") + 4 + clen(out):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    if not conn:
        s.close()
    return out


def clen(resp):
    for line in resp.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def req(sock, method, path, body=b""):
    r = raw(sock, b"%s /api/v1/%s HTTP/1.1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (method.encode(), path.encode(), len(body), body))
    status = int(r[9:12]) if r.startswith(b"HTTP/1.1 ") else 0
    text = r.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in r else b""
    obj = json.loads(text) if text else None
    if status >= 400:
        check(isinstance(obj, dict) and obj.get("error"), f"{method} {path}: {r!r}")
    return status, obj


def main():
    tmp = tempfile.mkdtemp()
    sock = os.path.join(tmp, "api.sock")
    old = os.umask(0)  # the socket is 0600 whatever the umask
    veil = start(sock)
    os.umask(old)
    st = os.stat(sock)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, f"mode {oct(st.st_mode)}")
    r = subprocess.run([VEIL, "serve", "--api-socket", sock], capture_output=True, text=True,
                       timeout=10)
    check(r.returncode == 2 and "exists" in r.stderr, f"second serve: {r.returncode} {r.stderr}")
    plain = os.path.join(tmp, "file")
    open(plain, "w").write("keep")
    r = subprocess.run([VEIL, "serve", "--api-socket", plain], capture_output=True, timeout=10)
    check(r.returncode == 2 and open(plain).read() == "keep", "an existing file was not refused")
    r = subprocess.run([VEIL, "serve"], capture_output=True, timeout=10)
    check(r.returncode == 2, f"serve without --api-socket: {r.returncode}")

    st_, ping = req(sock, "GET", "vmm.ping")
    check(st_ == 200 and ping["pid"] == veil.pid and ping["api_version"] == 1, f"ping {ping}")
    for method, path, body, want in [
            ("GET", "vm.info", b"", 409), ("GET", "vm.counters", b"", 409),
            ("PUT", "vm.boot", b"", 409), ("PUT", "vm.convert", b'{"gpa":0}', 409),
            ("PUT", "vm.create", b"{", 400), ("PUT", "vm.create", b'{"cpu":1}', 400),
            ("PUT", "vm.create", b'{"cpus":true}', 400), ("PUT", "vm.create", b'{"mem":4096}', 400),
            ("GET", "vm.create", b"", 405), ("PUT", "vmm.ping", b"", 405),
            ("GET", "nothing", b"", 404), ("GET", "", b"", 404)]:
        got, obj = req(sock, method, path, body)
        check(got == want, f"{method} {path} {body!r}: {got} {obj}, expected {want}")

    # Pipelining: three requests in one write, three replies in order.
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.settimeout(10)
    s.sendall(b"GET /api/v1/vmm.ping HTTP/1.1\r\n\r\nGET /api/v1/nope HTTP/1.1\r\n\r\n"
              b"PUT /api/v1/vm.boot HTTP/1.1\r\n\r\n")
    got = b""
    while got.count(b"HTTP/1.1 ") < 3:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    codes = [int(x[:3]) for x in got.split(b"HTTP/1.1 ")[1:]]
    check(codes == [200, 404, 409], f"pipelined replies {codes}")
    s.close()

    # 16 clients hold connections; the 17th is told 503; the 16 are still served.
    held = []
    for _ in range(16):
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock)
        held.append(c)
    time.sleep(0.3)
    # It waits for the answer before it sends: a request the server never reads could
    # turn the reply into a reset on a Unix socket.
    extra = socket.socket(socket.AF_UNIX)
    extra.connect(sock)
    extra.settimeout(10)
    r = extra.recv(4096)
    extra.close()
    check(r.startswith(b"HTTP/1.1 503") and b'"error"' in r, f"17th client: {r!r}")
    check(len(r.split(b"\r\n\r\n", 1)[-1]) == clen(r), f"17th client: Content-Length is off: {r!r}")
    for c in held:
        r = raw(sock, b"GET /api/v1/vmm.ping HTTP/1.1\r\n\r\n", conn=c)
        check(r.startswith(b"HTTP/1.1 200"), f"held client: {r!r}")
        c.close()

    check(req(sock, "PUT", "vmm.shutdown")[0] == 204, "vmm.shutdown")
    code = veil.wait(10)
    check(code == 0, f"exit {code} after vmm.shutdown: {veil.stderr.read()}")
    check(not os.path.exists(sock), "socket left after vmm.shutdown")

    veil = start(sock)
    veil.send_signal(signal.SIGTERM)
    code = veil.wait(10)
    check(code == 143, f"exit {code} after SIGTERM")
    check(not os.path.exists(sock), "socket left after SIGTERM")
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

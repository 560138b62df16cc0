#!/usr/bin/env python3
"""kvm: veil serve driven with Python's standard library (http.client over AF_UNIX).

Checks the OpenAPI document against what veil serves, pause and resume while the
conversions firmware runs (exits frozen while paused), conversions and discards
from the host, every error path, concurrent clients, and both shutdowns.
Usage: client.py VEIL OPENAPI_JSON.  Exit 77 without /dev/kvm.
"""
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

VEIL, OPENAPI = sys.argv[1], sys.argv[2]
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg, file=sys.stderr)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def call(sock, method, path, body=None, conn=None, raw=None, headers=None):
    """(status, parsed JSON or None); every non-2xx must carry {"error": words}."""
    own = conn is None
    conn = conn or UnixConnection(sock)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    conn.request(method, "/api/v1/" + path, body=data, headers=headers or {})
    resp = conn.getresponse()
    text = resp.read()
    if own:
        conn.close()
    obj = json.loads(text) if text else None
    if resp.status >= 300:
        check(isinstance(obj, dict) and isinstance(obj.get("error"), str) and obj["error"],
              f"{method} {path}: {resp.status} without a JSON error body: {text!r}")
    return resp.status, obj


def expect(sock, status, method, path, body=None, **kw):
    got, obj = call(sock, method, path, body, **kw)
    check(got == status, f"{method} {path} {body!r}: {got} {obj}, expected {status}")
    return obj


def exits(sock):
    return expect(sock, 200, "GET", "vm.counters")["exits"]


def wait_for(cond, secs, what):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    fail("timed out waiting for " + what)
    return False


def resolve(doc, schema):
    while "$ref" in schema:
        node = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def check_openapi(sock, doc, state):
    """Every documented path is served (a wrong method gets 405, not 404), and each
    GET's reply carries the fields its schema requires, with the documented types."""
    types = {"integer": int, "string": str, "boolean": bool, "object": dict, "array": list}
    for path, ops in doc["paths"].items():
        name = path.lstrip("/")
        method = next(iter(ops)).upper()
        other = "POST"
        got, _ = call(sock, other, name)
        check(got == 405, f"{path}: {other} gave {got}, expected 405 (the path is not served?)")
        if method != "GET":
            continue
        got, obj = call(sock, "GET", name)
        if not check(got == 200, f"GET {path} in state {state}: {got} {obj}"):
            continue
        schema = resolve(doc, ops["get"]["responses"]["200"]["content"]["application/json"]["schema"])
        for field in schema.get("required", []):
            if not check(field in obj, f"GET {path}: no '{field}' in {obj}"):
                continue
            t = resolve(doc, schema["properties"][field]).get("type")
            check(t is None or (isinstance(obj[field], types[t]) and
                                not (t == "integer" and isinstance(obj[field], bool))),
                  f"GET {path}: '{field}' is {obj[field]!r}, not {t}")


def check_seccomp(pid):
    """Once the VM runs, every thread of veil serve is in seccomp filter mode, the API's too."""
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            status = open(f"/proc/{pid}/task/{tid}/status").read()
        except OSError:
            continue
        mode = [ln.split()[1] for ln in status.splitlines() if ln.startswith("Seccomp:")]
        names.append(comm)
        if comm == "veil" and int(tid) != pid:
            continue  # a sanitizer runtime's own thread (TSan's background thread)
        check(mode == ["2"], f"thread {tid} ({comm}): seccomp mode {mode}, expected 2")
    check("veil-api" in names, f"no veil-api thread among {names}")


def concurrency(sock):
    # Two clients that hold their connections open, one idle and one halfway through a
    # request, do not keep a third from being served.
    idle = socket.socket(socket.AF_UNIX)
    idle.connect(sock)
    half = socket.socket(socket.AF_UNIX)
    half.connect(sock)
    half.sendall(b"GET /api/v1/vm.info HTTP/1.1\r\nHost: x\r\n")
    expect(sock, 200, "GET", "vmm.ping")
    half.sendall(b"\r\n")
    half.settimeout(10)
    check(half.recv(4096).startswith(b"HTTP/1.1 200"), "the half-sent request was not answered")
    idle.close()
    half.close()
    # Eight threads, each with a keep-alive connection, 25 requests each.
    errors = []

    def worker(i):
        conn = UnixConnection(sock)
        try:
            for j in range(25):
                path = ["vm.counters", "vm.info", "vm.memory", "vmm.ping"][(i + j) % 4]
                got, _ = call(sock, "GET", path, conn=conn)
                if got != 200:
                    errors.append(f"{path}: {got}")
        except Exception as e:  # noqa: BLE001 - any failure is the test's
            errors.append(repr(e))
        conn.close()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not errors, f"concurrent clients: {errors[:5]}")


def error_paths(sock):
    ram_end = 64 << 20
    for body in ['{"gpa":', '{"gpa":0,"size":4096,"to":"private"} x', "[]", ""]:
        expect(sock, 400, "PUT", "vm.convert", raw=body)
    expect(sock, 400, "PUT", "vm.convert", {"gpa": 0, "size": 4096, "to": "private", "x": 1})
    expect(sock, 400, "PUT", "vm.convert", {"gpa": "0", "size": 4096, "to": "private"})
    expect(sock, 400, "PUT", "vm.convert", {"gpa": 0, "size": 4096, "to": True})
    expect(sock, 400, "PUT", "vm.convert", {"gpa": ram_end, "size": 4096, "to": "private"})
    expect(sock, 400, "PUT", "vm.convert", {"gpa": ram_end - 4096, "size": 8192, "to": "shared"})
    expect(sock, 400, "PUT", "vm.convert", {"gpa": 2**64 - 4096, "size": 8192, "to": "shared"})
    expect(sock, 400, "PUT", "vm.convert", {"gpa": 1, "size": 4096, "to": "shared"})
    expect(sock, 400, "PUT", "vm.discard", {"gpa": 0, "size": 2**63})
    expect(sock, 400, "PUT", "vm.discard", {"gpa": -4096, "size": 4096})
    expect(sock, 400, "PUT", "vm.resize", {"desired_balloon": "1G"})
    expect(sock, 400, "GET", "vm.info", raw='{"a":1}')
    expect(sock, 405, "GET", "vm.pause")
    expect(sock, 405, "DELETE", "vm.info")
    expect(sock, 404, "GET", "vm.nothing")
    expect(sock, 404, "GET", "../vm.info")
    expect(sock, 409, "PUT", "vm.boot")
    expect(sock, 409, "PUT", "vm.create", {})
    expect(sock, 409, "PUT", "vm.resume")
    # Too large: a 1 MiB body is refused from its Content-Length alone, as are huge headers.
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.settimeout(10)
    s.sendall(b"PUT /api/v1/vm.convert HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 4096)
    reply = s.recv(4096)
    check(reply.startswith(b"HTTP/1.1 413") and b'"error"' in reply, f"1 MiB body: {reply!r}")
    s.close()
    expect(sock, 431, "GET", "vm.info", headers={"X-Big": "a" * 16384})
    expect(sock, 414, "GET", "vm.info?" + "a" * 1000)
    # Bytes that are not HTTP at all.
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.settimeout(10)
    s.sendall(b"\x00\xffGARBAGE\r\n\r\n")
    check(s.recv(4096).startswith(b"HTTP/1.1 400"), "garbage did not get a 400")
    s.close()


def main():
    if not (os.access("/dev/kvm", os.R_OK | os.W_OK)):
        print("skip: no usable /dev/kvm", file=sys.stderr)
        return 77
    doc = json.load(open(OPENAPI))
    check(doc["openapi"].startswith("3."), "not an OpenAPI 3 document")
    tmp = tempfile.mkdtemp()
    sock = os.path.join(tmp, "api.sock")
    out = open(os.path.join(tmp, "out"), "w+")
    veil = subprocess.Popen([VEIL, "serve", "--api-socket", sock], stdout=out, stderr=out)
    try:
        if not wait_for(lambda: os.path.exists(sock), 10, "the socket"):
            return 1
        st = os.stat(sock)
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
              f"socket mode {oct(st.st_mode)}, expected a socket 0600")
        # A second veil refuses the path and leaves the first one's socket alone.
        r = subprocess.run([VEIL, "serve", "--api-socket", sock], capture_output=True, text=True,
                           timeout=10)
        check(r.returncode == 2 and "exists" in r.stderr, f"second serve: {r.returncode} {r.stderr}")
        ping = expect(sock, 200, "GET", "vmm.ping")
        check(ping and ping.get("pid") == veil.pid, f"ping: {ping}")
        expect(sock, 409, "GET", "vm.info")
        expect(sock, 400, "PUT", "vm.create", {"firmware": "conversions", "memory": 1})
        expect(sock, 400, "PUT", "vm.create", {"mem": 12345})
        expect(sock, 204, "PUT", "vm.create", {"firmware": "conversions", "mem": 64 << 20,
                                                 "check_stride": 1, "balloon": True})
        info = expect(sock, 200, "GET", "vm.info")
        check(info["state"] == "created" and info["config"]["firmware"] == "conversions",
              f"vm.info after create: {info}")
        expect(sock, 204, "PUT", "vm.boot")
        wait_for(lambda: exits(sock) > 100, 20, "the guest to run")
        check_openapi(sock, doc, "running")
        check_seccomp(veil.pid)
        concurrency(sock)

        expect(sock, 204, "PUT", "vm.pause")
        check(expect(sock, 200, "GET", "vm.info")["state"] == "paused", "not paused")
        frozen = exits(sock)
        time.sleep(1)
        again = exits(sock)
        check(again == frozen, f"exits moved while paused: {frozen} then {again}")
        expect(sock, 409, "PUT", "vm.pause")
        expect(sock, 204, "PUT", "vm.resume")
        # This firmware exits in bursts seconds apart: a generous bound.
        wait_for(lambda: exits(sock) > frozen, 60, "exits to move after vm.resume")
        print(f"# exits {frozen} and {again} while paused, then moving again")

        # The host converts and discards 64 KiB at 32 MiB while the guest runs.
        gpa, size = 32 << 20, 64 << 10
        expect(sock, 204, "PUT", "vm.convert", {"gpa": gpa, "size": size, "to": "private"})
        mem = expect(sock, 200, "GET", "vm.memory")
        check(any(e["private"] and e["gpa"] <= gpa and e["gpa"] + e["size"] >= gpa + size
                  for e in mem["extents"]), f"no private extent over the range: {mem}")
        check(mem["private_bytes"] >= size, f"private_bytes {mem['private_bytes']}")
        expect(sock, 204, "PUT", "vm.convert", {"gpa": gpa, "size": size, "to": "shared"})
        expect(sock, 204, "PUT", "vm.discard", {"gpa": gpa, "size": size})
        st, obj = call(sock, "PUT", "vm.resize", {"desired_balloon": 16 << 20})
        # 204 once the balloon's target exists; until then an error that says so.
        check(st == 204, f"vm.resize: {st} {obj}")
        print(f"# vm.resize: {st} {obj}")

        error_paths(sock)
        # None of that hurt the guest: it still runs and exits still move.
        before = exits(sock)
        check(expect(sock, 200, "GET", "vm.info")["state"] == "running", "the VM stopped")
        wait_for(lambda: exits(sock) > before, 60, "exits to move after the error paths")
        c = expect(sock, 200, "GET", "vm.counters")
        check(c["host_conversions"] >= 2, f"host_conversions {c['host_conversions']}")

        expect(sock, 204, "PUT", "vm.shutdown")
        wait_for(lambda: expect(sock, 200, "GET", "vm.info").get("exit") is not None, 10,
                 "the VM to stop")
        info = expect(sock, 200, "GET", "vm.info")
        check(info["state"] == "stopped" and info["exit"]["code"] == 0, f"after vm.shutdown: {info}")
        check_openapi(sock, doc, "stopped")
        expect(sock, 204, "PUT", "vmm.shutdown")
        code = veil.wait(10)
        check(code == 0, f"veil serve exited {code} after vmm.shutdown")
        check(not os.path.exists(sock), "the socket is still there")
    finally:
        if veil.poll() is None:
            veil.kill()
            veil.wait()
        out.seek(0)
        text = out.read()
        if failures:
            sys.stderr.write("veil's output:\n" + text)
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

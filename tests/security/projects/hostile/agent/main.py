"""Hostile root agent: performs the probe named by the task and reports what happened.

Every stdlib module a probe uses is imported here, at module level, because only modules imported at
build time are in the component's snapshot. What failed to import at build time is recorded.
"""

import json
import os
import sys

import wit_world
from componentize_py_types import Err
from wasm_agents_sdk import DelegationError, delegate, log

BUILD_IMPORT_ERRORS = {}


def _try_import(name):
    try:
        module = __import__(name)
        for part in name.split(".")[1:]:
            module = getattr(module, part)
        return module
    except BaseException as error:  # noqa: BLE001 - record whatever the build-time import did
        BUILD_IMPORT_ERRORS[name] = type(error).__name__
        return None


idna = _try_import("encodings.idna")  # else every host name fails with LookupError before the socket layer
socket = _try_import("socket")
urllib_request = _try_import("urllib.request")
subprocess = _try_import("subprocess")
threading = _try_import("threading")
signal = _try_import("signal")
ctypes = _try_import("ctypes")
cffi = _try_import("cffi")
multiprocessing = _try_import("multiprocessing")


def _outcome(fn):
    """Run one probe; report its value or the exact exception type the guest saw."""
    try:
        return {"value": fn()}
    except Err as refusal:
        return {"error": "Err", "refusal": json.loads(refusal.value)}
    except BaseException as error:  # noqa: BLE001
        return {"error": type(error).__name__, "errno": getattr(error, "errno", None), "message": str(error)[:300]}


def _read(path):
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "replace")


def _write(path, text="pwned"):
    with open(path, "w") as handle:
        handle.write(text)
    return "written"


def _tcp(host, port):
    conn = socket.create_connection((host, port), timeout=0.5)
    conn.sendall(b"hello from the sandbox")
    return "connected"


def _udp(host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return sock.sendto(b"hello from the sandbox", (host, port))


def _runtime_import(name):
    __import__(name)
    return "imported"


class _Bomb:
    def __del__(self):
        raise RuntimeError("raised in __del__")


def _del_raise():
    bomb = _Bomb()
    del bomb
    return "survived"


def _symlink_read(target):
    os.symlink(target, "/scratch/link")
    return _read("/scratch/link")


def _scratch_roundtrip():
    _write("/scratch/note.txt", "mine")
    return [_read("/scratch/note.txt"), sorted(os.listdir("/scratch"))]


def _raw_host_call(name, payload):
    return wit_world.host_call(name, payload)


def _catch_then_call():
    """A host refusal caught by the guest does not break later host calls."""
    try:
        wit_world.host_call("no-such-call", "{}")
        first = "accepted"
    except Err as refusal:
        first = json.loads(refusal.value)["type"]
    try:
        delegate({"op": "x"}, to="nobody")
        second = "accepted"
    except DelegationError as error:
        second = error.type
    return [first, second, delegate({"op": "echo", "n": 1}, to="helper")]


def _logs(kind):
    if kind == "bad-level":
        wit_world.log("catastrophic", json.dumps({"message": "odd level"}))
    elif kind == "not-json":
        wit_world.log("info", "{this is not json")
    elif kind == "not-object":
        wit_world.log("info", "[1, 2, 3]")
    elif kind == "deep-json":
        wit_world.log("info", "[" * 20_000 + "]" * 20_000)  # 40 kB: under output_bytes, far over json's depth
    elif kind == "huge":
        wit_world.log("info", json.dumps({"message": "m" * (10 * 1024 * 1024)}))
    elif kind == "sdk-bad-level":
        log("fatal", "nope")
    elif kind == "many":
        for _ in range(self_count[0]):
            wit_world.log("info", json.dumps({"message": "x" * 100_000}))
    return "logged"


self_count = [0]


class Probe:
    def __init__(self, config):
        self.config = config
        self.task = config["task"]

    def run(self):
        task = self.task
        op = task["op"]
        arg = task.get("arg")
        # ---- well-behaved ops (load test, controls) ----
        if op == "echo":
            return {"index": task["index"], "square": task["index"] ** 2}
        if op == "helper":
            return delegate(task["inner"], to="helper")
        if op == "imports":
            return BUILD_IMPORT_ERRORS
        # ---- hostile ops that end the invocation themselves ----
        if op == "raise":
            raise ValueError(f"hostile raise {task.get('index')}")
        if op == "os-exit":
            os._exit(3)
        if op == "sys-exit":
            sys.exit(0)
        if op == "forge":  # claim a host-enforced limit that never happened: an exception class named like one
            raise type(arg, (Exception,), {})("forged by the guest")
        if op == "repeat":  # sequential delegations until the chain's hop budget refuses one
            done = 0
            for _ in range(task["times"]):
                try:
                    delegate({"op": "echo", "n": done}, to="helper")
                except DelegationError as error:
                    return {"done": done, "refused": error.type, "message": str(error)}
                done += 1
            return {"done": done}
        if op == "deep-result":  # a result nested deeper than the host's json recursion limit
            sys.setrecursionlimit(100_000)
            nested = []
            for _ in range(arg):
                nested = [nested]
            return nested
        if op == "log":
            self_count[0] = task.get("count", 0)
            return _logs(arg)
        # ---- probes: each reports its value or the exception type the guest saw ----
        probes = {
            "read": lambda: _read(arg),
            "listdir": lambda: sorted(os.listdir(arg)),
            "stat": lambda: os.stat(arg).st_size,
            "environ": lambda: dict(os.environ),
            "getenv": lambda: os.getenv(arg),
            "argv": lambda: list(sys.argv),
            "syspath": lambda: list(sys.path),
            "getcwd": lambda: os.getcwd(),
            "write": lambda: _write(arg),
            "mkdir": lambda: os.mkdir(arg),
            "symlink-read": lambda: _symlink_read(arg),
            "scratch": _scratch_roundtrip,
            "tcp": lambda: _tcp("127.0.0.1", arg),
            "urllib": lambda: urllib_request.urlopen(f"http://127.0.0.1:{arg}/", timeout=0.5).read().decode(),
            "dns": lambda: socket.getaddrinfo("localhost", 80),
            "udp": lambda: _udp("127.0.0.1", arg),
            "socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).fileno(),
            "subprocess": lambda: subprocess.run(["id"], capture_output=True).stdout.decode(),
            "system": lambda: os.system("id"),
            "fork": lambda: os.fork(),
            "execv": lambda: os.execv("/bin/sh", ["sh", "-c", "id"]),
            "kill": lambda: os.kill(1, 9),
            "thread": lambda: threading.Thread(target=lambda: None).start(),
            "import": lambda: _runtime_import(arg),
            "del-raise": _del_raise,
            "cffi-where": lambda: [__import__("cffi").__file__, __import__("cffi").__version__],
            "cffi-dlopen": lambda: repr(__import__("cffi").FFI().dlopen(None)),
            "host-call": lambda: _raw_host_call(arg[0], arg[1]),
            "host-call-big": lambda: _raw_host_call("delegate", '{"task": "' + "x" * (20 * 1024 * 1024) + '"}'),
            "host-call-deep": lambda: _raw_host_call("delegate", "[" * 100_000 + "]" * 100_000),
            "catch-then-call": _catch_then_call,
            "delegate": lambda: delegate(arg["task"], to=arg.get("to")),
        }
        return _outcome(probes[op])


def main(config):
    return Probe(config)

"""Real-world Python: everything here is imported lazily, inside run(), as real code and libraries do."""


class Everyday:
    def __init__(self, task):
        self.task = task

    def run(self):
        op = self.task["op"]
        if op == "to":
            from wasm_agents_sdk import delegate

            return delegate(self.task["inner"], to=self.task["target"])
        if op == "imports":
            return {name: _try_import(name) for name in self.task["modules"]}
        if op == "stdlib":  # every public module of the guest's stdlib, imported now
            import sys

            names = sorted(name for name in sys.stdlib_module_names if not name.startswith("_"))
            failures = {name: outcome for name in names if (outcome := _try_import(name)) != "ok"}
            return {"tried": len(names), "failed": failures}
        if op == "work":
            return _work()
        if op == "unavailable":
            return _unavailable()
        if op == "sum-file":  # a helper module of the agent's own, imported lazily, reading a file next to it
            from helpers import numbers_total

            return numbers_total()
        raise KeyError(op)


def _try_import(name):
    import importlib

    try:
        importlib.import_module(name)
        return "ok"
    except Exception as error:  # noqa: BLE001 - reported to the test
        return f"{type(error).__name__}: {error}"


def _work():
    import asyncio
    import codecs
    import gzip
    import hashlib
    import importlib.metadata
    import importlib.resources
    import io
    import sqlite3
    import threading
    import zipfile
    import zoneinfo
    from datetime import datetime

    async def double(value):
        await asyncio.sleep(0)
        return value * 2

    async def gather():
        return await asyncio.gather(double(1), double(2))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", "zipped " * 10)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        unzipped = archive.read("a.txt").decode()
    memory = sqlite3.connect(":memory:")
    memory.execute("create table t (x)")
    memory.executemany("insert into t values (?)", [(1,), (2,), (3,)])
    on_disk = sqlite3.connect("/scratch/db.sqlite")
    on_disk.execute("create table t (x)")
    on_disk.execute("insert into t values (42)")
    on_disk.commit()
    import os
    import tempfile

    with tempfile.NamedTemporaryFile("w+", suffix=".txt") as temporary:
        temporary.write("spooled")
        temporary.seek(0)
        in_scratch = os.path.dirname(temporary.name) == "/scratch" and temporary.read() == "spooled"
    lock = threading.Lock()
    with lock:
        locked = lock.locked()
    paris = datetime(2026, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    return {
        "gzip": gzip.decompress(gzip.compress(b"hello" * 100)).decode()[:10],
        "zip": unzipped[:13],
        "sqlite-memory": memory.execute("select sum(x) from t").fetchone()[0],
        "sqlite-scratch": sqlite3.connect("/scratch/db.sqlite").execute("select x from t").fetchone()[0],
        "pbkdf2": hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1000).hex()[:16],
        "asyncio": asyncio.run(gather()),
        "lock": locked,
        "tempfile-in-scratch": in_scratch,
        "uid": os.getuid(),
        "paris-offset-h": paris.utcoffset().total_seconds() / 3600,
        "punycode": codecs.encode("bücher", "punycode").decode(),
        "cp037": "hello".encode("cp037").hex(),
        "idna": "bücher.example".encode("idna").decode(),
        "tzdata-version": importlib.metadata.version("tzdata"),
        "tzdata-resource": importlib.resources.files("tzdata").joinpath("zoneinfo", "UTC").read_bytes()[:4].decode(),
    }


def _unavailable():
    outcomes = {}
    attempts = {
        "subprocess": lambda: __import__("subprocess").run(["ls"]),
        "thread": lambda: __import__("threading").Thread(target=print).start(),
        "bz2": lambda: __import__("bz2").compress(b"x"),
        "lzma": lambda: __import__("lzma").compress(b"x"),
        "fcntl": lambda: __import__("fcntl"),
        "ctypes": lambda: __import__("ctypes"),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            outcomes[name] = "no error"
        except Exception as error:  # noqa: BLE001 - reported to the test
            outcomes[name] = f"{type(error).__name__}: {error}"
    return outcomes


def main(config):
    return Everyday(config["task"])

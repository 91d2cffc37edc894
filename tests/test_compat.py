"""The compatibility corpus (compat/): its cases are well formed, and a fast subset passes through the same code
path as `make compat` (real builds, real sandboxes, native CPython in throwaway venvs)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Small packages, each exercising what the corpus is about: a stdlib module imported lazily inside run()
# (tomllib, zoneinfo), package data files (dateutil's zone tarball, tzdata's zone files through
# importlib.resources) and a lazily imported submodule of a vendored package (dateutil.zoneinfo).
FAST_SUBSET = ["python-dateutil", "tomli-w", "tzdata"]


def _load_compat_run():
    spec = importlib.util.spec_from_file_location("compat_run", ROOT / "compat" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["compat_run"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


compat = _load_compat_run()


def test_every_case_is_well_formed_and_the_corpus_is_broad():
    cases = compat.load_cases()
    pure = [case for case in cases if case.pure]
    assert len(pure) >= 40, f"only {len(pure)} pure-Python cases"
    assert len({case.category for case in pure}) >= 8
    for case in cases:
        assert case.lazy_imports, case.name  # load_case refuses a compute() without one; keep it that way
        assert case.requirements == (case.package,), f"{case.name}: one unpinned package per case"
        assert not (case.folder / "requirements.lock").exists(), f"{case.name}: the newest wheel is tested, no lock"
    assert set(FAST_SUBSET) <= {case.name for case in pure}


def test_results_are_compared_as_json_with_float_tolerance_only():
    assert compat.difference({"a": [1, 2.0, "x"]}, {"a": [1, 2.0, "x"]}) is None
    assert compat.difference(0.1 + 0.2, 0.3) is None  # within a relative 1e-12: libm and summation order
    assert compat.difference(1.0, 1.0001) == "at $: sandbox 1.0 != native 1.0001"
    assert compat.difference(True, 1) is not None  # JSON true is not 1
    assert compat.difference({"a": 1}, {"a": 1, "b": 2}) == "at $: key 'b' only in native result"
    assert compat.difference([1, [2, 3]], [1, [2, 4]]) == "at $[1][1]: sandbox 3 != native 4"


def test_each_failure_names_its_stage_and_reason():
    case = compat.load_cases(["tzdata"])[0]
    native = {"ok": True, "result": 1}
    vendor = {"stage": "build", "ok": False, "error": {"type": "VendorError", "message": "agent: lxml has no wheel that runs in the sandbox"}}
    assert compat.judge(case, vendor, native) == ("fail", "vendor: lxml has no wheel that runs in the sandbox")
    trace = 'Traceback (most recent call last):\n  File "/1/pkg/mod.py", line 3, in f\nModuleNotFoundError: x'
    run = {"stage": "run", "ok": False, "error": {"type": "ModuleNotFoundError", "message": "No module named '_bz2'", "traceback": trace}}
    assert compat.judge(case, run, native) == ("fail", "run: ModuleNotFoundError: No module named '_bz2' (at pkg/mod.py:3)")
    assert compat.judge(case, {"stage": "run", "ok": True, "result": 2}, native) == (
        "fail", "result differs from native CPython at $: sandbox 2 != native 1")
    broken = {"ok": False, "error": {"type": "NameError", "message": "name 'x' is not defined"}}
    status, reason = compat.judge(case, {"stage": "run", "ok": True, "result": 1}, broken)
    assert status == "fail" and reason.startswith("native CPython failed (the case needs fixing): NameError")


def test_report_counts_only_packages_with_a_pure_python_form(tmp_path):
    def record(name, status, pure=True):
        return {"name": name, "package": name, "version": "1.0", "category": "text", "description": "d", "lazy_imports": ["import x"],
                "pure": pure, "no_pure_form": None if pure else "C only", "status": status,
                "reason": "" if status == "pass" else "run: ModuleNotFoundError: No module named 'x' (at a.py:1)"}
    records = [record("a", "pass"), record("b", "pass"), record("c", "fail"), record("lxml", "fail", pure=False)]
    env = {"date": "2026-01-01 00:00 UTC", "wasm-agents": "0", "componentize-py": "0", "wasmtime": "0", "guest_python": "3.14 (WASI)",
           "native_python": "3.13.0", "commit": "abc", "cpus": 2}
    compat.write_report(records, env, 60.0, tmp_path / "COMPATIBILITY.md", tmp_path / "results.json")
    doc = (tmp_path / "COMPATIBILITY.md").read_text()
    assert "**Pass rate: 2 of 3 pure-Python packages, 66.7 %**" in doc and "is below the goal of 95 %" in doc
    assert "| lxml | 1.0 | C only | **fail** |" in doc
    assert "- run: ModuleNotFoundError (No module named 'x'): 1 (c)" in doc
    assert json.loads((tmp_path / "results.json").read_text())["summary"]["no_pure_form"] == ["lxml"]


@pytest.mark.slow
def test_fast_subset_runs_in_the_sandbox_as_under_native_cpython(tmp_path):
    records = compat.run_cases(compat.load_cases(FAST_SUBSET), tmp_path, jobs=2)
    failures = {record["name"]: record["reason"] for record in records if record["status"] != "pass"}
    assert not failures
    for record in records:
        assert record["version"] and record["guest"]["locked"], record["name"]
        assert record["guest"]["result"] == record["native"]["result"]

"""The wasmtime version in the compiled-code cache key is the one importlib.metadata reports."""

from importlib.metadata import version

from wasm_agents.sandbox.wasmtime_version import _metadata_version, wasmtime_version


def test_same_as_importlib_metadata() -> None:
    assert wasmtime_version() == version("wasmtime")


def test_metadata_of_another_distribution_is_not_read(tmp_path) -> None:
    (tmp_path / "METADATA").write_text("Metadata-Version: 2.4\nName: wasmtime-extra\nVersion: 1.0\n\nName: wasmtime\n")
    assert _metadata_version(tmp_path / "METADATA") is None
    (tmp_path / "METADATA").write_text("Metadata-Version: 2.4\nName: Wasmtime\nVersion: 50.0.1\n\nVersion: 9\n")
    assert _metadata_version(tmp_path / "METADATA") == "50.0.1"

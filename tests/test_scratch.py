"""Scratch folders: removed whatever a guest left in them, and with the process that made them."""

import os
import subprocess
import sys
from pathlib import Path

from wasm_agents.sandbox.scratch import remove_tree


def deep_tree(root: Path, depth: int) -> None:
    """Folders `depth` deep, a file in each, made relative to one open folder at a time (paths beyond PATH_MAX)."""
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=folder))
        os.mkdir("d", dir_fd=folder)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
        os.close(folder)
        folder = inner
    os.close(folder)


def test_a_tree_deeper_than_path_max_and_python_recursion_is_removed(tmp_path):
    root = tmp_path / "scratch"
    root.mkdir()
    deep_tree(root, 5000)  # 10 000 characters of path, 5000 levels
    remove_tree(root)
    assert not root.exists()


def test_removal_never_follows_a_symlink_out(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file").write_text("mine")
    root = tmp_path / "scratch"
    (root / "a").mkdir(parents=True)
    (root / "a" / "link").symlink_to(outside / "keep")
    (root / "file-link").symlink_to(outside / "keep" / "file")
    remove_tree(root)
    assert not root.exists() and (outside / "keep" / "file").read_text() == "mine"


def test_a_folder_that_cannot_be_emptied_is_left_and_the_rest_removed(tmp_path):
    root = tmp_path / "scratch"
    (root / "locked" / "inner").mkdir(parents=True)
    (root / "locked" / "inner" / "f").write_text("x")
    (root / "other").mkdir()
    os.chmod(root / "locked", 0o500)  # its entries cannot be removed
    try:
        remove_tree(root)
        if os.geteuid() != 0:  # root may remove anything
            assert (root / "locked" / "inner" / "f").exists() and not (root / "other").exists()
    finally:
        os.chmod(root / "locked", 0o700) if (root / "locked").exists() else None
        remove_tree(root)
    assert not root.exists()


def test_scratch_of_a_killed_process_is_removed_by_the_next_one(tmp_path):
    script = "from wasm_agents.sandbox.scratch import new_scratch; print(new_scratch(), flush=True); import os; os.kill(os.getpid(), 9)"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    left = Path(killed.stdout.strip())
    assert left.is_dir()  # kill -9: nothing ran on the way out
    subprocess.run([sys.executable, "-c", "from wasm_agents.sandbox.scratch import new_scratch; new_scratch()"], check=True, env=env)
    assert not left.parent.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # and the second process removed its own on exit

"""core.atomic: files and folders get the modes the umask allows (not mkstemp's 0600 /
mkdtemp's 0700), nothing is left behind, and a failed write leaves the target alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from core import atomic


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(saved)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _no_leftovers(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("write", ["bytes", "json", "npy", "with"])
def test_written_file_is_0644_under_umask_022(tmp_path: Path, umask, write: str):
    umask(0o022)
    target = tmp_path / "out" / "file"
    if write == "bytes":
        atomic.write_bytes(target, b"hello")
    elif write == "json":
        atomic.write_json(target, {"a": 1})
    elif write == "npy":
        atomic.write_npy(target, np.arange(3))
    else:
        atomic.write_with(target, lambda tmp: tmp.write_text("hi"))
    assert _mode(target) == 0o644
    assert _mode(target.parent) == 0o755
    _no_leftovers(target.parent)


def test_replacing_a_private_file_follows_the_umask(tmp_path: Path, umask):
    umask(0o022)
    target = tmp_path / "old.txt"
    target.write_text("old")
    target.chmod(0o600)
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o644


def test_a_stricter_umask_is_honoured(tmp_path: Path, umask):
    umask(0o077)
    atomic.write_bytes(tmp_path / "secret", b"x")
    with atomic.atomic_dir(tmp_path / "private") as tmp:
        (tmp / "f").write_bytes(b"x")
    assert _mode(tmp_path / "secret") == 0o600
    assert _mode(tmp_path / "private") == 0o700


def test_atomic_dir_is_0755_under_umask_022_and_replaces_the_old_one(tmp_path: Path, umask):
    umask(0o022)
    target = tmp_path / "dataset"
    for content in (b"first", b"second"):
        with atomic.atomic_dir(target) as tmp:
            atomic.write_bytes(tmp / "rows.bin", content)
        assert _mode(target) == 0o755
        assert _mode(target / "rows.bin") == 0o644
        assert (target / "rows.bin").read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_a_failed_write_leaves_the_target_and_no_temp_file(tmp_path: Path):
    target = tmp_path / "keep.txt"
    target.write_bytes(b"old")

    def boom(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, boom)
    with pytest.raises(RuntimeError), atomic.atomic_dir(tmp_path / "folder"):
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_non_folder_ancestor_finds_the_file_in_the_way(tmp_path: Path):
    regular = tmp_path / "regular"
    regular.write_text("x")
    assert atomic.non_folder_ancestor(regular / "a" / "b.npy") == regular
    assert atomic.non_folder_ancestor(regular / "b.npy") == regular
    assert atomic.non_folder_ancestor(tmp_path / "new" / "deeper" / "b.npy") is None
    assert atomic.non_folder_ancestor(tmp_path / "b.npy") is None

"""Atomic file writes: temp file in the same directory, fsync, rename.

A killed process leaves either the old file or the new one, never half of one.
Files are created with mode ``0o666`` and folders with ``0o777``, both less the
process umask (like ``open``/``mkdir``), so exports stay readable by others when the
umask allows it (``tempfile.mkstemp``/``mkdtemp`` would make them private).
:func:`exclusive` serialises work that writes the same files from several processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_TMP_ATTEMPTS = 100
_FILE_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def _make_temp_file(target: Path) -> Path:
    """Create an empty, new temp file next to ``target`` with mode 0o666 & ~umask.

    The kernel applies the umask (and any default ACL) itself, so there is no need to
    read the process-wide umask (``os.umask`` is a set-and-restore, racy across threads).
    """
    for _ in range(_TMP_ATTEMPTS):
        tmp = _temp_name(target)
        try:
            fd = os.open(tmp, _FILE_FLAGS, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary file name next to {str(target)!r}")


def _make_temp_dir(target: Path) -> Path:
    """Create a new, empty temp folder next to ``target`` with mode 0o777 & ~umask."""
    for _ in range(_TMP_ATTEMPTS):
        tmp = _temp_name(target)
        try:
            os.mkdir(tmp, 0o777)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary folder name next to {str(target)!r}")


def non_folder_ancestor(path: str | os.PathLike) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder (e.g. a regular file),
    i.e. what would make creating ``path``'s parent folders fail; None if there is none."""
    for parent in Path(path).parents:
        if parent.is_dir():
            return None
        if parent.exists() or parent.is_symlink():
            return parent
    return None


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success fsync it and rename onto ``target``.

    On any error the temp file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _make_temp_file(target)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented UTF-8 JSON."""
    write_bytes(target, json.dumps(obj, indent=2, sort_keys=True, default=str).encode("utf-8"))


def write_npy(target: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically save ``array`` as ``.npy`` (never pickled)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def write_with(target: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Atomically produce ``target`` by calling ``writer(temp_path)``."""
    with atomic_path(target) as tmp:
        writer(tmp)


@contextlib.contextmanager
def exclusive(lock_file: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` (created if missing, never removed)
    for the block: another process or thread entering with the same file waits until this
    one leaves. POSIX ``flock``; where ``fcntl`` is missing (Windows) no lock is taken."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(lock_file, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temp directory next to ``target``; on success swap it into place.

    An existing ``target`` is replaced only after the new directory is complete.
    On error the temp directory is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(target)
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

"""Shared fixtures: temporary workspaces and the digits dataset (built once per session)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent


def tree_hash(root: Path) -> str:
    """Hash of every file's relative path and bytes under ``root`` (sqlite side files ignored)."""
    h = hashlib.sha256()
    if not root.exists():
        return "absent"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.endswith(("-wal", "-shm")):
            continue
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty workspace directory."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def ws(home: Path):
    from core.workspace import open_workspace

    return open_workspace(home)


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory) -> Path:
    """scikit-learn digits as a PNG folder (label = subfolder)."""
    from core.demo import write_digits_folder

    folder = tmp_path_factory.mktemp("digits-src") / "digits"
    write_digits_folder(folder)
    return folder


@pytest.fixture(scope="session")
def digits_home(tmp_path_factory, digits_folder: Path) -> Path:
    """A workspace with the digits dataset ingested and embedded (built once; copy before writing).

    Developers may set ``CATALOG_TEST_CACHE`` to a directory to reuse the embedded digits
    between runs (CI leaves it unset and builds from scratch).
    """
    from core.embeddings import compute_embeddings
    from core.ingest import ingest_folder
    from core.workspace import open_workspace

    cache = os.environ.get("CATALOG_TEST_CACHE")
    cached = Path(cache) / "digits-home" if cache else None
    if cached is not None and (cached / "datasets" / "digits" / "embeddings").exists():
        home = tmp_path_factory.mktemp("digits-home") / "home"
        shutil.copytree(cached, home)
        ws = open_workspace(home)
        ws.dataset("digits").update_info(media_root=str(digits_folder))
        return home
    home = tmp_path_factory.mktemp("digits-home")
    ws = open_workspace(home)
    ingest_folder(ws, digits_folder, "digits")
    compute_embeddings(ws.dataset("digits"))
    if cached is not None:
        shutil.copytree(home, cached, dirs_exist_ok=True)
    return home


@pytest.fixture
def digits_ws(tmp_path: Path, digits_home: Path):
    """A private, writable copy of the embedded digits workspace."""
    from core.workspace import open_workspace

    target = tmp_path / "digits-home"
    shutil.copytree(digits_home, target)
    return open_workspace(target)


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory, digits_home: Path) -> Path:
    """digits (copied from the session digits workspace) + api-docs, built once."""
    from core.demo import build_demo
    from core.workspace import open_workspace

    home = tmp_path_factory.mktemp("demo-home") / "home"
    shutil.copytree(digits_home, home)
    cache = os.environ.get("CATALOG_TEST_CACHE")  # developers only: reuse api-docs between runs
    cached = Path(cache) / "demo-api-docs" if cache else None
    if cached is not None and (cached / "embeddings").exists():
        shutil.copytree(cached, home / "datasets" / "api-docs")
        return home
    build_demo(open_workspace(home), "api-docs")
    if cached is not None:
        shutil.copytree(home / "datasets" / "api-docs", cached, dirs_exist_ok=True)
    return home

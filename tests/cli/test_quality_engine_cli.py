"""`catalog quality|label-issues|duplicates --engine local|ray [--address A]` as a user runs
them: the stored pass computed on Ray gives the local engine's answers (and files), and a
bad engine, a missing Ray or an unreachable cluster is refused with one line, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.embeddings import write_embedding
from core.ingest import ingest_table
from core.quality import DEFAULT_K, bulk, load_neighbours
from core.workspace import open_workspace
from tests.cli.test_cli import assert_bad_input, assert_needs_ray, catalog

N, DIMS = 400, 16
STORED = (bulk.MANIFEST, bulk.SCORES_FILE, bulk.POSITIONS_FILE)


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """A workspace with dataset 'pts': 400 labelled rows in 8 clusters, some labels wrong, an
    exact twin pair; embedding 'e' (exact index), no stored pass."""
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((8, DIMS)).astype(np.float32) * 3
    which = rng.integers(0, len(centers), N)
    vecs = centers[which] + rng.standard_normal((N, DIMS)).astype(np.float32)
    vecs[11] = vecs[10]
    ids = [f"p{i:03d}" for i in range(N)]
    labels = ["abcdefgh"[c] for c in which]
    for i in range(0, N, 23):  # some labels disagree with their neighbours
        labels[i] = "abcdefgh"[(which[i] + 1) % 8]
    table = tmp_path / "pts.parquet"
    pd.DataFrame({"id": ids, "text": ids, "label": labels}).to_parquet(table)
    ws = open_workspace(tmp_path / "home")
    ingest_table(ws, table, "pts", label_col="label")
    write_embedding(ws.dataset("pts"), "e", ids, vecs, {"encoder": None, "source": "imported"},
                    index_kind="exact")
    return ws.home


def _json(home: Path, *args: str) -> dict:
    out = catalog(home, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _stored(home: Path) -> dict[str, bytes]:
    where = open_workspace(home).dataset("pts").embedding_dir("e") / bulk.QUALITY_DIR
    return {name: (where / name).read_bytes() for name in STORED}


def test_label_issues_and_duplicates_on_ray_equal_the_local_engines(labelled: Path):
    pytest.importorskip("ray")
    local_issues = _json(labelled, "label-issues", "pts", "--engine", "local")
    local_dups = _json(labelled, "duplicates", "pts", "--threshold", "0.9")
    assert local_issues["issues"] and ("p010", "p011") in {(p["a"], p["b"]) for p in local_dups["pairs"]}
    ds = open_workspace(labelled).dataset("pts")
    assert load_neighbours(ds, "e") is None  # a small set scores in memory locally: nothing stored

    assert _json(labelled, "label-issues", "pts", "--engine", "ray") == local_issues
    assert load_neighbours(ds, "e") is not None  # --engine ray: the stored pass, computed on Ray
    assert _json(labelled, "duplicates", "pts", "--threshold", "0.9", "--engine", "ray") == local_dups


def test_quality_on_ray_names_its_engine_and_stores_the_local_engines_files(labelled: Path, tmp_path: Path):
    pytest.importorskip("ray")
    twin = tmp_path / "twin"
    shutil.copytree(labelled, twin)
    on_ray = _json(labelled, "quality", "pts", "--engine", "ray")
    assert on_ray["engine"] == "ray" and on_ray["reused"] is False and on_ray["rows"] == N
    local = _json(twin, "quality", "pts")
    assert local["engine"] == "local"
    strip = ("engine", "seconds")
    assert {k: v for k, v in on_ray.items() if k not in strip} == {k: v for k, v in local.items() if k not in strip}
    assert _stored(labelled) == _stored(twin)  # bit for bit
    again = _json(labelled, "quality", "pts", "--engine", "ray")
    assert again["reused"] is True and again["engine"] == "ray"
    text = catalog(twin, "quality", "pts", "--k", str(DEFAULT_K + 10))  # wider than stored: recomputed
    assert text.returncode == 0 and "on local" in text.stdout


@pytest.mark.parametrize("command", [("label-issues", "pts"), ("duplicates", "pts"), ("quality", "pts")])
def test_a_bad_engine_or_unreachable_address_is_refused(labelled: Path, command):
    assert_bad_input(labelled, *command, "--engine", "nope", mentions="unknown engine 'nope'; choose one of local, ray")
    assert_bad_input(labelled, *command, "--engine", "ray", "--address", "127.0.0.1:1",
                     mentions="Ray cluster at '127.0.0.1:1' is unreachable")


def test_ray_not_installed_is_one_line_naming_the_install(labelled: Path):
    assert_needs_ray(labelled, 'label-issues', 'pts', '--engine', 'ray')

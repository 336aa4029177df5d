"""The `catalog` command as a user runs it: exit codes, one-line errors, --json shapes,
and an unchanged workspace after every bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import REPO, tree_hash


def catalog(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "core", "--home", str(home), *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def assert_bad_input(home: Path, *args: str, mentions: str) -> None:
    """Exit code 2, one line on stderr naming the problem, workspace unchanged."""
    before = tree_hash(home)
    result = catalog(home, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert mentions.lower() in lines[0].lower(), lines[0]
    assert tree_hash(home) == before


def assert_needs_ray(home: Path, *args: str) -> None:
    """``catalog ARGS`` where ``import ray`` fails: exit 2, one line naming the install, and
    the workspace unchanged."""
    before = tree_hash(home)
    code = ("import sys, runpy; sys.modules['ray'] = None; "
            f"sys.argv = ['catalog', '--home', {str(home)!r}, *{list(args)!r}]; "
            "runpy.run_module('core', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                            check=False, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "needs Ray Data" in line and "pip install -r requirements-scale.txt" in line
    assert tree_hash(home) == before


def png(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (value, value, value)).save(path)
    return path


@pytest.fixture
def texts_csv(tmp_path: Path) -> Path:
    path = tmp_path / "texts.csv"
    pd.DataFrame({
        "id": [f"t{i}" for i in range(6)],
        "text": ["a cat sleeps on the sofa", "a kitten naps on a couch", "stock prices fell sharply",
                 "markets dropped today", "how to bake bread", "a recipe for sourdough"],
        "label": ["pets", "pets", "finance", "finance", "food", "food"],
        "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    }).to_csv(path, index=False)
    return path


def test_ingest_embed_search_list_round_trip(home, texts_csv):
    result = catalog(home, "ingest", texts_csv, "--name", "notes")
    assert result.returncode == 0, result.stderr
    assert "6" in result.stdout and "pets" in result.stdout
    result = catalog(home, "embed", "notes")
    assert result.returncode == 0, result.stderr
    listed = json.loads(catalog(home, "list", "--json").stdout)
    (entry,) = listed["datasets"]
    assert entry["name"] == "notes" and entry["rows"] == 6
    assert entry["embeddings"][0]["dims"] == 384 and entry["embeddings"][0]["encoder"] == "text:minilm"
    out = catalog(home, "search", "notes", "--id", "t0", "-k", "2", "--json")
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert results[0]["id"] == "t1" and len(results) == 2
    assert results[0]["score"] >= results[1]["score"]
    out = catalog(home, "search", "notes", "--text", "bread baking", "-k", "1", "--json")
    assert json.loads(out.stdout)["results"][0]["id"] in {"t4", "t5"}


def test_broken_images_are_flagged_and_counted(home, tmp_path):
    src = tmp_path / "imgs"
    png(src / "a" / "ok1.png")
    png(src / "b" / "ok2.png", 30)
    (src / "a" / "empty.png").write_bytes(b"")
    (src / "b" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = catalog(home, "ingest", src, "--name", "imgs", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 4
    assert sum(report["flagged"].values()) == 2


def test_all_images_broken_is_an_error(home, tmp_path):
    src = tmp_path / "broken"
    src.mkdir()
    (src / "x.png").write_bytes(b"")
    (src / "y.jpg").write_bytes(b"junk")
    assert_bad_input(home, "ingest", src, "--name", "b", mentions="broken")


@pytest.mark.parametrize("bad_path", ["../outside.png", "ABSOLUTE"])
def test_image_paths_outside_the_root_are_refused(home, tmp_path, bad_path):
    root = tmp_path / "root"
    png(root / "in.png")
    outside = png(tmp_path / "outside.png")
    value = str(outside) if bad_path == "ABSOLUTE" else bad_path
    table = root / "rows.csv"
    pd.DataFrame({"id": ["a", "b"], "image": ["in.png", value]}).to_csv(table, index=False)
    assert_bad_input(home, "ingest", table, "--name", "x", mentions="outside")


def test_symlink_out_of_the_folder_is_refused(home, tmp_path):
    root = tmp_path / "root"
    png(root / "cats" / "in.png")
    outside = png(tmp_path / "secret.png")
    (root / "cats" / "link.png").symlink_to(outside)
    assert_bad_input(home, "ingest", root, "--name", "x", mentions="outside")


def test_table_errors_exit_2_and_change_nothing(home, tmp_path, texts_csv):
    assert catalog(home, "ingest", texts_csv, "--name", "notes").returncode == 0
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"id": ["a", "a", "b"], "text": ["x", "y", "z"]}).to_csv(dup, index=False)
    assert_bad_input(home, "ingest", dup, "--name", "d", mentions="duplicate")
    assert_bad_input(home, "ingest", texts_csv, "--name", "m", "--text-col", "body", mentions="score")
    assert_bad_input(home, "ingest", texts_csv, "--name", "f", "--format", "xml", mentions="xml")
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"id": ["a", "b"], "text": ["fine", None]}).to_csv(empty, index=False)
    assert_bad_input(home, "ingest", empty, "--name", "e", mentions="empty")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,text\na,caf\xe9 cr\xe8me\n".encode("latin-1"))
    assert_bad_input(home, "ingest", latin, "--name", "l", mentions="utf-8")
    assert_bad_input(home, "ingest", texts_csv, "--name", "notes", mentions="already exists")
    assert_bad_input(home, "embed", "notes", "--encoder", "nope:thing", mentions="text:minilm")
    assert_bad_input(home, "search", "notes", "--id", "t0", mentions="no embeddings")


def test_replace_keeps_the_old_dataset_until_the_new_one_is_complete(home, tmp_path, texts_csv):
    assert catalog(home, "ingest", texts_csv, "--name", "notes").returncode == 0
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"id": ["a", "a"], "text": ["x", "y"]}).to_csv(dup, index=False)
    assert_bad_input(home, "ingest", dup, "--name", "notes", "--replace", mentions="duplicate")
    assert json.loads(catalog(home, "list", "--json").stdout)["datasets"][0]["rows"] == 6


def test_killed_embed_resumes_without_recomputing_finished_chunks(home, tmp_path):
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    n = 1200
    texts = [" ".join(rng.choice(words, 12)) + f" number {i}" for i in range(n)]
    table = tmp_path / "many.csv"
    pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts}).to_csv(table, index=False)
    assert catalog(home, "ingest", table, "--name", "many").returncode == 0
    assert catalog(home, "embed", "many", "--embedding", "first").returncode == 0

    partial = home / "datasets" / "many" / "embeddings" / ".second.partial"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "--home", str(home), "embed", "many", "--embedding", "second",
         "--encoder", "text:minilm", "--chunk-rows", "50", "--batch-size", "10"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        finished = []
        while proc.poll() is None and len(finished) < 3:
            try:  # block on the process (not a fixed sleep) between looks at the chunk files
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            finished = list(partial.glob("chunk_*.ok.npy")) if partial.exists() else []
        assert proc.poll() is None, "embed finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_chunks = len(list(partial.glob("chunk_*.ok.npy")))
    assert 3 <= done_chunks < n // 50
    # readable while interrupted: the complete embedding answers, the partial one is not listed
    listed = json.loads(catalog(home, "list", "many", "--json").stdout)
    assert [e["name"] for e in listed["datasets"][0]["embeddings"]] == ["first"]
    assert catalog(home, "search", "many", "--id", "r0", "--embedding", "first").returncode == 0

    result = catalog(home, "embed", "many", "--embedding", "second", "--encoder", "text:minilm",
                     "--chunk-rows", "50", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resumed_rows"] == done_chunks * 50
    assert report["encoded_rows"] == n - done_chunks * 50
    assert not partial.exists()
    # resumed vectors equal a from-scratch computation
    ds = home / "datasets" / "many" / "embeddings"
    first = np.load(ds / "first" / "vectors.npy")
    second = np.load(ds / "second" / "vectors.npy")
    np.testing.assert_allclose(first, second, atol=1e-4)


@pytest.mark.parametrize("where", ["home", "parent", "datasets"])
def test_home_that_is_a_regular_file_exits_2_with_one_line(tmp_path: Path, where: str):
    regular = tmp_path / "regular"
    if where == "datasets":
        regular.mkdir()
        (regular / "datasets").write_text("x")
        home, mentions = regular, "is not a folder"
    else:
        regular.write_text("x")
        home = regular if where == "home" else regular / "sub"
        mentions = "is not a folder" if where == "home" else f"{str(regular)!r} is a file"
    result = catalog(home, "list")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("catalog: error: "), result.stderr
    assert str(home) in lines[0] and mentions in lines[0], lines[0]

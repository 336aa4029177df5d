"""`catalog embed --engine local|ray [--address A]` as a user runs it: Ray on this machine
gives the local engine's vectors, and a bad engine, a missing Ray or an unreachable cluster
is refused with one line naming it, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.test_cli import assert_bad_input, assert_needs_ray, catalog


@pytest.fixture
def notes(home: Path, tmp_path: Path) -> Path:
    """Dataset 'notes': twelve text rows, no embedding yet."""
    table = tmp_path / "notes.csv"
    pd.DataFrame({"id": [f"t{i}" for i in range(12)], "text": [f"note number {i}" for i in range(12)]}).to_csv(
        table, index=False)
    assert catalog(home, "ingest", table, "--name", "notes").returncode == 0
    return home


def test_embed_on_ray_equals_the_local_engine(notes: Path):
    pytest.importorskip("ray")
    result = catalog(notes, "embed", "notes", "--engine", "ray", "--embedding", "viaray", "--chunk-rows", "5",
                     "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["engine"] == "ray" and payload["encoded_rows"] == 12 and payload["device"] is None
    assert payload["workers"]["device"] == "cpu" and payload["workers"]["num_gpus"] == 0
    result = catalog(notes, "embed", "notes", "--embedding", "local")
    assert result.returncode == 0, result.stderr
    emb = notes / "datasets" / "notes" / "embeddings"
    np.testing.assert_allclose(np.load(emb / "viaray" / "vectors.npy"), np.load(emb / "local" / "vectors.npy"),
                               atol=1e-5)
    assert json.loads((emb / "viaray" / "meta.json").read_text())["engine"] == "ray"


def test_a_bad_engine_or_unreachable_address_is_refused(notes: Path):
    assert_bad_input(notes, "embed", "notes", "--engine", "spark",
                     mentions="unknown engine 'spark'; choose one of local, ray")
    assert_bad_input(notes, "embed", "notes", "--engine", "ray", "--address", "ray://127.0.0.1:1",
                     mentions="Ray cluster at 'ray://127.0.0.1:1' is unreachable")


def test_ray_not_installed_is_one_line_naming_the_install(notes: Path):
    assert_needs_ray(notes, 'embed', 'notes', '--engine', 'ray')

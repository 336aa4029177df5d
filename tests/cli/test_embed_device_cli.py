"""`catalog embed --device` as a user runs it: the device, precision and batch size it reports,
and a device this machine does not have refused with one line naming it, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.test_cli import assert_bad_input, catalog


def _missing_device() -> str:
    """A GPU device torch does not see here (a machine with both has none to refuse)."""
    from core.encoders import available_devices

    missing = [d for d in ("cuda", "mps") if d not in available_devices()]
    if not missing:
        pytest.skip("torch sees both CUDA and MPS here: no device to refuse")
    return missing[0]


@pytest.fixture
def notes(home: Path, tmp_path: Path) -> Path:
    """Dataset 'notes': six text rows, no embedding yet."""
    table = tmp_path / "notes.csv"
    pd.DataFrame({"id": [f"t{i}" for i in range(6)], "text": [f"note number {i}" for i in range(6)]}).to_csv(
        table, index=False)
    assert catalog(home, "ingest", table, "--name", "notes").returncode == 0
    return home


def test_embed_reports_where_it_ran_and_the_batch_size(notes: Path):
    from core.encoders import choose_device

    auto = choose_device("auto")
    result = catalog(notes, "embed", "notes", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["device"] == auto.to_json()

    result = catalog(notes, "embed", "notes", "--device", "CPU", "--batch-size", "5",
                     "--embedding", "on-cpu", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["device"] == {"device": "cpu", "dtype": "float32", "batch_size": 5}
    assert payload["encoded_rows"] == 6 and payload["embeddings"][0]["name"] == "on-cpu"

    result = catalog(notes, "embed", "notes", "--device", "cpu", "--embedding", "plain")
    assert result.returncode == 0, result.stderr
    assert "on cpu (float32, batches of 32)" in result.stdout


def test_a_device_that_is_not_here_is_refused_and_nothing_is_written(notes: Path):
    device = _missing_device()
    assert_bad_input(notes, "embed", "notes", "--device", device, mentions=f"device '{device}' is not available")
    assert_bad_input(notes, "embed", "notes", "--device", device, mentions="available here: ")
    assert_bad_input(notes, "embed", "notes", "--device", "gpu", mentions="invalid choice: 'gpu'")
    assert_bad_input(notes, "embed", "notes", "--device", "cpu", "--batch-size", "0",
                     mentions="batch_size must be a whole number >= 1, got 0")

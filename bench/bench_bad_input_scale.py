"""Bad input at scale (issue 16, acceptance 4): a Parquet table whose duplicate id is its
last row, and a vectors Parquet file whose last row is ragged, each at ``--rows`` rows.

Writes (once, into ``--work``) ``dup.parquet`` (``id``, ``text``; row N-1 repeats row 0's
id) and ``ragged.parquet`` (``id`` + ``list<float32>`` of ``--dims`` values; the last row
has one value fewer), then runs ``catalog ingest`` and ``catalog import-embeddings`` on them
in fresh processes and prints the exit code, the error message, wall time, peak RSS, and
whether anything was written (the dataset's folder before / after).

    /work/venv/bin/python bench/bench_bad_input_scale.py --rows 10000000 --work DIR
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
CHUNK = 1 << 18


def _ids(start: int, n: int) -> np.ndarray:
    return np.char.add("row-", np.char.zfill(np.arange(start, start + n).astype(str), 8))


def write_inputs(work: Path, rows: int, dims: int) -> tuple[Path, Path, Path]:
    """The bad table, a good table for the import's dataset, and the ragged vectors file."""
    dup, good, ragged = work / "dup.parquet", work / "good.parquet", work / "ragged.parquet"
    for path, last_id in ((dup, "row-00000000"), (good, None)):
        if path.exists():
            continue
        with pq.ParquetWriter(path, pa.schema([("id", pa.string()), ("text", pa.string())])) as w:
            for start in range(0, rows, CHUNK):
                ids = _ids(start, min(CHUNK, rows - start))
                if last_id and start + len(ids) == rows:
                    ids[-1] = last_id
                w.write_table(pa.table({"id": ids, "text": np.char.add("text of ", ids)}))
    if not ragged.exists():
        rng = np.random.default_rng(0)
        schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32()))])
        with pq.ParquetWriter(ragged, schema) as w:
            for start in range(0, rows, CHUNK):
                n = min(CHUNK, rows - start)
                lengths = np.full(n, dims, dtype=np.int32)
                if start + n == rows:
                    lengths[-1] = dims - 1
                offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
                values = rng.standard_normal(int(offsets[-1]), dtype=np.float32)
                w.write_table(pa.table([pa.array(_ids(start, n)),
                                        pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))],
                                       schema=schema))
    return dup, good, ragged


def run(args: list[str], home: Path) -> dict:
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-m", "core", "--home", str(home), *args], cwd=REPO,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO), "CATALOG_NO_DEMO": "1"})
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"exit": proc.returncode, "wall_s": round(time.perf_counter() - t0, 1),
            "peak_rss_gb": round(max(peak, before) * 1024 / 1e9, 2),
            "message": (proc.stderr.strip().splitlines() or [""])[-1][:400]}


def listing(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()} \
        if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dup, good, ragged = write_inputs(args.work, args.rows, args.dims)
    print(f"inputs ready in {time.perf_counter() - t0:.0f} s: {args.rows:,} rows; vectors {args.dims}-d",
          flush=True)
    home = args.work / "home"
    r = run(["ingest", str(dup), "--name", "dup"], home)
    print(f"ingest, duplicate id at row {args.rows - 1:,}: exit {r['exit']} after {r['wall_s']} s, "
          f"peak RSS {r['peak_rss_gb']} GB; dataset written: {bool(listing(home / 'datasets' / 'dup'))}\n"
          f"  {r['message']}")
    if not listing(home / "datasets" / "good"):
        g = run(["ingest", str(good), "--name", "good"], home)
        print(f"ingest of the good table: exit {g['exit']} after {g['wall_s']} s", flush=True)
    before = listing(home / "datasets" / "good")
    r = run(["import-embeddings", "good", str(ragged), "--embedding", "ragged"], home)
    after = listing(home / "datasets" / "good")
    print(f"import, ragged last row (row {args.rows - 1:,}): exit {r['exit']} after {r['wall_s']} s, "
          f"peak RSS {r['peak_rss_gb']} GB; dataset files unchanged: {before == after}\n  {r['message']}")


if __name__ == "__main__":
    main()

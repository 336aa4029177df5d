"""Benchmark: import 1,000,000 × 384 vectors from Parquet (list<float32> column).

Builds a workspace with an N-row text dataset and a Parquet file of random vectors,
then runs :func:`core.embeddings_io.import_embeddings` in a fresh subprocess and reports,
per phase, wall time and peak RSS above the baseline (the process after imports):

- ``read+validate``: streaming the Parquet file into the (n, d) float32 array, checks,
  id matching, in-place normalisation (everything up to ``write_embedding``);
- ``write: normalise``: ``write_embedding`` up to ``build_index`` (the norm check);
- ``index build``: ``core.index.build_index`` (exact by default for imports: faiss's own
  copy of the vectors, filled ``_ADD_CHUNK`` normalised rows at a time; ``--index-kind
  hnsw`` adds the graph build);
- ``save``: writing vectors.npy, ids.npy, the index and meta.json, atomic swap.

Peak RSS is sampled with psutil every 10 ms per phase; the whole call's peak is also
taken from ``ru_maxrss``. CPU seconds (user + system) per phase are reported too: on a
shared, loaded machine they are steadier than wall time. Targets: ≤ 60 s and peak RSS ≤ 2.5 × the vectors' size.

Usage: ``python bench/bench_import.py [--rows 1000000] [--dims 384] [--index-kind auto|exact|hnsw]
[--workdir DIR] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def prepare(workdir: Path, rows: int, dims: int, seed: int = 0) -> tuple[Path, Path]:
    """Write the dataset (rows.parquet + dataset.json) and the vectors Parquet; returns (home, file)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core import atomic

    home = workdir / "home"
    ds_dir = home / "datasets" / "bench"
    shutil.rmtree(ds_dir, ignore_errors=True)  # a reused workdir starts without embeddings
    ds_dir.mkdir(parents=True)
    ids = np.char.add("row-", np.arange(rows).astype(str))
    null = pa.nulls(rows, pa.string())
    table = pa.table({"id": pa.array(ids), "modality": pa.array(np.full(rows, "text")),
                      "text": pa.array(np.char.add("text ", np.arange(rows).astype(str))),
                      "image": null, "label": null, "ingest_issue": null})
    pq.write_table(table, ds_dir / "rows.parquet")
    atomic.write_json(ds_dir / "dataset.json", {"name": "bench", "media_root": None, "rows": rows,
                                                "default_embedding": None})
    source = workdir / f"vectors_{rows}x{dims}.parquet"
    if not source.exists():  # one pq.write_table call, as a user would: pyarrow's default row
        # groups (up to 1Mi rows), i.e. a single 1.5 GB row group at 1M × 384: the worst case
        vectors = np.random.default_rng(seed).standard_normal((rows, dims), dtype=np.float32)
        offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * np.int32(dims))  # rows*dims < 2**31
        column = pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1)))
        table = pa.table({"id": pa.array(ids), "vector": column})
        pq.write_table(table, source)
    return home, source


class Sampler(threading.Thread):
    """Samples this process's RSS every 10 ms; tracks the peak of the current phase."""

    def __init__(self) -> None:
        import psutil

        super().__init__(daemon=True)
        self.proc = psutil.Process()
        self.phase = "baseline"
        self.peaks: dict[str, int] = {}
        self.starts: list[tuple[str, float, float]] = []  # (phase, wall, cpu seconds)
        self.stop = threading.Event()

    def mark(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        cpu = self.proc.cpu_times()
        self.starts.append((phase, time.perf_counter(), cpu.user + cpu.system))
        self.sample()

    def sample(self) -> None:
        rss = self.proc.memory_info().rss
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)

    def run(self) -> None:
        while not self.stop.wait(0.01):
            self.sample()


def child(home: Path, source: Path, index_kind: str) -> dict:
    """Run one import in this (fresh) process; returns the measurements.

    ``index_kind`` is passed to ``import_embeddings`` (its default is "exact").
    """
    import core.embeddings.io as eio  # imports count towards the baseline, not the import
    from core.embeddings import files as embeddings
    from core.workspace import open_workspace

    ds = open_workspace(home).dataset("bench")
    sampler = Sampler()
    sampler.start()
    time.sleep(0.1)
    sampler.sample()
    baseline = sampler.peaks["baseline"]
    real_write, real_build = eio.write_embedding, embeddings.build_index

    def write(*args, **kwargs):
        sampler.mark("write: normalise")
        info = real_write(*args, **kwargs)
        sampler.mark("done")
        return info

    def build(*args, **kwargs):
        sampler.mark("index build")
        index = real_build(*args, **kwargs)
        sampler.mark("save")
        return index

    eio.write_embedding, embeddings.build_index = write, build
    sampler.mark("read+validate")
    t0 = time.perf_counter()
    report = eio.import_embeddings(ds, source, "imported", index_kind=index_kind)
    total = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    maxrss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, *sampler.peaks.values())
    starts = sampler.starts
    phases = {name: {"seconds": round(starts[i + 1][1] - t, 2), "cpu_seconds": round(starts[i + 1][2] - c, 2),
                     "peak_rss_above_baseline_gb": round((sampler.peaks[name] - baseline) / 1e9, 3)}
              for i, (name, t, c) in enumerate(starts[:-1])}
    return {"summary": report.summary(), "index_kind": report.info.index_kind,
            "total_seconds": round(total, 2), "phases": phases, "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "baseline_rss_gb": round(baseline / 1e9, 3),
            "peak_rss_above_baseline_gb": round((maxrss - baseline) / 1e9, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--workdir", type=Path, default=None, help="reused if given (keeps the vectors file)")
    parser.add_argument("--index-kind", choices=("auto", "exact", "hnsw"), default="exact",
                        help="index built by the import (default exact, as import_embeddings; "
                             "auto: exact up to EXACT_MAX_ROWS, else hnsw)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("HOME", "SOURCE", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]), args.child[2])))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-import-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    home, source = prepare(workdir, args.rows, args.dims)
    prep = time.perf_counter() - t0
    run = subprocess.run([sys.executable, __file__, "--child", str(home), str(source), args.index_kind],
                         capture_output=True, text=True, check=False)
    if run.returncode:
        sys.exit(f"import failed:\n{run.stderr}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    vector_gb = args.rows * args.dims * 4 / 1e9
    result.update(rows=args.rows, dims=args.dims, vectors_gb=round(vector_gb, 3),
                  file_gb=round(source.stat().st_size / 1e9, 3), prepare_seconds=round(prep, 1),
                  peak_ratio=round(result["peak_rss_above_baseline_gb"] / vector_gb, 2))
    rv = result["phases"]["read+validate"]
    result["read_validate_ratio"] = round(rv["peak_rss_above_baseline_gb"] / vector_gb, 2)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.rows:,} × {args.dims} float32 = {vector_gb:.3f} GB of vectors; "
          f"Parquet file {result['file_gb']} GB; baseline RSS {result['baseline_rss_gb']} GB")
    print(result["summary"] + f"  [index: {result['index_kind']}; {result['cpus']} cpus, "
          f"load average {result['load_average_1m']} at the end]")
    for name, phase in result["phases"].items():
        print(f"  {name:<18} {phase['seconds']:>8.2f} s  (cpu {phase['cpu_seconds']:>7.2f} s)   peak RSS +{phase['peak_rss_above_baseline_gb']:.3f} GB "
              f"({phase['peak_rss_above_baseline_gb'] / vector_gb:.2f}x)")
    print(f"  {'total':<18} {result['total_seconds']:>8.2f} s  {'':>16}   peak RSS +{result['peak_rss_above_baseline_gb']:.3f} GB "
          f"({result['peak_ratio']:.2f}x the vectors; ru_maxrss)")


if __name__ == "__main__":
    main()

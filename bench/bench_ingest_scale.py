"""Benchmark: ingest an N-row Parquet table and import N × 384 vectors, streamed, against the
code before the change (run side by side in the same invocation).

Writes a synthetic N-row table (``id, text, label`` and two metadata columns, ``group`` int64
and ``score`` float64) and an N × 384 vectors Parquet file (``id`` + a ``list<float32>``
column, 64k-row row groups), both written in chunks. Then each step runs in its own
subprocess, so each has its own peak memory:

- ``ingest``: :func:`core.ingest.ingest_table` of the table (new: streamed in record
  batches; old: the whole table through pandas);
- ``import``: :func:`core.embeddings.import_embeddings` of the vectors into the ingested
  dataset, with phases ``vectors`` (read, check, normalise, write ``vectors.npy``) and
  ``index`` (``build_index``, exact by default as ``import_embeddings``, and its save).

"old" is the ``core`` package of a git revision (default ``HEAD``, extracted with
``git archive`` into the work folder), run with the same Python. For each step it prints wall
seconds, CPU seconds (user + system), peak RSS (``ru_maxrss``: includes file pages the step
mapped, e.g. a memory-mapped ``vectors.npy`` it wrote) and peak anonymous RSS (RSS less
file-backed and shared pages, sampled every 20 ms: the memory the step holds itself, without
page cache), and the old/new ratios. It also checks that both give the same rows and bit-for-
bit the same vectors. Above ``--old-import-max-rows`` the old import is not run (it needs
~3.7x the vectors' size: ~57 GB at 10M × 384).

Usage: ``python bench/bench_ingest_scale.py --rows 1000000 [--dims 384] [--workdir DIR]
[--old-rev HEAD] [--old-import-max-rows 2000000] [--index-kind exact|auto|hnsw|ivf|skip] [--json]``
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
CHUNK = 1 << 16
VOCABULARY = 5000  # made-up words; a text is 10 of them and its row number (unique, ~75 chars)


class NoIndex:
    """``--index-kind skip``: what ``build_index`` returns instead of an index (saves nothing)."""

    kind = "none"

    def save(self, directory) -> None:
        pass


def write_inputs(workdir: Path, rows: int, dims: int) -> tuple[Path, Path]:
    """The table and the vectors file (kept in ``workdir`` and reused when present)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table_path = workdir / f"table_{rows}.parquet"
    vectors_path = workdir / f"vectors_{rows}x{dims}.parquet"
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = np.array(["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(VOCABULARY)])
    if not table_path.exists():
        schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string()),
                            ("group", pa.int64()), ("score", pa.float64())])
        with pq.ParquetWriter(table_path.with_suffix(".tmp"), schema) as writer:
            for start in range(0, rows, CHUNK):
                n = min(CHUNK, rows - start)
                picks = words[rng.integers(0, len(words), (n, 10))]
                text = [" ".join(p) + f" {start + i}" for i, p in enumerate(picks)]
                writer.write_table(pa.table({
                    "id": np.char.add("row-", np.arange(start, start + n).astype(str)),
                    "text": text, "label": np.char.add("class-", rng.integers(0, 100, n).astype(str)),
                    "group": rng.integers(0, 1000, n), "score": rng.random(n)}, schema=schema))
        table_path.with_suffix(".tmp").rename(table_path)
    if not vectors_path.exists():
        schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32()))])
        with pq.ParquetWriter(vectors_path.with_suffix(".tmp"), schema) as writer:
            for start in range(0, rows, CHUNK):
                n = min(CHUNK, rows - start)
                block = rng.standard_normal((n, dims), dtype=np.float32)
                offsets = pa.array(np.arange(n + 1, dtype=np.int32) * np.int32(dims))
                column = pa.ListArray.from_arrays(offsets, pa.array(block.reshape(-1)))
                ids = np.char.add("row-", np.arange(start, start + n).astype(str))
                writer.write_table(pa.table([pa.array(ids), column], schema=schema))
        vectors_path.with_suffix(".tmp").rename(vectors_path)
    return table_path, vectors_path


def old_code(workdir: Path, rev: str) -> Path:
    """``core`` of ``rev`` extracted into ``workdir/old-<rev>`` (a folder to put on sys.path)."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], capture_output=True,
                            text=True, check=True).stdout.strip()
    target = workdir / f"old-{commit[:12]}"
    if not (target / "core").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "core"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


class Sampler(threading.Thread):
    """Peak RSS and peak anonymous RSS (RSS less file-backed/shared pages) of this process,
    every 20 ms, per phase."""

    def __init__(self) -> None:
        import psutil

        super().__init__(daemon=True)
        self.proc, self.phase, self.stop = psutil.Process(), "start", threading.Event()
        self.peaks: dict[str, list[int]] = {}
        self.marks: list[tuple[str, float, float]] = []

    def sample(self) -> None:
        mem = self.proc.memory_info()
        peak = self.peaks.setdefault(self.phase, [0, 0])
        peak[0], peak[1] = max(peak[0], mem.rss), max(peak[1], mem.rss - mem.shared)

    def mark(self, phase: str) -> None:
        self.sample()
        cpu = self.proc.cpu_times()
        self.phase = phase
        self.marks.append((phase, time.perf_counter(), cpu.user + cpu.system))
        self.sample()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.sample()


def child(step: str, home: Path, source: Path, index_kind: str) -> dict:
    """One step in this fresh process; the measurements as a dict."""
    from core.embeddings import files, import_embeddings
    from core.ingest import ingest_table
    from core.workspace import open_workspace

    ws = open_workspace(home)
    sampler = Sampler()
    sampler.start()
    sampler.sample()
    base = sampler.peaks["start"][1]
    if step == "import":
        real = files.build_index

        def build(*args, **kwargs):
            sampler.mark("index")
            return NoIndex() if index_kind == "skip" else real(*args, **kwargs)

        files.build_index = build
        sampler.mark("vectors")
        kind = "exact" if index_kind == "skip" else index_kind
        import_embeddings(ws.dataset("bench"), source, "imported", index_kind=kind, replace=True)
    else:
        sampler.mark("ingest")
        ingest_table(ws, source, "bench", replace=True)
    sampler.mark("end")
    sampler.stop.set()
    sampler.join()
    marks = sampler.marks
    phases = {name: {"wall": marks[i + 1][1] - t, "cpu": marks[i + 1][2] - c,
                     "peak_rss_gb": sampler.peaks[name][0] / 1e9,
                     "peak_anon_gb": sampler.peaks[name][1] / 1e9}
              for i, (name, t, c) in enumerate(marks[:-1])}
    import core

    return {"core": core.__file__, "wall": marks[-1][1] - marks[0][1], "cpu": marks[-1][2] - marks[0][2],
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
            "peak_anon_gb": max(p[1] for p in sampler.peaks.values()) / 1e9,
            "baseline_anon_gb": base / 1e9, "phases": phases}


def run_step(step: str, impl: str, code: Path, home: Path, source: Path, index_kind: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run([sys.executable, __file__, "--child", step, str(home), str(source),
                           index_kind], capture_output=True, text=True, env=env, check=False,
                          cwd=code)
    if proc.returncode:
        sys.exit(f"{step} ({impl}) failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same_rows(a: Path, b: Path) -> bool:
    """Whether two rows.parquet files hold the same rows (string types compared as strings)."""
    import pyarrow.parquet as pq

    fa, fb = pq.ParquetFile(a), pq.ParquetFile(b)
    if fa.metadata.num_rows != fb.metadata.num_rows or fa.schema_arrow.names != fb.schema_arrow.names:
        return False
    target = fb.schema_arrow.remove_metadata()
    for x, y in zip(fa.iter_batches(CHUNK), fb.iter_batches(CHUNK)):
        if not x.cast(target).equals(y):
            return False
    return True


def same_vectors(a: Path, b: Path) -> bool:
    import numpy as np

    x, y = np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r")
    return x.shape == y.shape and all(np.array_equal(x[s:s + CHUNK].view(np.uint32), y[s:s + CHUNK].view(np.uint32))
                                      for s in range(0, len(x), CHUNK))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--workdir", type=Path, default=None, help="reused: keeps the inputs")
    parser.add_argument("--old-rev", default="HEAD")
    parser.add_argument("--old-import-max-rows", type=int, default=2_000_000,
                        help="above this the old import is not run (it needs ~3.7x the vectors)")
    parser.add_argument("--index-kind", choices=("exact", "auto", "hnsw", "ivf", "skip"), default="exact",
                        help="index the import builds (skip: none, to measure the vectors alone; "
                             "the old code knows exact, auto and hnsw)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, home, source, kind = args.child
        print(json.dumps(child(step, Path(home), Path(source), kind)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    table, vectors = write_inputs(workdir, args.rows, args.dims)
    prepare = time.perf_counter() - t0
    impls = {"new": REPO, "old": old_code(workdir, args.old_rev)}
    results: dict[str, dict[str, dict]] = {}
    ds = "datasets/bench"
    for impl, code in impls.items():
        home = workdir / f"home-{impl}"
        shutil.rmtree(home, ignore_errors=True)
        results[impl] = {"ingest": run_step("ingest", impl, code, home, table, args.index_kind)}
        if impl == "new" or args.rows <= args.old_import_max_rows:
            results[impl]["import"] = run_step("import", impl, code, home, vectors, args.index_kind)
        if impl == "new" and args.rows > args.old_import_max_rows:  # disk for the old run
            shutil.rmtree(home / ds / "embeddings", ignore_errors=True)
    checks = {"same rows": same_rows(workdir / f"home-old/{ds}/rows.parquet",
                                     workdir / f"home-new/{ds}/rows.parquet")}
    if "import" in results["old"]:
        checks["same vectors (bits)"] = same_vectors(
            workdir / f"home-old/{ds}/embeddings/imported/vectors.npy",
            workdir / f"home-new/{ds}/embeddings/imported/vectors.npy")
    for impl in impls:
        shutil.rmtree(workdir / f"home-{impl}", ignore_errors=True)
    out = {"rows": args.rows, "dims": args.dims, "vectors_gb": args.rows * args.dims * 4 / 1e9,
           "table_gb": table.stat().st_size / 1e9, "vectors_file_gb": vectors.stat().st_size / 1e9,
           "prepare_seconds": prepare, "cpus": os.cpu_count(), "load_1m": os.getloadavg()[0],
           "index_kind": args.index_kind, "results": results, "checks": checks}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{args.rows:,} rows; table {out['table_gb']:.2f} GB, vectors {args.rows:,} × {args.dims} = "
          f"{out['vectors_gb']:.2f} GB (file {out['vectors_file_gb']:.2f} GB); {out['cpus']} cpus, "
          f"load average {out['load_1m']:.1f}; index {args.index_kind}")
    print(f"{'step':<16}{'impl':<5}{'wall s':>9}{'cpu s':>9}{'peak RSS GB':>13}{'peak anon GB':>14}"
          f"{'wall old/new':>14}{'anon old/new':>14}")
    for step in ("ingest", "import", "  vectors", "  index"):
        for impl in impls:
            if step != "ingest" and "import" not in results[impl]:
                print(f"{step:<16}{impl:<5}  not run above {args.old_import_max_rows:,} rows")
                continue
            r = results[impl][step.strip()] if not step.startswith(" ") else \
                results[impl]["import"]["phases"][step.strip()]
            ratio = ""
            if impl == "old":
                n = results["new"][step.strip()] if not step.startswith(" ") else \
                    results["new"]["import"]["phases"][step.strip()]
                ratio = f"{r['wall'] / n['wall']:>14.2f}{r['peak_anon_gb'] / n['peak_anon_gb']:>14.2f}"
            print(f"{step:<16}{impl:<5}{r['wall']:>9.1f}{r['cpu']:>9.1f}{r['peak_rss_gb']:>13.2f}"
                  f"{r['peak_anon_gb']:>14.2f}{ratio}")
    for name, ok in checks.items():
        print(f"{name}: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()

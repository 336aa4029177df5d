"""Benchmark core.clusters: UMAP projection cold/warm, PCA projection, KMeans.

    /work/venv/bin/python bench/bench_clusters.py [--rows 100000] [--dims 384] [--k 10]

Data: ``--rows`` x ``--dims`` float32 vectors around 30 seeded random centres, L2-normalised.
Cold = a fresh Python process (imports + numba JIT + PCA + UMAP fit on a sample + transform
of the rest + cache write). By default numba's on-disk cache points at an empty temp dir so
every JIT compilation is paid (the first run ever); ``--keep-numba-cache`` uses the normal
cache (what a second app start pays). Warm = another fresh process reading the cache.
Targets on the 2-core box: cold <= 90 s, warm <= 1 s. Prints one JSON document at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_vectors(rows: int, dims: int, seed: int = 0) -> np.ndarray:
    """(rows, dims) float32, unit rows, 30 clusters of varying spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dims)).astype(np.float32)
    which = rng.integers(0, 30, rows)
    spread = rng.uniform(0.5, 1.2, 30).astype(np.float32)[which, None]
    x = centres[which] + spread * rng.standard_normal((rows, dims)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def child(workdir: Path, method: str, sample_threshold: int) -> None:
    """Run one project() in this (fresh) process; print timings as JSON on stdout."""
    t0 = time.perf_counter()
    from core import clusters

    t_import = time.perf_counter() - t0
    ids = np.load(workdir / "ids.npy").tolist()
    vectors = np.load(workdir / "vectors.npy", mmap_mode="r")
    t1 = time.perf_counter()
    proj = clusters.project(ids, vectors, method=method, cache_dir=workdir / "projections",
                            sample_threshold=sample_threshold)
    t_project = time.perf_counter() - t1
    print(json.dumps({
        "import_s": round(t_import, 2), "project_s": round(t_project, 2),
        "process_s": round(time.perf_counter() - t0, 2), "from_cache": proj.from_cache,
        "finite": bool(np.isfinite(proj.coords).all()), "params": proj.params,
    }))


def run_child(workdir: Path, env: dict, method: str = "umap", sample_threshold: int = 50_000) -> dict:
    t0 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(workdir), "--method", method,
         "--sample-threshold", str(sample_threshold)],
        env=env, check=True, capture_output=True, text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sample-threshold", type=int, default=50_000)
    parser.add_argument("--keep-numba-cache", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="umap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.method, args.sample_threshold)
        return

    from core import clusters

    load_before = os.getloadavg()
    report: dict = {"rows": args.rows, "dims": args.dims, "cpus": os.cpu_count(), "load_before": load_before}
    with tempfile.TemporaryDirectory(prefix="bench-clusters-") as tmp:
        work = Path(tmp)
        vectors = make_vectors(args.rows, args.dims)
        ids = [f"row-{i:07d}" for i in range(args.rows)]
        np.save(work / "vectors.npy", vectors)
        np.save(work / "ids.npy", np.asarray(ids))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        if not args.keep_numba_cache:
            env["NUMBA_CACHE_DIR"] = str(work / "numba-cache")

        t = time.perf_counter()
        h = clusters.vectors_hash(ids, vectors)
        report["vectors_hash_s"] = round(time.perf_counter() - t, 3)
        del h

        cold = run_child(work, env, sample_threshold=args.sample_threshold)
        report["umap_cold"] = cold
        print(f"UMAP cold  {cold['wall_s']:7.1f} s process, {cold['cpu_s']:.1f} s CPU "
              f"({cold['project_s']:.1f} s in project, "
              f"{cold['import_s']:.1f} s imports), params {cold['params']}", flush=True)
        warm = run_child(work, env, sample_threshold=args.sample_threshold)
        report["umap_warm"] = warm
        print(f"UMAP warm  {warm['project_s']:7.2f} s in project (from_cache={warm['from_cache']}), "
              f"{warm['wall_s']:.1f} s whole process", flush=True)

        t, c = time.perf_counter(), time.process_time()
        pca = clusters.project(ids, vectors, method="pca")
        report["pca_s"] = round(time.perf_counter() - t, 2)
        report["pca_cpu_s"] = round(time.process_time() - c, 2)
        print(f"PCA 2-D    {report['pca_s']:7.2f} s ({report['pca_cpu_s']:.1f} s CPU, no cache)", flush=True)
        assert pca.coords.shape == (args.rows, 2)

        # default cluster() uses MiniBatchKMeans above 20,000 rows; full KMeans for comparison
        for threshold, name in ((20_000, "minibatch_kmeans"), (args.rows + 1, "kmeans")):
            t, c = time.perf_counter(), time.process_time()
            result = clusters.cluster(ids, vectors, k=args.k, seed=0, minibatch_threshold=threshold)
            report[f"{name}_s"] = round(time.perf_counter() - t, 2)
            report[f"{name}_cpu_s"] = round(time.process_time() - c, 2)
            print(f"{name:17s} k={args.k}: {report[f'{name}_s']:6.2f} s ({report[f'{name}_cpu_s']:.1f} s CPU), sizes "
                  f"{[s.size for s in result.summaries]}", flush=True)
        report["estimate_s"] = clusters.estimate_projection_seconds(args.rows, args.dims)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()

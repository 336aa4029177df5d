"""Benchmark the cluster capability at scale, new code and today's side by side: smart select
by cluster (n=1,000, k=10), cluster summaries (KMeans k=10 with labels), the UMAP cluster
map cold and warm.

    /work/venv/bin/python bench/bench_clusters_scale.py --rows 1000000
    /work/venv/bin/python bench/bench_clusters_scale.py --rows 100000 --baseline 4326863

Data: ``--rows`` x 384 float32 vectors around 30 seeded centres of varying spread (as
bench/bench_clusters.py), L2-normalised, written chunk by chunk into a ``vectors.npy`` that
every step opens as a read-only memory map (as a stored embedding is); ids ``row-NNNNNNNN``;
labels = the centre of each row.

Every step runs in a fresh Python process, so its wall time, CPU time (user + system, all
threads) and memory are its own. Peak RSS is reported twice: ``anon`` (sampled every 20 ms:
RssAnon + RssShmem, i.e. excluding the page cache of the memory-mapped vectors, the target's
measure) and ``hwm`` (the kernel's VmHWM, which counts mapped file pages too). "Cold" map =
a fresh process with an empty numba cache (``--keep-numba-cache``: the normal cache) and an
empty projection cache; "warm" = another fresh process reading what the cold one cached
(time inside ``project`` and for the whole process).

Today's path is the code at ``--baseline`` (default 4326863, the commit before the
large-dataset work), checked out with ``git worktree add`` into a temp dir (removed at the
end) and run by the same child code with that tree first on ``sys.path``. Above
``--old-max-rows`` (default 2,000,000) the old path is skipped: it copies the vectors twice
(select) or transforms every row with UMAP (map: ~0.5 ms per row).

``--kmeans-sweep`` adds how the KMeans sample size was chosen: MiniBatchKMeans (k = 10 and
100) fitted on every row and on samples of 20k-200k rows, each scored by its inertia over
every row (``core.clusters.assign_rows``), with the fit time.

Targets at 10M rows (issue 16): smart select by cluster <= 180 s, map cold <= 1,200 s, warm
<= 2 s, peak RSS <= 8 GB. Prints a table, then one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CENTRES = 30
DIMS = 384
GEN_CHUNK = 250_000


# ---- data ----------------------------------------------------------------------------------------
def write_vectors(work: Path, rows: int, seed: int = 0) -> None:
    """``vectors.npy`` (rows, 384) float32 unit rows, ``ids.npy`` and ``labels.npy``, written in chunks."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, DIMS)).astype(np.float32)
    spread = rng.uniform(0.5, 1.2, CENTRES).astype(np.float32)
    out = np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float32, shape=(rows, DIMS))
    labels = np.empty(rows, dtype=np.int16)
    for start in range(0, rows, GEN_CHUNK):
        stop = min(start + GEN_CHUNK, rows)
        which = rng.integers(0, CENTRES, stop - start)
        x = centres[which] + spread[which, None] * rng.standard_normal((stop - start, DIMS)).astype(np.float32)
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
        labels[start:stop] = which
    out.flush()
    del out
    np.save(work / "ids.npy", np.char.add("row-", np.char.zfill(np.arange(rows).astype(str), 8)))
    np.save(work / "labels.npy", labels)


# ---- child: one step in a fresh process -------------------------------------------------------------
def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[name] = int(value.split()[0]) * 1024
    return out


class PeakAnon:
    """Samples RssAnon + RssShmem every 20 ms in a thread; ``peak`` in bytes."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            s = _status()
            self.peak = max(self.peak, s.get("RssAnon", 0) + s.get("RssShmem", 0))
            self._stop.wait(0.02)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        s = _status()
        self.peak = max(self.peak, s.get("RssAnon", 0) + s.get("RssShmem", 0))


def child(tree: Path, work: Path, step: str, cache: Path) -> None:
    """Run ``step`` with the code of ``tree``; print one JSON line of measurements."""
    t_start = time.perf_counter()
    sys.path.insert(0, str(tree))
    from core.clusters import cluster, project
    from core.select import scope_vectors, select_by_cluster

    ids = np.load(work / "ids.npy").tolist()
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    labels = np.load(work / "labels.npy").astype(str).tolist() if step == "summaries" else None
    base = _status()
    cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    extra: dict = {}
    with PeakAnon() as peak:
        if step == "select":
            scope, scoped = scope_vectors(ids, vectors, ids)  # what select_rows does for the whole dataset
            sel = select_by_cluster(scope, scoped, 1_000, 10, seed=0)
            extra = {"selected": len(sel.ids), "cluster_sizes": sel.recipe["cluster_sizes"],
                     "fitted_rows": sel.recipe.get("fitted_rows", len(ids))}
        elif step == "summaries":
            result = cluster(ids, vectors, k=10, seed=0, labels=labels)
            extra = {"sizes": [s.size for s in result.summaries],
                     "purity": [round(s.purity, 3) for s in result.summaries]}
        elif step in ("map_cold", "map_warm"):
            proj = project(ids, vectors, method="umap", seed=0, cache_dir=cache)
            extra = {"from_cache": proj.from_cache, "finite": bool(np.isfinite(proj.coords).all()),
                     "placement": proj.params.get("placement", "transform"),
                     "placed": proj.params.get("placed_by_transform")}
            if step == "map_cold":
                np.save(cache.parent / f"coords-{cache.name}.npy", proj.coords)
        else:
            raise SystemExit(f"unknown step {step!r}")
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    end = _status()
    print(json.dumps({
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 1),
        "process_s": round(time.perf_counter() - t_start, 2),
        "peak_anon_gb": round(peak.peak / 1e9, 3), "baseline_anon_gb": round(base.get("RssAnon", 0) / 1e9, 3),
        "peak_hwm_gb": round(end.get("VmHWM", 0) / 1e9, 3), **extra,
    }))


def run_child(tree: Path, work: Path, step: str, cache: Path, env: dict) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", step, "--tree", str(tree), "--work", str(work),
                          "--cache", str(cache)], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}",
                "wall_s": round(time.perf_counter() - t0, 1)}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- driver ----------------------------------------------------------------------------------------
def map_quality(work: Path, new: Path, old: Path, queries: int = 20_000) -> dict:
    """(1) per map, the share of ``queries`` rows whose nearest other row on the map has the
    same centre; (2) with both maps (the same UMAP fit on the same seeded sample, so the
    sample rows sit at the same place), how far each other row lands from where today's
    ``UMAP.transform`` puts it, as a share of the map's width (median, p90, p99)."""
    from sklearn.neighbors import NearestNeighbors

    truth = np.load(work / "labels.npy")
    rng = np.random.default_rng(0)
    out: dict = {}
    maps = {name: np.load(path) for name, path in (("new", new), ("old", old)) if path.is_file()}
    for name, coords in maps.items():
        asked = rng.choice(len(coords), min(queries, len(coords)), replace=False)
        first = NearestNeighbors(n_neighbors=2).fit(coords).kneighbors(coords[asked], return_distance=False)[:, 1]
        out[f"{name}_same_centre_nearest"] = round(float((truth[first] == truth[asked]).mean()), 4)
    if len(maps) == 2:
        gap = np.linalg.norm(maps["new"] - maps["old"], axis=1) / float(np.ptp(maps["old"], axis=0).max())
        moved = gap[gap > 0]  # the sample rows do not move
        if len(moved):
            out["placed_vs_transform_share_of_width"] = {
                "rows": len(moved), "median": round(float(np.median(moved)), 4),
                "p90": round(float(np.quantile(moved, 0.9)), 4), "p99": round(float(np.quantile(moved, 0.99)), 4)}
    return out


def kmeans_sweep(work: Path, sizes: tuple[int, ...] = (20_000, 50_000, 100_000, 200_000)) -> list[dict]:
    """Inertia over every row of MiniBatchKMeans fitted on all rows and on seeded samples."""
    sys.path.insert(0, str(REPO))
    from core._shared import unit_rows
    from core.clusters import assign_rows, fit_kmeans, sample_positions

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    n = len(vectors)
    out = []
    for k in (10, 100):
        fits = {}
        for size in (*[s for s in sizes if s < n], n):
            rows = sample_positions(n, size, 0) if size < n else slice(None)
            x = unit_rows(vectors[rows])
            t = time.perf_counter()
            fit = fit_kmeans(x, k, 0)
            fits[size] = time.perf_counter() - t
            del x
            _, dist = assign_rows(vectors, fit.centroids)
            out.append({"k": k, "fitted_rows": size, "fit_s": round(fits[size], 1),
                        "inertia": float((dist.astype(np.float64) ** 2).sum())})
        full = out[-1]["inertia"]
        for row in out[-len(fits):]:
            row["inertia_vs_all_rows"] = round(row["inertia"] / full, 4)
            print(f"KMeans k={k:3d} fitted on {row['fitted_rows']:>9,} rows: {row['fit_s']:6.1f} s, "
                  f"inertia over every row {row['inertia_vs_all_rows']:.4f}x the all-rows fit", flush=True)
    return out


def fmt(result: dict | None, key: str, digits: int = 1) -> str:
    if not result:
        return "skipped"
    if "error" in result:
        return "failed"
    return f"{result[key]:.{digits}f}"


def memory(result: dict | None) -> str:
    if not result or "error" in result:
        return fmt(result, "wall_s")
    return f"{result['peak_anon_gb']:.2f} / {result['peak_hwm_gb']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline", default="4326863", help="git revision of today's path")
    parser.add_argument("--old-max-rows", type=int, default=2_000_000)
    parser.add_argument("--keep-numba-cache", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep the data and caches here (default: a temp dir)")
    parser.add_argument("--kmeans-sweep", action="store_true", help="also measure KMeans sample sizes")
    parser.add_argument("--steps", default="select,summaries,map_cold,map_warm",
                        help="comma-separated steps to run (default: all four; '' for none)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.tree, args.work, args.child, args.cache)
        return

    report: dict = {"rows": args.rows, "dims": DIMS, "cpus": os.cpu_count(), "load_before": os.getloadavg(),
                    "baseline": args.baseline}
    tmp = tempfile.TemporaryDirectory(prefix="bench-clusters-scale-")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    old_tree = Path(tmp.name) / "baseline-tree"
    run_old = args.rows <= args.old_max_rows and bool(args.steps)
    try:
        t = time.perf_counter()
        if not (work / "vectors.npy").is_file() or np.load(work / "vectors.npy", mmap_mode="r").shape[0] != args.rows:
            write_vectors(work, args.rows)
        report["generate_s"] = round(time.perf_counter() - t, 1)
        if run_old:
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old_tree), args.baseline],
                           check=True, capture_output=True)
        env = dict(os.environ, PYTHONPATH="")
        steps: dict[str, dict[str, dict | None]] = {}
        for step in ("select", "summaries", "map_cold", "map_warm"):
            steps[step] = {"new": None, "old": None}
            if step not in args.steps.split(","):
                continue
            for side, tree in (("new", REPO), ("old", old_tree)):
                if side == "old" and not run_old:
                    steps[step][side] = None
                    continue
                cache = work / f"projections-{side}"
                if step == "map_cold":
                    subprocess.run(["rm", "-rf", str(cache)], check=True)
                step_env = dict(env)
                if not args.keep_numba_cache:
                    step_env["NUMBA_CACHE_DIR"] = str(work / f"numba-{side}-{step}")
                result = run_child(tree, work, step, cache, step_env)
                steps[step][side] = result
                print(f"{step:10s} {side}: {json.dumps(result)}", flush=True)
        report["steps"] = steps
        report["map_quality"] = map_quality(work, work / "coords-projections-new.npy",
                                            work / "coords-projections-old.npy")
        if args.kmeans_sweep:
            report["kmeans_sweep"] = kmeans_sweep(work)
    finally:
        if old_tree.exists():
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_tree)],
                           capture_output=True, check=False)
        if args.workdir is None:
            tmp.cleanup()
    report["load_after"] = os.getloadavg()

    names = {"select": "smart select by cluster, n=1,000, k=10", "summaries": "cluster summaries, k=10, labels",
             "map_cold": "cluster map (UMAP) cold", "map_warm": "cluster map (UMAP) warm, inside project"}
    print(f"\n{args.rows:,} rows x {DIMS}; load average {report['load_before'][0]:.1f} before, "
          f"{report['load_after'][0]:.1f} after; baseline {args.baseline}")
    print("| step | new wall s | new CPU s | new peak anon / hwm GB | old wall s | old CPU s "
          "| old peak anon / hwm GB | old / new wall | old / new CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for step, label in names.items():
        new, old = steps[step]["new"], steps[step]["old"]
        both = new and old and "error" not in new and "error" not in old
        ratio = f"{old['wall_s'] / max(new['wall_s'], 1e-3):.1f}x" if both else ""
        cpu_ratio = f"{old['cpu_s'] / max(new['cpu_s'], 0.1):.1f}x" if both else ""
        digits = 2 if step == "map_warm" else 1
        print(f"| {label} | {fmt(new, 'wall_s', digits)} | {fmt(new, 'cpu_s')} | {memory(new)} "
              f"| {fmt(old, 'wall_s', digits)} | {fmt(old, 'cpu_s')} | {memory(old)} | {ratio} | {cpu_ratio} |")
    warm = steps["map_warm"]["new"]
    if warm and "error" not in warm:
        print(f"map warm, whole fresh process (imports, ids, memory map): {warm['process_s']:.2f} s")
    print(f"map quality: {json.dumps(report['map_quality'])}")
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()

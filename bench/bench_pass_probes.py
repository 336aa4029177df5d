"""How many of the exact 10 nearest neighbours the stored pass's lists hold, by probes: reads
the partition a neighbours pass keeps while it runs (``quality/neighbours.partial/
partition.npz``; copy it aside before the pass finishes), scans every row once for the exact
top 10 of 200 seeded sample rows, and prints recall and candidates per row for each probe
count. This is what chose the 32-probe cap in ``core.quality.lists``.

    python bench/bench_pass_probes.py --folder EMBEDDING_FOLDER --partition partition.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.quality.lists import Partition, exact_top  # noqa: E402

PROBES = (8, 16, 24, 32, 48, 64, 96, 128)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, required=True, help="the embedding folder (vectors.npy)")
    ap.add_argument("--partition", type=Path, required=True, help="a pass's partition.npz")
    args = ap.parse_args()
    with np.load(args.partition) as z:
        part = Partition(z["centroids"], z["assign"])
    vectors = np.load(args.folder / "vectors.npy", mmap_mode="r")
    n = len(part.assign)
    rows = np.sort(np.random.default_rng(0).choice(n, 200, replace=False))
    t = time.perf_counter()
    truth = exact_top(lambda r: np.asarray(vectors[r], dtype=np.float32), n, rows, 10)
    print(f"{n:,} rows, {part.nlist:,} lists; exact top 10 of 200 rows in {time.perf_counter() - t:.0f} s")
    _, near = faiss.knn(part.centroids, part.centroids, max(PROBES), metric=faiss.METRIC_INNER_PRODUCT)
    sizes = np.bincount(part.assign, minlength=part.nlist)
    for probes in PROBES:
        probed = near[part.assign[rows], :probes]
        found = np.mean([np.isin(part.assign[t], p).mean() for t, p in zip(truth, probed)])
        cand = sizes[near[:, :probes]].sum(1)[part.assign].mean()
        print(f"probes {probes:4d}: recall@10 {found:.3f}, candidates per row {cand:,.0f}")


if __name__ == "__main__":
    main()

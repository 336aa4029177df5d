"""Single-query latency of a saved ivf index with ``vectors.npy`` dropped from the page cache
before each run (``posix_fadvise(DONTNEED)``; Linux), with and without the read-ahead of
re-rank rows (``core.index.mapped.PREFETCH_MIN_BYTES``): 300 queries cold, then the same 300
warm, two rounds. bench_scale.py's 10M run leaves such an index and its queries.

    python bench/bench_rerank_cold.py --folder DIR/home-new/datasets/bench/embeddings/emb \\
        --queries DIR/queries.npy
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.index import VectorIndex, mapped  # noqa: E402

QUERIES = 300


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(index: VectorIndex, q: np.ndarray) -> list[float]:
    out = []
    for v in q:
        t = time.perf_counter()
        index.search(v, 10)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, required=True, help="an embedding folder with an ivf index")
    ap.add_argument("--queries", type=Path, required=True, help=".npy of (q, d) query vectors")
    args = ap.parse_args()
    q = np.load(args.queries)[:QUERIES]
    for label, threshold in (("as before", 1 << 62), ("read ahead", mapped.PREFETCH_MIN_BYTES)) * 2:
        mapped.PREFETCH_MIN_BYTES = threshold
        index = VectorIndex.load(args.folder)
        drop_cache(args.folder / "vectors.npy")
        cold, warm = timed(index, q), timed(index, q)
        print(f"{label:10s} cold median {statistics.median(cold):6.2f} ms p95 {np.percentile(cold, 95):7.2f}"
              f" | warm median {statistics.median(warm):5.2f} p95 {np.percentile(warm, 95):5.2f}", flush=True)


if __name__ == "__main__":
    main()

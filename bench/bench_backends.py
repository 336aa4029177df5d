"""Vector backends side by side on the same vectors: FAISS (the ivf and hnsw kinds) against
LanceDB (IVF_PQ, re-scored exactly) — build time and memory, disk size, single-query latency
and recall@10 against exact, filtered queries (1 % and 30 % of rows), bulk kNN, and adding
10,000 rows after the build. The steps and data are :mod:`bench_ivf`'s (run_kind).

    python bench/bench_backends.py --rows 1000000 [--kinds ivf,hnsw,lancedb] [--work DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ivf import main  # noqa: E402

if __name__ == "__main__":
    main(default_kinds="ivf,hnsw,lancedb", description=__doc__.splitlines()[0])

"""Embedding throughput of the local engine against Ray on this machine, same texts.

    python bench/bench_engines.py [--texts 5000] [--chunk-rows 256]

Ingests ``--texts`` synthetic texts into a temporary workspace, embeds them with
``text:minilm`` on the local engine and on a local Ray (``ray.init(num_cpus=os.cpu_count())``,
started before timing; its start-up is printed apart), and prints rows/s and the ratio
Ray time / local time (the target is <= 1.3). Vectors are checked equal to 1e-5.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.embeddings import compute_embeddings, load_embedding
from core.ingest import ingest_table
from core.workspace import open_workspace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--chunk-rows", type=int, default=256)
    args = parser.parse_args()
    import ray

    words = ["cat", "dog", "stock", "price", "market", "sofa", "kitten", "rain", "river", "mountain", "bread", "coffee"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "texts.csv"
        pd.DataFrame({"id": [f"t{i}" for i in range(args.texts)],
                      "text": [" ".join(rng.choice(words, rng.integers(5, 30))) for _ in range(args.texts)]}
                     ).to_csv(table, index=False)
        ws = open_workspace(Path(tmp) / "home")
        ingest_table(ws, table, "texts")
        ds = ws.dataset("texts")
        compute_embeddings(ds, "text:minilm", "warm", chunk_rows=args.chunk_rows)  # model load, caches
        started = time.perf_counter()
        compute_embeddings(ds, "text:minilm", "local", chunk_rows=args.chunk_rows)
        local_s = time.perf_counter() - started
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            report = compute_embeddings(ds, "text:minilm", "viaray", chunk_rows=args.chunk_rows, engine="ray")
            ray_s = time.perf_counter() - started
        finally:
            ray.shutdown()
        diff = float(np.abs(load_embedding(ds, "viaray").vectors - load_embedding(ds, "local").vectors).max())
    n = args.texts
    print(f"texts {n}, cpus {os.cpu_count()}, ray workers {report.workers}")
    print(f"local: {local_s:.2f} s ({n / local_s:.0f} rows/s)")
    print(f"ray:   {ray_s:.2f} s ({n / ray_s:.0f} rows/s), ray.init {init_s:.2f} s (not counted)")
    print(f"ratio ray/local: {ray_s / local_s:.2f}  (target <= 1.3); max |diff| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

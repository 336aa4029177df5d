"""Embedding throughput of the local engine against Ray on this machine, same texts and images.

    python bench/bench_engines.py [--texts 5000] [--images 1000] [--chunk-rows 256]

Ingests ``--texts`` synthetic texts and ``--images`` synthetic 160x160 PNG drawings into a
temporary workspace, embeds them (``text:minilm``, ``image:efficientnet-lite0``) on the
local engine and on a local Ray (``ray.init(num_cpus=os.cpu_count())``, started before
timing; its start-up is printed apart), and prints rows/s and the ratio Ray time / local
time per modality (the target is <= 1.3). Vectors are checked equal to 1e-5.
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
from core.ingest import ingest_folder, ingest_table
from core.workspace import open_workspace


def write_images(folder: Path, n: int, rng: np.random.Generator) -> None:
    """``n`` PNG drawings (random ellipses and rectangles on a coloured ground) in ``folder``."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True)
    for i in range(n):
        img = Image.new("RGB", (160, 160), tuple(int(c) for c in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = rng.integers(0, 120, 2)
            box = [int(x0), int(y0), int(x0 + rng.integers(10, 40)), int(y0 + rng.integers(10, 40))]
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        img.save(folder / f"img_{i:05d}.png")


def timed(ds, spec: str, chunk_rows: int, engine: str) -> tuple[float, object]:
    started = time.perf_counter()
    report = compute_embeddings(ds, spec, engine, chunk_rows=chunk_rows, engine=engine)
    return time.perf_counter() - started, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--chunk-rows", type=int, default=256)
    args = parser.parse_args()
    import ray

    words = ["cat", "dog", "stock", "price", "market", "sofa", "kitten", "rain", "river", "mountain", "bread", "coffee"]
    rng = np.random.default_rng(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "texts.csv"
        pd.DataFrame({"id": [f"t{i}" for i in range(args.texts)],
                      "text": [" ".join(rng.choice(words, rng.integers(5, 30))) for _ in range(args.texts)]}
                     ).to_csv(table, index=False)
        write_images(Path(tmp) / "drawings", args.images, rng)
        ws = open_workspace(Path(tmp) / "home")
        ingest_table(ws, table, "texts")
        ingest_folder(ws, Path(tmp) / "drawings", "drawings")
        jobs = [(ws.dataset("texts"), "text:minilm", args.texts), (ws.dataset("drawings"), "image:efficientnet-lite0",
                                                                   args.images)]
        for ds, spec, _ in jobs:  # model load and caches, not timed
            compute_embeddings(ds, spec, "warm", chunk_rows=args.chunk_rows)
        local = [timed(ds, spec, args.chunk_rows, "local") for ds, spec, _ in jobs]
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - started
        try:
            on_ray = [timed(ds, spec, args.chunk_rows, "ray") for ds, spec, _ in jobs]
        finally:
            ray.shutdown()
        for (ds, spec, n), (local_s, _), (ray_s, report) in zip(jobs, local, on_ray):
            diff = float(np.abs(load_embedding(ds, "ray").vectors - load_embedding(ds, "local").vectors).max())
            results.append((spec, n, local_s, ray_s, diff, report.workers))
    print(f"cpus {os.cpu_count()}, loadavg {os.getloadavg()[0]:.1f}, ray.init {init_s:.2f} s (not counted)")
    print("| encoder | rows | local s (rows/s) | ray s (rows/s) | ray / local | max abs diff | ray actors |")
    print("|---|---|---|---|---|---|---|")
    for spec, n, local_s, ray_s, diff, workers in results:
        actors = (workers or {}).get("actors")
        print(f"| {spec} | {n:,} | {local_s:.1f} ({n / local_s:.0f}) | {ray_s:.1f} ({n / ray_s:.0f}) | "
              f"{ray_s / local_s:.2f} | {diff:.1e} | {actors} |")
    total_local, total_ray = sum(r[2] for r in results), sum(r[3] for r in results)
    print(f"overall ray/local {total_ray / total_local:.2f} (target <= 1.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

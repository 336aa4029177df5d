"""Built-in demo datasets, built offline from data that ships inside installed packages.

- ``digits``: scikit-learn's 1,797 labelled 8×8 digit images, written as PNGs in a
  folder per digit, embedded with ``image:efficientnet-lite0``.
- ``api-docs``: the first paragraph of the docstring of each public function and
  class of numpy, pandas, scikit-learn, scipy and torch; label = library; embedded
  with ``text:minilm``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import atomic
from core._shared import ProgressFn
from core.errors import InputError

log = logging.getLogger(__name__)

DEMOS = ("digits", "api-docs")
DIGIT_IMAGE_SIZE = 64


@dataclass(frozen=True)
class DemoReport:
    name: str
    rows: int
    embeddings: tuple[str, ...]


def write_digits_folder(folder: Path, *, size: int = DIGIT_IMAGE_SIZE, limit: int | None = None) -> int:
    """Write scikit-learn digits as ``folder/<digit>/digit-<i>.png``; returns the count.

    Images are dark strokes on white, upscaled to ``size``×``size`` (bilinear).
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.images) if limit is None else min(limit, len(digits.images))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        label = int(digits.target[i])
        pixels = (255 - digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        img = Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.BILINEAR)
        target = folder / str(label) / f"digit-{i:04d}.png"
        target.parent.mkdir(exist_ok=True)
        atomic.write_with(target, lambda tmp, img=img: img.save(tmp, format="PNG"))
    return n


def ingest_demo(ws, name: str, *, replace: bool = False, progress: ProgressFn | None = None):
    """Write the source files of demo ``name`` (one of :data:`DEMOS`) if missing and ingest
    them as dataset ``name`` (no embedding yet); returns the :class:`IngestReport`."""
    from core.ingest import ingest_folder, ingest_table

    if name not in DEMOS:
        raise InputError(f"unknown demo {name!r}; choose one of {', '.join(DEMOS)}")
    if name == "digits":
        media = ws.home / "demo-media" / "digits"
        if not media.exists() or not any(media.rglob("*.png")):
            write_digits_folder(media)
        return ingest_folder(ws, media, "digits", replace=replace, progress=progress)
    from core.demo.apidocs import write_api_docs_table

    table = ws.home / "demo-media" / "api-docs.parquet"
    if not table.exists():
        write_api_docs_table(table)
    return ingest_table(ws, table, "api-docs", format="parquet", id_col="qualname",
                        text_col="text", label_col="library", replace=replace, progress=progress)


def build_demo(ws, name: str, *, replace: bool = False, progress: ProgressFn | None = None) -> DemoReport:
    """Create demo dataset ``name`` (one of :data:`DEMOS`) in workspace ``ws`` and embed it
    (:func:`ingest_demo`, then ``compute_embeddings`` with the default encoder)."""
    from core.embeddings import compute_embeddings

    report = ingest_demo(ws, name, replace=replace)
    computed = compute_embeddings(ws.dataset(name), replace=True, progress=progress)
    return DemoReport(name, report.rows, tuple(e.name for e in computed.embeddings))

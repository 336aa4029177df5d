"""A small image dataset of scikit-image's sample photos under neutral file names, with
optional text rows, embedded as ``embed`` does by default (EfficientNet-Lite0 and its
class-name embedding; MiniLM for text rows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def add_photo_dataset(home: Path, name: str = "photos", *, texts: dict[str, str] | None = None,
                      embed: bool = True):
    """Ingest :data:`PHOTOS` as ``img_0000.png``… (ids = photo names, no caption) and the
    ``texts`` rows (id → text) into the workspace at ``home``, embedded with the defaults
    when ``embed``; returns the Dataset. Skips the test without scikit-image."""
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    from core.embeddings import compute_embeddings
    from core.ingest import ingest_table
    from core.workspace import open_workspace

    media = Path(home) / f"{name}-media"
    media.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, photo in enumerate(PHOTOS):
        Image.fromarray(getattr(data, photo)()).save(media / f"img_{i:04d}.png")
        rows.append({"id": photo, "image": f"img_{i:04d}.png", "text": None})
    rows += [{"id": rid, "image": None, "text": text} for rid, text in (texts or {}).items()]
    pd.DataFrame(rows, dtype=object).to_csv(media / "rows.csv", index=False)
    ws = open_workspace(home)
    ingest_table(ws, media / "rows.csv", name, image_root=media)
    if embed:
        compute_embeddings(ws.dataset(name))
    return ws.dataset(name)

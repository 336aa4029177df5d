"""A small dataset with planted label noise, an embedding and a model's predictions.

Rows fall in ``classes`` well-separated Gaussian clusters (the embedding); some labels are
flipped. The model's probabilities come from a second, independent noisy view of the true
class, so it is right on most flipped rows but makes mistakes of its own elsewhere; the
neighbours see the clusters. Used by the sources, CLI, page and browser tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ("bird", "cat", "dog", "fish")


@dataclass(frozen=True)
class Planted:
    ids: list[str]
    true: list[str]
    noisy: list[str]
    flipped: set[str]
    probs: np.ndarray  # (n, C) over CLASSES
    vectors: np.ndarray


def planted(n: int = 240, flip: float = 0.1, seed: int = 0, spread: float = 1.3,
            model_noise: float = 2.6) -> Planted:
    """``n`` rows over :data:`CLASSES`; ``flip`` of the labels moved to another class. The
    defaults make both sources miss some flips (neighbours find ~16 of 24, the model ~15)."""
    rng = np.random.default_rng(seed)
    c = len(CLASSES)
    true = rng.integers(0, c, n)
    centres = np.eye(c, 16) * 3.0
    vectors = (centres[true] + rng.normal(0, spread, (n, 16))).astype(np.float32)
    noisy = true.copy()
    chosen = rng.choice(n, int(round(flip * n)), replace=False)
    noisy[chosen] = (true[chosen] + rng.integers(1, c, len(chosen))) % c
    logits = np.eye(c)[true] * 2.2 + rng.normal(0, model_noise / 2, (n, c))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ids = [f"r{i:04d}" for i in range(n)]
    return Planted(ids, [CLASSES[t] for t in true], [CLASSES[t] for t in noisy],
                   {ids[i] for i in chosen}, probs.astype(np.float32), vectors)


def add_planted_dataset(ws, name: str = "pets", data: Planted | None = None, *, tmp: Path,
                        with_predictions: bool = True, model: str = "resnet") -> Planted:
    """Ingest ``data`` (default :func:`planted`) as dataset ``name`` with embedding ``e``
    and, if ``with_predictions``, the model's probabilities imported as ``model``."""
    from core.embeddings import write_embedding
    from core.ingest import ingest
    from core.predictions import PredictionColumns, import_predictions

    data = data or planted()
    csv = tmp / f"{name}.csv"
    pd.DataFrame({"id": data.ids, "text": [f"row {i} about a {t}" for i, t in enumerate(data.noisy)],
                  "label": data.noisy}).to_csv(csv, index=False)
    ingest(ws, csv, name)
    write_embedding(ws.dataset(name), "e", data.ids, data.vectors, {"encoder": None, "source": "imported"})
    if with_predictions:
        preds = tmp / f"{name}-{model}.csv"
        table = pd.DataFrame({"id": data.ids})
        for j, cls in enumerate(CLASSES):
            table[f"p_{cls}"] = np.round(data.probs[:, j], 4)
        table.to_csv(preds, index=False)
        import_predictions(ws, name, str(preds), model, columns=PredictionColumns(probs_col="p_*"))
    return data

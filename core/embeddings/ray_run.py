"""The Ray engine's side of :func:`core.embeddings.compute_embeddings`: the rows of each
shard sent to :func:`core.engines.encode_shards_ray` (image paths resolved here, on the driver)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from core.errors import MediaError
from core.workspace import Dataset


class RayRun:
    """The Ray engine's settings for one ``compute_embeddings`` call; ``plan`` is the actor
    pool of its last job."""

    def __init__(self, device: str, batch_size: int | None, address: str | None, loader) -> None:
        self.device, self.batch_size, self.address, self.loader = device, batch_size, address, loader
        self.plan = None

    def shards(self, ds: Dataset, encoder, todo: pd.DataFrame, starts: list[int], work) -> Iterator:
        """Encode the ``work`` rows ``[(shard no, positions)]`` of ``todo`` on Ray."""
        from core.engines import encode_shards_ray

        parts = []
        for no, pos in work:
            chunk = todo.iloc[starts[no] + pos]
            paths, ok, reason = [], [], []
            for modality, image in zip(chunk["modality"], chunk["image"] if "image" in chunk else [None] * len(chunk)):
                path, why = "", ""
                if modality == "image":
                    try:
                        path = str(ds.resolve_media(image))
                    except MediaError as err:
                        why = str(err)
                paths.append(path)
                ok.append(not why)
                reason.append(why)
            text = chunk["text"] if "text" in chunk else pd.Series([""] * len(chunk))
            parts.append(pd.DataFrame({
                "chunk": no, "pos": pos.astype(np.int64), "id": chunk["id"].astype(str).to_numpy(),
                "modality": chunk["modality"].astype(str).to_numpy(),
                "text": text.fillna("").astype(str).to_numpy(), "image": paths, "ok": ok, "reason": reason,
            }))
        rows = pd.concat(parts, ignore_index=True)
        from core.encoders import PairedImageEncoder, load_paired_encoder

        loader = load_paired_encoder if isinstance(encoder, PairedImageEncoder) else self.loader
        return encode_shards_ray(rows, {no: len(pos) for no, pos in work}, spec=encoder.spec,
                                 loader=loader, device=self.device, batch_size=self.batch_size,
                                 address=self.address, on_plan=lambda plan: setattr(self, "plan", plan))

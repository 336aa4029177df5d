"""The Ray engine for ``embed``: Ray Data reads the rows, CPU tasks decode the images, an
actor pool encodes them, and finished shards stream back to the caller.

Pipeline (one Ray Data job)::

    rows (chunk, pos, modality, text, image path)            ray.data.from_pandas
      → decode images on CPU tasks (RGB bytes + size)        map_batches(decode_images)
      → encode in an actor pool (one model load per actor)   map_batches(EncodeActor, concurrency=n)
      → (chunk, pos, vec, ok, reason) batches to the driver, gathered per shard

:func:`encode_shards_ray` yields one shard (a block of rows named by its number) as soon
as all its rows are back; the caller writes it (resumable) and reports progress.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from core.engines.cluster import ray_session
from core.engines.plan import ActorPlan, plan_actors

log = logging.getLogger(__name__)

BLOCK_ROWS = 8192  # about this many rows (whole shards) per Ray Data block, at least 4 blocks per actor
Shard = tuple[int, np.ndarray, np.ndarray, np.ndarray]  # (shard no, positions, vecs (m, d), ok (m,))


def decode_images(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data task: read each image row's file as RGB (``pixels`` bytes, ``h``, ``w``);
    an unreadable file gets ``ok`` False and its reason (text rows pass through)."""
    from core.errors import MediaError
    from core.media import open_image

    n = len(batch["pos"])
    pixels, h, w = [b""] * n, np.zeros(n, np.int32), np.zeros(n, np.int32)
    ok, reason = batch["ok"].copy(), batch["reason"].astype(object).copy()
    for i in range(n):
        if batch["modality"][i] != "image" or not ok[i]:
            continue
        try:
            img = open_image(batch["image"][i])
        except MediaError as err:
            ok[i], reason[i] = False, str(err)
            continue
        pixels[i], (w[i], h[i]) = img.tobytes(), img.size
    return {**batch, "pixels": np.array(pixels, dtype=object), "h": h, "w": w, "ok": ok, "reason": reason}


class EncodeActor:
    """Ray Data callable class: loads the encoder once (``loader(spec, device)``) and
    encodes each batch into ``vec`` ((n, dims) float32; zero rows where ``ok`` is False)."""

    def __init__(self, loader: Callable, spec: str, device: str, batch_size: int) -> None:
        self.encoder = loader(spec, device)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from PIL import Image

        n = len(batch["pos"])
        vec = np.zeros((n, self.encoder.dims), dtype=np.float32)
        ok = batch["ok"].astype(bool)
        is_image = batch["modality"] == "image"
        texts = np.flatnonzero(~is_image & ok)
        if len(texts):
            vec[texts] = self.encoder.encode_texts([str(batch["text"][i]) for i in texts],
                                                   batch_size=self.batch_size)
        images = np.flatnonzero(is_image & ok)
        if len(images):
            pics = [Image.frombytes("RGB", (int(batch["w"][i]), int(batch["h"][i])), batch["pixels"][i])
                    for i in images]
            vec[images] = self.encoder.encode_images(pics, batch_size=self.batch_size)
        return {"chunk": batch["chunk"], "pos": batch["pos"], "vec": vec, "ok": ok,
                "reason": batch["reason"].astype(str)}


def encode_shards_ray(rows: pd.DataFrame, expected: dict[int, int], *, spec: str, loader: Callable,
                      device: str = "auto", batch_size: int | None = None, address: str | None = None,
                      on_plan: Callable[[ActorPlan], None] | None = None) -> Iterator[Shard]:
    """Encode ``rows`` on Ray; yield each shard ``(no, positions, vecs, ok)`` once complete.

    ``rows``: columns ``chunk``, ``pos`` (int), ``modality``, ``text``, ``image`` (an
    absolute path or ""), ``ok`` (False: already known unreadable), ``reason``.
    ``expected[no]``: how many of ``rows`` belong to shard ``no``. The actor pool is sized
    by :func:`core.engines.plan_actors` from the cluster's resources (``on_plan`` is told);
    each actor calls ``loader(spec, device)`` once. Raises EngineError (Ray missing,
    unreachable ``address``) before any work, and whatever an actor raises.
    """
    with ray_session(address) as ray:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.enable_operator_progress_bars = False
        images = bool((rows["modality"] == "image").any())
        plan = plan_actors(ray.cluster_resources(), device, batch_size=batch_size, images=images,
                           max_actors=-(-len(rows) // (batch_size or 32)))
        if on_plan:
            on_plan(plan)
        log.info("ray embed: %d rows in %d shards, %s", len(rows), len(expected), plan.to_json())
        data = ray.data.from_pandas(_blocks(rows.reset_index(drop=True),
                                                   max(4 * plan.actors, -(-len(rows) // BLOCK_ROWS))))
        if images:  # text-only jobs go straight to the actors. Without a CPU kept for decoding
            # (a small node) the decode tasks ask for none: the actors hold every CPU
            data = data.map_batches(decode_images, batch_format="numpy", num_cpus=plan.decode_cpus)
        data = data.map_batches(EncodeActor, fn_constructor_args=(loader, spec, plan.device, plan.batch_size),
                                batch_size=plan.batch_size, batch_format="numpy", concurrency=plan.actors,
                                num_gpus=plan.num_gpus or None, num_cpus=plan.num_cpus)
        yield from _gather(data.iter_batches(batch_size=None, batch_format="numpy"), expected, rows)


def _blocks(rows: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """``rows`` cut into at most ``n`` blocks of whole shards (contiguous, in shard order)."""
    shards = rows["chunk"].to_numpy()
    cuts = np.flatnonzero(np.diff(shards)) + 1  # where a new shard starts
    edges = [0, *(cuts[np.linspace(0, len(cuts), n, endpoint=False).astype(int)[1:]] if len(cuts) >= n
                  else cuts), len(rows)]
    return [rows.iloc[a:b] for a, b in itertools.pairwise(edges) if b > a]


def _gather(batches, expected: dict[int, int], rows: pd.DataFrame) -> Iterator[Shard]:
    """Group result batches by shard; yield a shard when all ``expected`` rows are in."""
    parts: dict[int, list] = {}
    left = dict(expected)
    ids = dict(zip(zip(rows["chunk"], rows["pos"]), rows["id"])) if "id" in rows.columns else {}
    for batch in batches:
        for no in np.unique(batch["chunk"]):
            sel = batch["chunk"] == no
            no = int(no)
            parts.setdefault(no, []).append((batch["pos"][sel], batch["vec"][sel], batch["ok"][sel]))
            for p, why in zip(batch["pos"][sel][~batch["ok"][sel]], batch["reason"][sel][~batch["ok"][sel]]):
                log.warning("skipping row %s: %s", ids.get((no, int(p)), p), why)
            left[no] -= int(sel.sum())
            if left[no] == 0:
                pos, vec, ok = (np.concatenate(x) for x in zip(*parts.pop(no)))
                yield no, pos.astype(np.int64), vec, ok.astype(bool)

"""Engines for bulk work: ``local`` (in this process, the default, no Ray needed) or ``ray``
(Ray Data jobs on a local Ray or a cluster: actor pools, GPUs when present, shards).

- :mod:`core.engines.plan`: :data:`ENGINES`, :func:`check_engine`, :func:`plan_actors`
  (actor pool size, GPUs per actor, batch size per device; pure).
- :mod:`core.engines.cluster`: :func:`import_ray`, :func:`check_address`, :func:`ray_session`.
- :mod:`core.engines.ray_embed`: :func:`encode_shards_ray` (the ``embed`` job).
- :mod:`core.engines.ray_chunks`: :func:`compute_chunks_ray` (a chunked pass on an actor
  pool, e.g. the stored neighbours pass of ``catalog quality --engine ray``; the actors
  open their inputs from paths, so Ray's workers must share the workspace's filesystem).

Ray is imported only when the ``ray`` engine runs (``pip install -r requirements-scale.txt``).
"""

from __future__ import annotations

from core.engines.cluster import check_address, import_ray, ray_session
from core.engines.plan import ENGINES, RAY_INSTALL, ActorPlan, check_engine, plan_actors
from core.engines.ray_chunks import ChunkActor, compute_chunks_ray, thread_counts
from core.engines.ray_embed import Shard, encode_shards_ray

__all__ = [
    "ENGINES",
    "RAY_INSTALL",
    "ActorPlan",
    "ChunkActor",
    "Shard",
    "check_address",
    "check_engine",
    "compute_chunks_ray",
    "encode_shards_ray",
    "import_ray",
    "plan_actors",
    "ray_session",
    "thread_counts",
]

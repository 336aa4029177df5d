"""The Ray engine for chunked bulk passes (e.g. the stored neighbours pass of
:mod:`core.quality`): an actor pool in which every actor builds its compute function once
and then computes chunk after chunk; each result comes back to the driver, which writes it
(so a job killed at any point resumes from the chunks the driver wrote).

::

    driver: chunks not done yet (no, part)                ActorPool.map_unordered
      → actor i: compute = opener(spec) once, on start    ChunkActor (the driver's threads)
      → actor i: (no, compute(part)) per chunk
      → driver: on_result(no, result) as each arrives      (writes the chunk file)

Workers share the filesystem: ``spec`` names files by path (the dataset's directory, its
embedding and index), and each actor opens them itself, so on a cluster the workspace must
be mounted at the same path on every node (NFS, a shared volume), and every node needs the
same Python environment (catalog installed, ``requirements-scale.txt``). ``spec`` is put in
Ray's object store once and shared by the actors (its numpy arrays read without a copy).

Each actor reserves as many CPUs as this process computes with threads, and runs torch and
faiss with the same thread counts: MKL's sgemm rounds some matrix shapes differently with
another thread count (measured: 5 to 12 of 300 random shapes, 1 to 8 threads), and a pass
must store the same bits whichever engine ran it. A node of N CPUs then holds N // threads
actors (one on the machine the driver runs on): Ray spreads the work over a cluster's nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.engines.cluster import ray_session
from core.engines.plan import plan_actors
from core.errors import CatalogError, EngineError

log = logging.getLogger(__name__)

Opener = Callable[[Any], Callable[[np.ndarray], Any]]  # spec -> compute(part) -> result


class ChunkActor:
    """A Ray actor: set the compute libraries' ``threads`` (:func:`thread_counts`), call
    ``opener(spec)`` once (opening the files the chunks are computed from), then :meth:`run`
    per chunk. A CatalogError of the opener is raised by each ``run`` (a failed ``__init__``
    would reach the driver as an untyped ActorDiedError)."""

    def __init__(self, opener: Opener, spec: Any, threads: dict[str, int] | None = None) -> None:
        use_threads(threads or {})
        self.compute, self.error = None, None
        try:
            self.compute = opener(spec)
        except CatalogError as err:
            self.error = err

    def run(self, no: int, part: np.ndarray) -> tuple[int, Any]:
        if self.error is not None:
            raise self.error
        return no, self.compute(part)


def thread_counts() -> dict[str, int]:
    """The threads this process's BLAS-backed libraries compute with (``{"torch": n, "faiss":
    m}``, those installed). An actor copying them rounds like this process: MKL's sgemm
    (torch) gives some shapes other last bits with another thread count."""
    counts = {}
    try:
        import faiss

        counts["faiss"] = int(faiss.omp_get_max_threads())
    except ImportError:
        log.debug("faiss not installed: its threads left as they are")
    try:
        import torch

        counts["torch"] = int(torch.get_num_threads())
    except ImportError:
        log.debug("torch not installed: its threads left as they are")
    return counts


def use_threads(threads: dict[str, int]) -> None:
    """Set the ``threads`` of :func:`thread_counts` in this process."""
    if threads.get("faiss"):
        import faiss

        faiss.omp_set_num_threads(threads["faiss"])
    if threads.get("torch"):
        import torch

        torch.set_num_threads(threads["torch"])


def compute_chunks_ray(chunks: Sequence[tuple[int, np.ndarray]], opener: Opener, spec: Any,
                       on_result: Callable[[int, Any], None], *, address: str | None = None,
                       threads: int | None = None, on_plan: Callable[[int, int], None] | None = None) -> int:
    """Compute ``chunks`` (``[(chunk no, part)]``) on a Ray actor pool; call
    ``on_result(no, opener(spec)(part))`` on the driver as each result arrives (in the order
    they finish). Returns the number of actors used.

    ``threads``: CPUs (and torch/faiss threads) per actor; None (default): this process's
    :func:`thread_counts`, so results equal this process's bit for bit on like nodes (fewer
    if the largest node has fewer CPUs: then the last bits of some scores may differ). The
    pool has as many actors as the cluster at ``address`` (None: a local Ray) has CPUs
    for, at least one, at most one per chunk; ``on_plan(actors, threads)`` is told before
    work starts. When ``on_result`` raises (e.g. a progress callback stopping the job) or
    an actor fails, the pool is killed and the error raised; a
    :class:`~core.errors.CatalogError` raised in an actor is raised as itself (one line
    for the CLI). Raises EngineError (Ray missing, unreachable ``address``, a cluster
    without CPUs) before any work.
    """
    if not chunks:
        return 0
    counts = thread_counts() if threads is None else {"faiss": int(threads), "torch": int(threads)}
    with ray_session(address) as ray:
        from ray.util import ActorPool

        cpus, largest = _cpus(ray)
        per_actor = max(1, min(max(counts.values(), default=1), largest))
        if per_actor < max(counts.values(), default=1):
            log.warning("ray chunks: actors get %d CPUs (the largest node's), not the %s threads asked; "
                        "the last bits of some scores may differ from a local run", per_actor, counts)
            counts = {lib: min(n, per_actor) for lib, n in counts.items()}
        actors = plan_actors({"CPU": cpus // per_actor or 1}, "cpu", max_actors=len(chunks)).actors
        if on_plan is not None:
            on_plan(actors, per_actor)
        log.info("ray chunks: %d chunks on %d actors of %d CPUs", len(chunks), actors, per_actor)
        remote = ray.remote(num_cpus=per_actor)(ChunkActor)
        shared = ray.put(spec)
        pool = [remote.remote(opener, shared, counts) for _ in range(actors)]
        try:
            results = ActorPool(pool).map_unordered(lambda actor, job: actor.run.remote(*job), list(chunks))
            for no, result in _unwrapped(ray, results):
                on_result(int(no), result)
        finally:
            for actor in pool:
                ray.kill(actor)
    return actors


def _cpus(ray) -> tuple[int, int]:
    """(CPUs of the cluster, CPUs of its largest alive node); EngineError if it has none."""
    total = int(ray.cluster_resources().get("CPU", 0) or 0)
    nodes = [int(n.get("Resources", {}).get("CPU", 0) or 0) for n in ray.nodes() if n.get("Alive")]
    if total < 1:
        raise EngineError(f"the Ray cluster reports {total} CPUs; it needs at least 1 to run the job")
    return total, max(nodes, default=total) or total


def _unwrapped(ray, results):
    """``results``, with a CatalogError raised in an actor raised as itself."""
    try:
        yield from results
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, CatalogError):
            raise err.cause from None
        raise

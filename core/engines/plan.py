"""Which engine runs bulk work, and how a Ray actor pool is sized (pure functions, no Ray).

:func:`plan_actors` turns what a cluster reports (``ray.cluster_resources()``) and the
device asked for into an :class:`ActorPlan`: one GPU per actor when the cluster has GPUs
(and ``device`` is ``auto`` or ``cuda``), else CPU actors; the batch size is the planned
device's default (:data:`core.encoders.DEFAULT_BATCH_SIZES`) unless one is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from core._shared import check_positive_int
from core.encoders.devices import DEFAULT_BATCH_SIZES, DEVICES
from core.errors import EngineError

ENGINES = ("local", "ray")
RAY_INSTALL = "pip install -r requirements-scale.txt (or pip install 'ray[data]==2.60.0')"


def check_engine(engine: str) -> str:
    """``engine`` lower-cased if it is one of :data:`ENGINES`, else EngineError naming it."""
    name = engine.strip().lower() if isinstance(engine, str) else engine
    if name not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return name


@dataclass(frozen=True)
class ActorPlan:
    """An encoder actor pool: ``actors`` actors, each with ``num_gpus`` GPUs (0 or 1) and
    ``num_cpus`` CPUs, loading the encoder on ``device`` (``cpu``/``cuda``/``mps``) and
    encoding ``batch_size`` rows per call; ``decode_cpus`` CPUs are left for the image
    decoding tasks."""

    actors: int
    num_gpus: int
    num_cpus: float
    device: str
    batch_size: int
    decode_cpus: float

    def to_json(self) -> dict:
        return {"actors": self.actors, "num_gpus": self.num_gpus, "num_cpus": self.num_cpus,
                "device": self.device, "batch_size": self.batch_size}


DECODE_RESERVE_MIN_CPUS = 4


def plan_actors(resources: dict[str, float], device: str = "auto", *, batch_size: int | None = None,
                images: bool = False, max_actors: int | None = None) -> ActorPlan:
    """Size the encoder actor pool for a cluster reporting ``resources`` (``{"CPU": 8.0,
    "GPU": 2.0, ...}``, as ``ray.cluster_resources()``).

    GPUs present and ``device`` ``auto``/``cuda`` → one actor per GPU (``num_gpus=1``,
    device ``cuda``). Otherwise CPU actors (``num_gpus=0``, device ``cpu``, or ``mps`` if
    asked): one per CPU, less one CPU kept for decoding ``images`` on clusters of at least
    ``DECODE_RESERVE_MIN_CPUS`` CPUs (on fewer, Ray Data fuses decoding into the actors and a
    kept CPU would sit idle: 2 CPUs, 1,000 images, one actor: 1.69x the local engine); always
    at least one. ``max_actors`` caps the pool (e.g. at the number of batches). Raises EngineError
    (``cuda`` asked of a cluster without GPUs, a cluster without CPUs), InputError
    (unknown device, ``batch_size`` < 1).
    """
    from core.errors import InputError

    name = device.strip().lower() if isinstance(device, str) else device
    if name not in DEVICES:
        raise InputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    gpus = int(resources.get("GPU", 0) or 0)
    cpus = float(resources.get("CPU", 0) or 0)
    if cpus < 1:
        raise EngineError(f"the Ray cluster reports {cpus:g} CPUs; it needs at least 1 to run the job")
    if name == "cuda" and gpus == 0:
        raise EngineError("device 'cuda' asked, but the Ray cluster reports no GPU; "
                          "use --device auto or cpu")
    decode_cpus = 1.0 if images and cpus >= DECODE_RESERVE_MIN_CPUS else 0.0
    if gpus and name in ("auto", "cuda"):
        actors, num_gpus, planned = gpus, 1, "cuda"
    else:
        actors, num_gpus, planned = max(1, int(cpus - decode_cpus)), 0, ("cpu" if name == "auto" else name)
    if max_actors is not None:
        actors = max(1, min(actors, int(max_actors)))
    return ActorPlan(actors, num_gpus, 1.0, planned, batch_size or DEFAULT_BATCH_SIZES[planned], decode_cpus)

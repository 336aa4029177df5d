"""Where an encoder runs: the torch device, its precision and its default batch size.

``auto`` picks CUDA when torch sees a GPU, else Apple's MPS when available, else the CPU.
CUDA runs in float16 (half the memory, several times the throughput on tensor cores);
MPS and the CPU run in float32. Vectors always come back as float32.
Torch is imported lazily (and only to ask what it sees).
"""

from __future__ import annotations

from dataclasses import dataclass

from core._shared import check_positive_int
from core.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")
# Rows per encoder batch when none is given: a GPU wants large batches to stay busy.
DEFAULT_BATCH_SIZES: dict[str, int] = {"cpu": 32, "cuda": 128, "mps": 64}
DEVICE_DTYPES: dict[str, str] = {"cpu": "float32", "cuda": "float16", "mps": "float32"}
_MISSING = {"cuda": "sees no CUDA GPU", "mps": "sees no Apple MPS device"}


@dataclass(frozen=True)
class DeviceChoice:
    """A resolved device: ``device`` is ``cpu``, ``cuda`` or ``mps`` (never ``auto``);
    ``dtype`` the model's weights (``float16`` on CUDA, else ``float32``); ``batch_size``
    the rows per encoder batch (the one asked for, else the device's default)."""

    device: str
    dtype: str
    batch_size: int

    def to_json(self) -> dict:
        return {"device": self.device, "dtype": self.dtype, "batch_size": self.batch_size}


def available_devices() -> tuple[str, ...]:
    """The devices torch can use here, best first; always ends with ``"cpu"``."""
    try:
        import torch
    except ImportError:
        return ("cpu",)
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return (*found, "cpu")


def _torch_version() -> str:
    try:
        import torch
    except ImportError:
        return "(not installed)"
    return str(torch.__version__)


def choose_device(requested: str = "auto", *, batch_size: int | None = None) -> DeviceChoice:
    """Resolve ``requested`` (one of :data:`DEVICES`, any case) to the device to load on.

    ``auto`` → the first of :func:`available_devices`. ``batch_size`` None → the device's
    :data:`DEFAULT_BATCH_SIZES` entry.

    Raises:
        InputError: ``requested`` is not one of :data:`DEVICES`; the device is not available
            here (the message names it and the devices that are); ``batch_size`` < 1.
    """
    name = requested.strip().lower() if isinstance(requested, str) else requested
    if name not in DEVICES:
        raise InputError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    available = available_devices()
    if name == "auto":
        name = available[0]
    elif name not in available:
        raise InputError(
            f"device {name!r} is not available: torch {_torch_version()} {_MISSING[name]}; "
            f"available here: {', '.join(available)} (or 'auto')"
        )
    return DeviceChoice(name, DEVICE_DTYPES[name], batch_size or DEFAULT_BATCH_SIZES[name])

"""Connecting to Ray: import it (optional dependency), start it locally or join a cluster.

``address`` None → a local Ray on this machine (``num_cpus=os.cpu_count()``); ``auto`` →
the cluster this machine belongs to (``ray start`` ran here); ``ray://HOST:PORT`` → Ray
Client; ``HOST:PORT`` → a cluster's GCS. A Ray already initialised in this process (a
test fixture, an earlier call) is reused and left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Iterator
from types import ModuleType

from core.engines.plan import RAY_INSTALL
from core.errors import EngineError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
_HOST_PORT = re.compile(r"^(?:ray://)?(?P<host>[^:/\s]+):(?P<port>\d{1,5})$")


def import_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or EngineError naming the install line."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise EngineError(f"engine 'ray' needs Ray Data, which is not installed ({err.name or err}); "
                          f"{RAY_INSTALL}") from err
    return ray


def check_address(address: str | None) -> str | None:
    """``address`` if it is None, ``auto``, ``ray://HOST:PORT`` or ``HOST:PORT`` whose port
    accepts a TCP connection within :data:`CONNECT_TIMEOUT_S`; else EngineError."""
    if address is None or address == "auto":
        return address
    match = _HOST_PORT.match(address.strip())
    if not match:
        raise EngineError(f"Ray address {address!r} is not auto, ray://HOST:PORT or HOST:PORT")
    host, port = match["host"], int(match["port"])
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise EngineError(f"Ray cluster at {address!r} is unreachable: {err.strerror or err}") from err
    return address.strip()


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[ModuleType]:
    """Ray connected to ``address`` for the ``with`` block (shut down after it only if this
    call started it). Raises EngineError: Ray missing, a bad or unreachable address."""
    ray = import_ray()
    address = check_address(address)
    if ray.is_initialized():
        yield ray
        return
    kwargs = {"num_cpus": os.cpu_count()} if address is None else {"address": address}
    try:
        ray.init(**kwargs, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, configure_logging=True)
    except ConnectionError as err:
        raise EngineError(f"cannot connect to Ray at {address or 'a new local instance'!r}: "
                          f"{str(err).splitlines()[0]}") from err
    log.info("ray started: %s", ray.cluster_resources())
    try:
        yield ray
    finally:
        ray.shutdown()

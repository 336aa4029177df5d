"""Which process owns a job, and whether that process is still alive.

A job row records its owner as ``"<pid>:<start>"`` on Linux (``start``: the process's
start time in clock ticks since boot, from ``/proc/<pid>/stat``), else ``"<pid>"``. The
start time tells a recycled pid (a restarted server that got the same pid, as PID 1 in a
container does) from the process that wrote the row.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def _linux_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state first), or None if there is no such process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may itself hold spaces or ')'
    return text[text.rindex(")") + 2:].split()


def _has_proc() -> bool:
    return (_PROC / "self" / "stat").is_file()


def process_owner(pid: int | None = None) -> str:
    """The owner text of process ``pid`` (default: this process): ``"<pid>:<start>"`` where
    the start time is readable (Linux), else ``"<pid>"``."""
    pid = os.getpid() if pid is None else pid
    fields = _linux_stat(pid) if _has_proc() else None
    return f"{pid}:{fields[19]}" if fields is not None and len(fields) > 19 else str(pid)


def owner_alive(owner: str, pid: int) -> bool | None:
    """Whether the process that wrote ``owner`` (pid ``pid``) still runs.

    False when there is no such process, it is a zombie, or (Linux) the pid now belongs to
    a process started at another time; True when it runs; None when this platform cannot
    tell (Windows: probing a pid there would signal it).
    """
    if pid <= 0:
        return False
    if _has_proc():
        fields = _linux_stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        return ":" not in owner or (len(fields) > 19 and owner == f"{pid}:{fields[19]}")
    if os.name == "nt":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


__all__ = ["owner_alive", "process_owner"]

"""Remaining-time maths and the short duration texts that job progress lines use.

- :func:`estimate_eta`: seconds left from the rate so far, or None when unknown.
- :func:`format_duration`: ``"40 s"``, ``"3 min 20 s"``, ``"1 h 5 min"``.
- :func:`format_eta`: ``"about 40 s left"``, ``"a few seconds left"``, ``""`` for None.
"""

from __future__ import annotations

import math


def estimate_eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left if the rate so far (``done`` units in ``elapsed`` seconds) holds.

    None when it cannot be known yet: nothing done, no total, already finished, or
    no time elapsed (``done <= 0``, ``total <= 0``, ``done >= total`` or ``elapsed <= 0``).
    """
    if done <= 0 or total <= 0 or done >= total or not elapsed > 0 or not math.isfinite(elapsed):
        return None
    return elapsed * (total - done) / done


def format_duration(seconds: float) -> str:
    """A short human duration: ``"0 s"``, ``"40 s"``, ``"3 min 20 s"`` (seconds shown
    under 10 min), ``"12 min"``, ``"1 h 5 min"``. Negative or non-finite values read ``"0 s"``."""
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_eta(seconds: float | None) -> str:
    """``"about 40 s left"`` (rounded to 5 s under a minute, whole minutes above),
    ``"a few seconds left"`` under 5 s, ``""`` when ``seconds`` is None."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 5:
        return "a few seconds left"
    if seconds < 57.5:  # rounds to at most 55 s; above that, minutes
        return f"about {max(5, round(seconds / 5) * 5)} s left"
    if seconds < 3600:
        return f"about {max(1, round(seconds / 60))} min left"
    return f"about {format_duration(round(seconds / 60) * 60)} left"


__all__ = ["estimate_eta", "format_duration", "format_eta"]

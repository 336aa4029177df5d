"""What every ``catalog`` command shares: the one-line-error parser, the stderr progress
bar, ``--json`` output and opening the workspace of ``--home``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from core._shared import ProgressFn


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"catalog: error: {message}\n")


def progress_bar(desc: str) -> tuple[ProgressFn, Callable[[], None]]:
    """A tqdm bar on stderr as a ``progress(done, total)`` callback, and its closer."""
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, unit="row", disable=None)
        bar.total = total
        bar.n = done
        bar.refresh()

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return update, close


def emit(args, payload: dict, text: str) -> None:
    """``payload`` as one JSON document on stdout with ``--json``, else ``text``."""
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, default=str)
        sys.stdout.write("\n")
    else:
        print(text)


def open_ws(args):
    """The workspace of ``--home`` (default ``$CATALOG_HOME`` or ``./catalog-data``)."""
    from core.workspace import open_workspace

    return open_workspace(args.home)


def note(message: str) -> None:
    """A one-line note for the user on stderr (stdout stays the command's output)."""
    print(f"catalog: {message}", file=sys.stderr)

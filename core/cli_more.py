"""``catalog`` commands beyond ingest/embed/list/search, registered into the parser.

Kept apart from :mod:`core.cli` so that file stays small; each command is a thin
wrapper over one ``core`` function.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.cli import _EXTRA_COMMANDS

APP_PATH = Path(__file__).resolve().parent.parent / "app.py"


def cmd_serve(args) -> int:
    env = dict(os.environ)
    if args.home:
        env["CATALOG_HOME"] = str(Path(args.home).resolve())
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_PATH), "--server.port", str(args.port)]
    return subprocess.call(cmd, env=env)


def _register(sub) -> None:
    p = sub.add_parser("serve", help="open the Catalog app in the browser")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_serve)


if _register not in _EXTRA_COMMANDS:
    _EXTRA_COMMANDS.append(_register)

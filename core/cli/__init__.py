"""The ``catalog`` command (also ``python -m core``): one parser, an explicit command list.

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem), 130 interrupted.
``--json`` prints one JSON document on stdout; progress and logs go to stderr.

One module per group of commands, each with a ``register(sub)`` that adds its
subcommands: :mod:`~core.cli.data` (ingest, embed, list, import/export embeddings,
index, demo, serve), :mod:`~core.cli.search`, :mod:`~core.cli.curate` (select,
export), :mod:`~core.cli.quality` (clusters, label-issues, duplicates), :mod:`~core.cli.tags`
(tag, untag, tags, slices), :mod:`~core.cli.labels` (relabel, undo, history, review).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core.cli import curate, data, labels, quality, search, tags
from core.cli.output import Parser
from core.errors import CatalogError

COMMAND_GROUPS = (data, search, curate, quality, tags, labels)


def build_parser() -> argparse.ArgumentParser:
    """The full ``catalog`` parser: global options and every command of :data:`COMMAND_GROUPS`."""
    parser = Parser(prog="catalog", description="Curate datasets with embeddings.")
    parser.add_argument("--home", help="workspace directory (default $CATALOG_HOME or ./catalog-data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND",
                                title="commands (catalog COMMAND --help for its options)")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``catalog`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CatalogError as err:
        print(f"catalog: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("catalog: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMAND_GROUPS", "build_parser", "main"]

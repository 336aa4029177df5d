"""Image checks for :mod:`core.ingest.pipeline`: where an image path may point (inside the data
root), whether each file is a readable image (on a small thread pool, with progress), and
the rule that a source whose every image is broken is an error, not a dataset.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core._shared import ProgressFn
from core.errors import InputError, MediaError, format_list
from core.workspace import Workspace, is_within


def media_module():
    """:mod:`core.media`, imported on first use (it pulls in Pillow)."""
    from core import media

    return media


def check_media_root(ws: Workspace, name: str, root: Path) -> None:
    """InputError if the media ``root`` lies inside the dataset folder that ingest replaces."""
    target = ws.dataset_path(name)
    if is_within(root, target):
        raise InputError(f"media root {root} lies inside the dataset folder {target}, which "
                         "ingest replaces; move the images elsewhere first")


def resolve_images(values: list[str], root: Path) -> tuple[list[str], list[Path]]:
    """Paths relative to ``root`` ('/' separators) and absolute paths; MediaError on escape."""
    rels, fulls, escapes = [], [], []
    for value in values:
        path = Path(value)
        full = path if path.is_absolute() else root / path
        if not is_within(full, root):
            escapes.append(value)
            continue
        lexical = Path(os.path.normpath(full))
        rel = (lexical.relative_to(root) if lexical.is_relative_to(root)
               else full.resolve().relative_to(root))
        rels.append(rel.as_posix())
        fulls.append(root / rel)
    if escapes:
        raise MediaError(f"image path {escapes[0]!r} is outside the data root {root} "
                         f"({len(escapes)} such paths, e.g. {format_list(escapes)}); "
                         "pass --image-root for the folder that holds the images")
    return rels, fulls


def check_images(paths: list[Path], progress: ProgressFn | None,
                 dims: bool) -> list[tuple[str | None, int | None, int | None]]:
    """(issue, width, height) per path, in order, checked on a small thread pool."""
    media = media_module()

    def inspect(path: Path) -> tuple[str | None, int | None, int | None]:
        try:
            issue = media.check_image(path)
        except OSError as exc:
            issue = f"unreadable file: {exc.strerror or exc}"
        if issue is not None or not dims:
            return issue, None, None
        from PIL import Image

        try:
            with Image.open(path) as img:
                return None, img.size[0], img.size[1]
        except (OSError, Image.DecompressionBombError) as exc:
            return f"corrupt image: {exc}", None, None

    total = len(paths)
    step = max(1, total // 100)
    out = []
    if progress:
        progress(0, total)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for done, result in enumerate(pool.map(inspect, paths), 1):
            out.append(result)
            if progress and (done % step == 0 or done == total):
                progress(done, total)
    return out


def fail_if_all_broken(ids: list[str], issues: list[str | None], where: str) -> None:
    """MediaError when every one of ``ids`` has an issue (nothing readable to ingest)."""
    if ids and all(issue is not None for issue in issues):
        raise MediaError(f"all {len(ids)} images {where} are unreadable, e.g. {ids[0]!r}: "
                         f"{issues[0]}")

"""Card grid thumbnails follow the image file: a replaced image, or one fixed after being
unreadable, gets a new thumbnail on the next rerun (the cached thumbnail is keyed by the
file's mtime and size, not only its path)."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from core.ingest import ingest_folder
from core.workspace import open_workspace
from tests.helpers.apptest import grid_payload


def _grid_app(home: str) -> None:
    from core.workspace import open_workspace
    from ui.grid import render_grid

    ds = open_workspace(home).dataset("imgs")
    render_grid(ds, ds.rows(), key="g")


def _write(path: Path, data: Image.Image | bytes, mtime_s: int) -> None:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        data.save(path)
    os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))  # distinct even on coarse clocks


def _tile(at) -> dict:
    """The one row the grid sent to the browser (its ``src`` is the thumbnail's data URI)."""
    payload = grid_payload(at, "g")
    assert payload is not None and len(payload["rows"]) == 1, payload
    return payload["rows"][0]


def _image_url(at) -> str | None:
    return _tile(at)["src"]


def _pixel(uri: str) -> tuple[int, int, int]:
    """A pixel of the image in a ``data:image/...;base64,`` URI."""
    head, data = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB").getpixel((5, 5))


def _setup(tmp_path: Path, first: Image.Image | bytes) -> tuple[AppTest, Path]:
    src = tmp_path / "src" / "cat"
    src.mkdir(parents=True)
    _write(src / "a.png", Image.new("RGB", (32, 32), (0, 255, 0)), 1_000_000)
    ingest_folder(open_workspace(tmp_path / "home"), tmp_path / "src", "imgs")
    _write(src / "a.png", first, 1_000_100)
    at = AppTest.from_function(_grid_app, args=(str(tmp_path / "home"),), default_timeout=30)
    return at.run(), src / "a.png"


def test_a_replaced_image_gets_a_new_thumbnail(tmp_path):
    at, image = _setup(tmp_path, Image.new("RGB", (32, 32), (255, 0, 0)))
    assert not at.exception, at.exception
    red = _image_url(at)
    assert red and _pixel(red)[0] > 200 and not _tile(at)["broken"]
    at.run()
    assert _image_url(at) == red  # unchanged file: same thumbnail

    _write(image, Image.new("RGB", (40, 40), (0, 0, 255)), 1_000_200)
    at.run()
    assert not at.exception, at.exception
    blue = _image_url(at)
    assert blue and blue != red
    assert _pixel(blue)[2] > 200 and _pixel(blue)[0] < 60  # the browser gets the blue one

    thumbs = sorted((tmp_path / "home" / "datasets" / "imgs" / "thumbs").glob("*.jpg"),
                    key=lambda p: p.stat().st_mtime_ns)
    assert Image.open(thumbs[-1]).convert("RGB").getpixel((5, 5))[2] > 200  # the blue one


def test_an_unreadable_image_fixed_later_is_shown(tmp_path):
    at, image = _setup(tmp_path, b"not an image")
    assert not at.exception, at.exception
    assert _image_url(at) is None
    assert _tile(at)["broken"]  # the tile says "unreadable image"

    _write(image, Image.new("RGB", (32, 32), (255, 0, 0)), 1_000_200)
    at.run()
    assert not at.exception, at.exception
    fixed = _image_url(at)
    assert fixed is not None and _pixel(fixed)[0] > 200
    assert not _tile(at)["broken"]

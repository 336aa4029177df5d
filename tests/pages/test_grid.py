"""Card grid thumbnails follow the image file: a replaced image, or one fixed after being
unreadable, gets a new thumbnail on the next rerun (the cached thumbnail is keyed by the
file's mtime and size, not only its path)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from core.ingest import ingest_folder
from core.workspace import open_workspace


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


def _image_url(at) -> str | None:
    images = at.get("image")
    return images[0].proto.imgs[0].url if images else None


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
    assert red
    at.run()
    assert _image_url(at) == red  # unchanged file: same thumbnail

    _write(image, Image.new("RGB", (40, 40), (0, 0, 255)), 1_000_200)
    at.run()
    assert not at.exception, at.exception
    blue = _image_url(at)
    assert blue and blue != red

    thumbs = sorted((tmp_path / "home" / "datasets" / "imgs" / "thumbs").glob("*.jpg"),
                    key=lambda p: p.stat().st_mtime_ns)
    assert Image.open(thumbs[-1]).convert("RGB").getpixel((5, 5))[2] > 200  # the blue one


def test_an_unreadable_image_fixed_later_is_shown(tmp_path):
    at, image = _setup(tmp_path, b"not an image")
    assert not at.exception, at.exception
    assert _image_url(at) is None
    assert any("unreadable image" in c.value for c in at.caption)

    _write(image, Image.new("RGB", (32, 32), (255, 0, 0)), 1_000_200)
    at.run()
    assert not at.exception, at.exception
    assert _image_url(at) is not None
    assert not any("unreadable image" in c.value for c in at.caption)

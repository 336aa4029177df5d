"""Tests for core.media: safe image reading and the thumbnail cache."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import media
from core.errors import InputError, MediaError
from core.media import check_image, open_image, open_image_bytes, thumbnail_path


def _photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def good_png(tmp_path: Path) -> Path:
    path = tmp_path / "good.png"
    _photo().save(path)
    return path


def _bad_file(tmp_path: Path, kind: str) -> Path:
    if kind == "zero-byte":
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
    elif kind == "truncated-png":
        path = tmp_path / "truncated.png"
        data = _png_bytes(_photo(256, 256))
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated-jpeg":
        path = tmp_path / "truncated.jpg"
        buf = io.BytesIO()
        _photo(256, 256).save(buf, format="JPEG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "random-bytes":
        path = tmp_path / "noise.png"
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "text-as-jpg":
        path = tmp_path / "notes.jpg"
        path.write_text("these are my notes, not a photo\n" * 20)
    else:  # pragma: no cover - test bug
        raise AssertionError(kind)
    return path


BAD_CASES = {
    "zero-byte": "zero-byte file",
    "truncated-png": "corrupt image",
    "truncated-jpeg": "corrupt image",
    "random-bytes": "unrecognised image format",
    "text-as-jpg": "unrecognised image format",
}


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_unreadable_files_raise_media_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = _bad_file(tmp_path, kind)
    with pytest.raises(MediaError) as info:
        open_image(path)
    message = str(info.value)
    assert path.name in message
    assert BAD_CASES[kind] in message


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_check_image_returns_reason_without_raising(tmp_path: Path, kind: str) -> None:
    reason = check_image(_bad_file(tmp_path, kind))
    assert reason is not None
    assert reason.startswith(BAD_CASES[kind])


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_open_image_bytes_rejects_bad_uploads(tmp_path: Path, kind: str) -> None:
    data = _bad_file(tmp_path, kind).read_bytes()
    with pytest.raises(MediaError, match=r"cannot read image my-upload\.png: " + BAD_CASES[kind]):
        open_image_bytes(data, name="my-upload.png")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    assert check_image(missing) == "file not found"
    with pytest.raises(MediaError, match="nope.jpg: file not found"):
        open_image(missing)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    assert check_image(tmp_path) == "not a regular file"


def test_valid_image_opens_as_rgb_with_same_pixels(good_png: Path) -> None:
    assert check_image(good_png) is None
    image = open_image(good_png)
    assert image.mode == "RGB"
    assert image.size == (64, 48)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(_photo()))


def test_image_is_detached_from_file(good_png: Path) -> None:
    image = open_image(good_png)
    good_png.unlink()
    assert np.asarray(image).shape == (48, 64, 3)


def test_open_image_bytes_valid() -> None:
    image = open_image_bytes(_png_bytes(_photo(seed=3)), name="x.png")
    assert image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), np.asarray(_photo(seed=3)))


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    path = tmp_path / "alpha.png"
    rgba.save(path)
    image = open_image(path)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (255, 0, 0)


def test_palette_gif_and_greyscale_convert(tmp_path: Path) -> None:
    gif = tmp_path / "p.gif"
    _photo().convert("P").save(gif)
    grey = tmp_path / "g.png"
    Image.new("L", (5, 5), 100).save(grey)
    assert open_image(gif).mode == "RGB"
    assert open_image(grey).getpixel((2, 2)) == (100, 100, 100)


def test_sixteen_bit_greyscale_is_rescaled_not_clipped(tmp_path: Path) -> None:
    arr = np.full((4, 4), 32768, dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    value = open_image(path).getpixel((0, 0))
    assert value[0] == value[1] == value[2]
    assert 120 <= value[0] <= 135  # half of the 16-bit range, not clipped to 255


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    _photo(40, 20).save(path, format="JPEG", exif=exif)
    assert open_image(path).size == (20, 40)


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    _photo(30, 30).save(path)
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(MediaError, match="big.png: image too large: 30x30"):
        open_image(path)
    assert (check_image(path) or "").startswith("image too large")


def test_image_extensions() -> None:
    assert media.is_image_path("A/B/photo.JPG")
    assert not media.is_image_path("notes.txt")
    assert ".webp" in media.IMAGE_EXTENSIONS


def test_thumbnail_created_once_and_cached(tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    _photo(600, 300).save(src)
    thumbs = tmp_path / "thumbs"
    first = thumbnail_path(src, thumbs, size=128)
    assert first.parent == thumbs and first.suffix == ".jpg"
    with Image.open(first) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (128, 64)
    written = first.stat().st_mtime_ns
    second = thumbnail_path(src, thumbs, size=128)
    assert second == first
    assert second.stat().st_mtime_ns == written
    assert [p.name for p in thumbs.iterdir()] == [first.name]  # no temp files left behind


def test_thumbnail_changes_with_size_and_content(tmp_path: Path) -> None:
    src = tmp_path / "img.png"
    _photo(100, 100, seed=1).save(src)
    thumbs = tmp_path / "thumbs"
    original = thumbnail_path(src, thumbs, size=64)
    assert thumbnail_path(src, thumbs, size=32) != original
    _photo(120, 100, seed=2).save(src)
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 5_000_000_000))
    updated = thumbnail_path(src, thumbs, size=64)
    assert updated != original
    with Image.open(updated) as thumb:
        assert thumb.size == (64, 53)


def test_small_images_are_not_upscaled(tmp_path: Path) -> None:
    src = tmp_path / "tiny.png"
    _photo(8, 8).save(src)
    with Image.open(thumbnail_path(src, tmp_path / "t", size=256)) as thumb:
        assert thumb.size == (8, 8)


def test_thumbnail_of_unreadable_source(tmp_path: Path) -> None:
    thumbs = tmp_path / "thumbs"
    with pytest.raises(MediaError, match="notes.jpg"):
        thumbnail_path(_bad_file(tmp_path, "text-as-jpg"), thumbs)
    with pytest.raises(MediaError, match="file not found"):
        thumbnail_path(tmp_path / "missing.png", thumbs)
    assert not thumbs.exists() or not any(thumbs.iterdir())


@pytest.mark.parametrize("size", [0, -5, 2.5, True])
def test_thumbnail_size_must_be_positive_int(good_png: Path, tmp_path: Path, size: object) -> None:
    with pytest.raises(InputError, match="thumbnail size"):
        thumbnail_path(good_png, tmp_path / "t", size=size)  # type: ignore[arg-type]

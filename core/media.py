"""Reading images safely and caching thumbnails.

Every reader returns a fully decoded RGB :class:`PIL.Image.Image` (EXIF rotation applied,
transparency flattened onto white) or raises :class:`~core.errors.MediaError` naming the file
and the reason: zero-byte, missing, unrecognised format, corrupt or truncated data, or more
pixels than :data:`MAX_IMAGE_PIXELS` (decompression bomb).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core import atomic
from core.errors import InputError, MediaError

logger = logging.getLogger(__name__)

#: Largest image (width × height) we decode; PIL's own warning threshold (~ 9459 × 9459).
MAX_IMAGE_PIXELS = 89_478_485
#: File extensions treated as images when scanning folders.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Background used when flattening transparent images.
_BACKGROUND = (255, 255, 255)
#: Errors PIL raises for damaged data (decoders raise OSError; parsers also these).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)


class _Unreadable(Exception):
    """Internal: carries the short reason an image cannot be read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_image_path(path: str | os.PathLike) -> bool:
    """True if ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as 8-bit RGB.

    Transparent pixels are composited onto white; 16-bit and float greyscale are rescaled to
    0..255 instead of being clipped. Returns ``image`` itself when it is already RGB.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(image, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.nan_to_num(scaled).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _decode(source: str | Path | IO[bytes]) -> Image.Image:
    """Open, size-check, fully load and convert ``source``; raise :class:`_Unreadable`."""
    try:
        with Image.open(source) as im:
            width, height = im.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _Unreadable(
                    f"image too large: {width}x{height} = {width * height:,} pixels "
                    f"exceeds the limit of {MAX_IMAGE_PIXELS:,}"
                )
            im.load()
            rgb = to_rgb(ImageOps.exif_transpose(im))
            return rgb.copy() if rgb is im else rgb  # detach from the closing file
    except UnidentifiedImageError as err:
        raise _Unreadable("unrecognised image format") from err
    except Image.DecompressionBombError as err:
        raise _Unreadable(f"image too large: {err}") from err
    except _DECODE_ERRORS as err:
        raise _Unreadable(f"corrupt image: {err}") from err


def _decode_path(path: Path) -> Image.Image:
    try:
        stat = path.stat()
    except FileNotFoundError as err:
        raise _Unreadable("file not found") from err
    except OSError as err:
        raise _Unreadable(f"cannot access file: {err.strerror or err}") from err
    if not path.is_file():
        raise _Unreadable("not a regular file")
    if stat.st_size == 0:
        raise _Unreadable("zero-byte file")
    return _decode(path)


def open_image(path: str | os.PathLike) -> Image.Image:
    """Read the image at ``path`` fully into memory as RGB.

    Raises:
        MediaError: ``"cannot read image <path>: <reason>"`` for a missing, zero-byte,
            unrecognised, corrupt/truncated or too-large (> MAX_IMAGE_PIXELS) image.
    """
    path = Path(path)
    try:
        return _decode_path(path)
    except _Unreadable as err:
        raise MediaError(f"cannot read image {path}: {err.reason}") from err.__cause__


def open_image_bytes(data: bytes, name: str = "upload") -> Image.Image:
    """Read an uploaded image from ``data`` as RGB; same checks as :func:`open_image`.

    Raises:
        MediaError: ``"cannot read image <name>: <reason>"``.
    """
    if not data:
        raise MediaError(f"cannot read image {name}: zero-byte file")
    try:
        return _decode(io.BytesIO(data))
    except _Unreadable as err:
        raise MediaError(f"cannot read image {name}: {err.reason}") from err.__cause__


def check_image(path: str | os.PathLike) -> str | None:
    """Return ``None`` if ``path`` decodes as an image, else a short reason.

    Reasons look like ``"zero-byte file"``, ``"file not found"``, ``"unrecognised image format"``,
    ``"corrupt image: image file is truncated ..."`` or ``"image too large: ..."``. Never raises
    for an unreadable file (used by ingest to flag rows).
    """
    try:
        _decode_path(Path(path))
    except _Unreadable as err:
        return err.reason
    return None


def _thumbnail_key(src: Path, size: int) -> str:
    """Hash of (absolute path, mtime_ns, file size, thumbnail size): changes when the file does."""
    try:
        stat = src.stat()
    except FileNotFoundError as err:
        raise MediaError(f"cannot read image {src}: file not found") from err
    except OSError as err:
        raise MediaError(f"cannot read image {src}: cannot access file: {err.strerror or err}") from err
    raw = f"{src.resolve()}\0{stat.st_mtime_ns}\0{stat.st_size}\0{size}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def thumbnail_path(src: str | os.PathLike, thumbs_dir: str | os.PathLike, size: int = 256) -> Path:
    """Return the path of a cached JPEG thumbnail of ``src`` that fits in ``size`` × ``size``.

    The file is ``thumbs_dir/<hash>.jpg``, keyed by (absolute path, mtime, file size, ``size``):
    a second call for an unchanged file returns the same path without rewriting it; an edited
    file gets a new thumbnail. Written atomically, so concurrent callers are safe. Images smaller
    than ``size`` are not upscaled.

    Raises:
        InputError: ``size`` is not a positive integer.
        MediaError: ``src`` is missing or not a readable image.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InputError(f"thumbnail size must be a positive integer, got {size!r}")
    src = Path(src)
    target = Path(thumbs_dir) / f"{_thumbnail_key(src, size)}.jpg"
    if target.is_file():
        return target
    image = open_image(src)
    image.thumbnail((size, size), Image.Resampling.LANCZOS)

    def _write(tmp: Path) -> None:
        image.save(tmp, format="JPEG", quality=85, optimize=True)

    atomic.write_with(target, _write)
    logger.debug("thumbnail %s -> %s", src, target)
    return target

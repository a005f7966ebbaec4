"""Reading images with clear errors, and writing files atomically.

Every writer here goes to a temporary file in the destination folder and then ``os.replace``s
it into place, so a killed job never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageReadError(ValueError):
    """An image file is missing, truncated or not an image. The message names the file."""


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest`` atomically.

    The temporary name keeps ``dest``'s suffix so that writers that infer the format from the
    extension (PIL, pandas) still work.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix if suffix is not None else dest.suffix
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))


def atomic_write_json(dest: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save_image(dest: str | os.PathLike, image: Image.Image, **save_kwargs: Any) -> None:
    """Save a PIL image atomically; the format comes from ``dest``'s extension."""
    fmt = Image.registered_extensions().get(Path(dest).suffix.lower())
    with atomic_path(dest) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise ImageReadError(f"{path}: file does not exist")
    try:
        img = Image.open(path)
        img.load()  # force decoding now, so a truncated file fails here, with its name
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc})") from exc
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit single-channel images scaled to 8-bit "L" (rounded); others unchanged."""
    if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
        return img
    arr = np.asarray(img).astype(np.float64)
    peak = 65535.0 if arr.max() > 255 else 255.0
    return Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def load_rgb(path: str | os.PathLike, exif_transpose: bool = True) -> Image.Image:
    """Open an image as 8-bit RGB.

    RGBA is composited on black (its alpha is not a mask), L / P / CMYK are converted, 16-bit
    images are scaled to 8 bit, and the EXIF orientation is applied (as a viewer shows it).
    """
    path = Path(path)
    img = _open(path)
    if exif_transpose:
        img = ImageOps.exif_transpose(img)
    img = _to_8bit(img)
    if img.mode == "RGBA":
        bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def load_mask_l(path: str | os.PathLike, exif_transpose: bool = True) -> Image.Image:
    """Open a mask as an 8-bit single-channel ("L") image, without thresholding it.

    Thresholding happens in one place per use: ``harmonylib.data.datasets.binarize_mask`` for
    training and inference, the evaluator's dithering for metric parity.
    """
    path = Path(path)
    img = _open(path)
    if exif_transpose:
        img = ImageOps.exif_transpose(img)
    img = _to_8bit(img)
    if img.mode == "RGBA":
        # A mask drawn in an editor may be stored as alpha only; take alpha if RGB is flat.
        arr = np.asarray(img)
        if arr[..., :3].std() == 0:
            return Image.fromarray(arr[..., 3], "L")
    return img.convert("L")

"""Reading images with clear errors, and writing files atomically.

Every writer here goes to a temporary file in the destination folder and then ``os.replace``s
it into place, so a killed job never leaves a half-written file under the final name. The
file gets the mode any new file gets (``0o666`` less the umask), not ``mkstemp``'s private
``0o600``. A destination that cannot be written (inside a file, in a read-only folder, an image
without an extension) raises :class:`OutputPathError`, which names the destination, never the
hidden temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageReadError(ValueError):
    """An image file is missing, truncated or not an image. The message names the file."""


class OutputPathError(ValueError):
    """A file cannot be written where asked. The message names the user's path and the reason."""


class TransparencyWarning(UserWarning):
    """An RGB image with semi-transparent pixels was flattened onto black."""


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: read by setting, then restore at once
    os.umask(mask)
    return mask


def check_output_path(dest: str | os.PathLike, what: str = "") -> Path:
    """Check before any work that ``dest`` can be created; return it as a Path.

    Raises:
        OutputPathError: a parent of ``dest`` is a file, the nearest existing folder is not
            writable, or ``dest`` is itself a folder. The message starts with ``what`` (e.g.
            ``--out``) and ``dest``.
    """
    dest = Path(dest)
    label = f"{what} {dest}" if what else str(dest)
    if dest.is_dir():
        raise OutputPathError(f"{label}: is a folder; give a file name")
    folder = dest.parent
    while not folder.exists():
        if folder == folder.parent:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{label}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{label}: folder {folder} is not writable")
    return dest


def check_image_output(dest: str | os.PathLike, what: str = "") -> Path:
    """``check_output_path`` plus: the extension names an image format PIL can write."""
    dest = check_output_path(dest, what)
    label = f"{what} {dest}" if what else str(dest)
    if not dest.suffix:
        raise OutputPathError(f"{label}: no file extension, so no image format; add one, e.g. .png")
    if Image.registered_extensions().get(dest.suffix.lower()) not in Image.SAVE:
        raise OutputPathError(f"{label}: {dest.suffix} is not an image format that can be written")
    return dest


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest`` atomically.

    The temporary name keeps ``dest``'s suffix so that writers that infer the format from the
    extension (PIL, pandas) still work.
    """
    dest = check_output_path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=dest.parent, prefix=f".{dest.name}.", suffix=suffix if suffix is not None else dest.suffix
        )
    except OSError as exc:  # e.g. read-only file system, full disk: name the user's path
        raise OutputPathError(f"{dest}: cannot write ({exc.strerror or exc})") from exc
    # mkstemp makes the file private (0o600); an output is an ordinary file (0o666 less umask)
    os.fchmod(fd, 0o666 & ~_umask())
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
    fmt = Image.registered_extensions().get(check_image_output(dest).suffix.lower())
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

    Transparent images (RGBA, LA, P with transparency) are composited on black, with a
    :class:`TransparencyWarning` if any pixel is not opaque: alpha is not a mask here. L / P /
    CMYK are converted, 16-bit images are scaled to 8 bit, and the EXIF orientation is applied
    (as a viewer shows it).
    """
    path = Path(path)
    img = _open(path)
    if exif_transpose:
        img = ImageOps.exif_transpose(img)
    img = _to_8bit(img)
    if img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        alpha = np.asarray(img.getchannel("A"))  # (H, W) uint8
        if alpha.min() < 255:
            warnings.warn(
                f"{path}: {np.count_nonzero(alpha < 255)} of {alpha.size} pixels are transparent; "
                "they are flattened onto black (save the composite without alpha to avoid this)",
                TransparencyWarning,
                stacklevel=2,
            )
        bg = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def load_mask_l(path: str | os.PathLike, exif_transpose: bool = True) -> Image.Image:
    """Open a mask as an 8-bit single-channel ("L") image, without thresholding it.

    Thresholding happens in one place per use: ``harmonylib.imageproc.threshold_mask`` for
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


def link_or_copy(src: Path, dst: Path, mode: str = "hardlink") -> None:
    """Place ``src`` at ``dst`` (hard link, else copy), atomically; an existing ``dst`` is kept."""
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "hardlink":
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(src, tmp)
            os.replace(tmp, dst)
            return
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)

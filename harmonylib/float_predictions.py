"""Predictions kept in float: ``.npy`` arrays and 16-bit RGB PNGs, written and read back.

The iSSAM family scores its network's float output, clamped to [0, 255] but not rounded
(peers.md §5, "Quantisation"); an 8-bit PNG loses up to 0.5 levels per value, which moves MSE
by about 1/12 on a perfect prediction. ``harmonylib evaluate --convention issam`` therefore reads
a float prediction when one exists. Two formats, both on the 0–255 scale once read:

* ``<stem>.npy``: a (H, W, 3) float array on the 0–255 scale (written as float32);
* ``<stem>.png`` holding 16-bit RGB: value ``v`` stands for ``v · 255 / 65535``.

Pillow reads 16-bit RGB PNGs as 8-bit (it keeps the high byte), so the 16-bit PNG codec is
written here: the writer uses filter type 0 only; the reader accepts the five standard filters
(None and Up vectorised, Sub, Average and Paeth in a per-row loop) and refuses interlaced files.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from harmonylib.io import atomic_path, load_rgb

FLOAT_FORMATS = ("npy", "png16")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FloatPredictionError(ValueError):
    """A float prediction file cannot be read; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png16(rgb: np.ndarray) -> bytes:
    """A (H, W, 3) array on the 0–255 scale as 16-bit RGB PNG bytes (rounded to 1/65535 of the range)."""
    a = np.asarray(rgb, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected a (H, W, 3) array, got shape {a.shape}")
    h, w, _ = a.shape
    v = np.rint(np.clip(a, 0.0, 255.0) * (65535.0 / 255.0)).astype(">u2")  # (H, W, 3) big-endian
    rows = np.concatenate([np.zeros((h, 1), np.uint8), v.reshape(h, w * 3).view(np.uint8)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16-bit, colour type 2 (RGB)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def save_float_prediction(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write a (H, W, 3) prediction on the 0–255 scale as ``.npy`` (float32) or 16-bit ``.png``.

    The format follows the suffix; values are clipped to [0, 255] (the peers clamp, §5). Atomic.

    Returns:
        ``path``.
    """
    path = Path(path)
    a = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 255.0)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"{path}: expected a (H, W, 3) array, got shape {a.shape}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, a)
    elif suffix == ".png":
        data = encode_png16(a)
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
    else:
        raise ValueError(f"{path}: float predictions are .npy or .png (16-bit), not {suffix!r}")
    return path


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def png_bit_depth(path: str | os.PathLike) -> int | None:
    """The bit depth in a PNG's header, or None when the file is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24]


def _unfilter(raw: bytes, h: int, stride: int, bpp: int, path: Path) -> np.ndarray:
    """Undo PNG's per-row filters: (H, stride) uint8 of reconstructed bytes."""
    if len(raw) != h * (stride + 1):
        raise FloatPredictionError(f"{path}: PNG data has {len(raw)} bytes, expected {h * (stride + 1)}")
    rows = np.frombuffer(raw, np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(h):
        kind, line = rows[y, 0], rows[y, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 2:  # Up
            cur = line + prev
        elif kind == 1:  # Sub: a running sum per byte lane, modulo 256
            lanes = line.reshape(-1, bpp).astype(np.uint64)
            cur = (np.cumsum(lanes, axis=0) % 256).astype(np.uint8).reshape(-1)
        elif kind in (3, 4):
            cur = np.zeros(stride, np.uint8)
            p = prev.astype(np.int32)
            for x in range(stride):
                a = int(cur[x - bpp]) if x >= bpp else 0
                b = int(p[x])
                if kind == 3:  # Average
                    pred = (a + b) // 2
                else:  # Paeth
                    c = int(p[x - bpp]) if x >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (int(line[x]) + pred) & 0xFF
        else:
            raise FloatPredictionError(f"{path}: unknown PNG filter type {kind} in row {y}")
        out[y] = cur
        prev = cur
    return out


def read_png16(path: str | os.PathLike) -> np.ndarray:
    """A 16-bit grey or RGB PNG as (H, W, 3) float64 on the 0–255 scale (alpha is refused)."""
    path = Path(path)
    data = path.read_bytes()
    if data[:8] != _PNG_SIGNATURE:
        raise FloatPredictionError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    if header is None or not idat:
        raise FloatPredictionError(f"{path}: PNG without IHDR or IDAT chunk")
    w, h, depth, colour, _, _, interlace = header
    if depth != 16 or colour not in (0, 2):
        raise FloatPredictionError(
            f"{path}: expected a 16-bit grey or RGB PNG, got bit depth {depth}, colour type {colour}"
        )
    if interlace:
        raise FloatPredictionError(f"{path}: interlaced PNGs are not supported; save it without interlacing")
    channels = 3 if colour == 2 else 1
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise FloatPredictionError(f"{path}: corrupt PNG data ({exc})") from exc
    rows = _unfilter(raw, h, w * channels * 2, channels * 2, path)  # (H, W·C·2) bytes
    v = rows.view(">u2").reshape(h, w, channels).astype(np.float64)  # (H, W, C) in [0, 65535]
    if channels == 1:
        v = np.repeat(v, 3, axis=-1)  # (H, W, 3)
    return v * (255.0 / 65535.0)


def load_prediction(path: str | os.PathLike, allow_float: bool) -> np.ndarray:
    """A prediction as a (H, W, 3) array on the 0–255 scale.

    With ``allow_float``: ``.npy`` files and 16-bit PNGs are read in float64 (clipped to
    [0, 255], as the peers clamp); anything else is read as 8-bit RGB and returned as uint8.
    Without it every file is read as 8-bit RGB (uint8), as the authors' evaluator does.

    Raises:
        FloatPredictionError: an unreadable ``.npy`` / 16-bit PNG, or a wrong shape (names the file).
    """
    path = Path(path)
    if allow_float and path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FloatPredictionError(f"{path}: cannot read the .npy prediction ({exc})") from exc
        if a.ndim != 3 or a.shape[-1] != 3 or a.dtype.kind not in "fiu":
            raise FloatPredictionError(f"{path}: expected a (H, W, 3) numeric array, got {a.shape} {a.dtype}")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise FloatPredictionError(f"{path}: the prediction holds NaN or infinite values")
        return np.clip(a, 0.0, 255.0)
    if allow_float and png_bit_depth(path) == 16:
        return read_png16(path)
    return np.asarray(load_rgb(path, exif_transpose=False))

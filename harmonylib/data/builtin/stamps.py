"""Photographic stamps pasted as foreground objects: more distinct foregrounds than the scenes hold.

iHarmony4's foregrounds are the objects of ~70k photos; the built-in train split cuts its masks
from 29 scenes, and the held-out correction measured in mini-v2 grows with the number of distinct
train scenes (results/mini/diagnostics/v2/LEVERS.md §6). The vendored set's photographic stamps
(Tux Paint cut-outs with alpha, all ``train``) are ~300 more objects. With
``BuiltinDataConfig.stamp_foregrounds = p``, a train real that holds one mask becomes, with
probability ``p``, a scene crop with one stamp pasted on it: the *real* is that paste (alpha
blended, so the stamp's edge is as soft as its cut-out), the mask is the stamp's alpha >= 0.5, and
its composites recolour the stamp exactly as a segment would be recoloured. Val and test never
change: stamps are train only, and the draw has its own random stream (``builtin-stamp``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

from harmonylib.data.builtin.masks import _ACCEPT, _target_ratio, fg_ratio_256

_ALPHA_THRESHOLD = 0.5  # stamp pixels at least this opaque are foreground (the hard mask)
_ATTEMPTS = 8  # stamps and scales tried before the real falls back to a scene mask


@lru_cache(maxsize=1)
def _stamp_images() -> tuple[tuple[str, np.ndarray], ...]:
    """Every vendored stamp as ``(name, float RGBA (h, w, 4) in [0, 1])``, cropped to its alpha box."""
    from harmonylib.data.photo_set import open_photo, stamps

    out = []
    for entry in stamps():
        rgba = np.asarray(open_photo(entry), dtype=np.float64) / 255.0
        ys, xs = np.nonzero(rgba[..., 3] >= _ALPHA_THRESHOLD)
        if len(ys) == 0:
            continue
        out.append((entry.name, rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]))
    if not out:
        raise RuntimeError("stamp_foregrounds > 0 but the vendored photo set holds no stamps")
    return tuple(out)


def _resized(rgba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgba`` (h, w, 4) resized to ``size`` = (w, h) with premultiplied alpha (no dark fringes)."""
    premul = np.concatenate([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], axis=-1)
    chans = [
        np.asarray(Image.fromarray(premul[..., c].astype(np.float32), "F").resize(size, Image.LANCZOS))
        for c in range(4)
    ]
    out = np.clip(np.stack(chans, axis=-1).astype(np.float64), 0.0, 1.0)
    a = out[..., 3:]
    out[..., :3] = np.where(a > 1e-6, np.clip(out[..., :3] / np.maximum(a, 1e-6), 0.0, 1.0), 0.0)
    return out


def paste_stamp(
    real: np.ndarray, b: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str, float] | None:
    """One stamp pasted on ``real`` (float RGB (H, W, 3) in [0, 1]) with its fg ratio in bin ``b``.

    Returns:
        ``(pasted real (H, W, 3), bool mask (H, W), "stamp:<name>", measured ratio)``, or None when
        no stamp lands in the bin within a few attempts (the caller then cuts a scene mask).
    """
    h, w = real.shape[:2]
    lo, hi = _ACCEPT[b]
    library = _stamp_images()
    for _ in range(_ATTEMPTS):
        name, rgba = library[int(rng.integers(len(library)))]
        target = _target_ratio(b, rng)
        sh, sw = rgba.shape[:2]
        cover = float((rgba[..., 3] >= _ALPHA_THRESHOLD).mean())  # opaque share of its box
        # scale so that the opaque area is target * H * W, capped so the stamp fits the crop
        scale = min(math.sqrt(target * h * w / (cover * sh * sw)), w / sw, h / sh)
        size = (max(1, round(sw * scale)), max(1, round(sh * scale)))
        stamp = _resized(rgba, size)
        x0 = int(rng.integers(0, w - size[0] + 1))
        y0 = int(rng.integers(0, h - size[1] + 1))
        alpha = np.zeros((h, w, 1))
        colour = np.zeros((h, w, 3))
        alpha[y0 : y0 + size[1], x0 : x0 + size[0]] = stamp[..., 3:]
        colour[y0 : y0 + size[1], x0 : x0 + size[0]] = stamp[..., :3]
        mask = alpha[..., 0] >= _ALPHA_THRESHOLD
        if not mask.any():
            continue
        ratio = fg_ratio_256(mask)
        if lo <= ratio < hi:
            return real * (1.0 - alpha) + colour * alpha, mask, f"stamp:{name}", ratio
    return None

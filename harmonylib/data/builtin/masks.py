"""Object-like masks for the built-in dataset, each landing in a chosen foreground-ratio bin.

Masks are unions of adjacent Felzenszwalb segments of the crop, the scikit-image horse silhouette,
or smooth random shapes. The foreground ratio is measured as the evaluator measures it (mask
dithered to mode "1", NEAREST-resized to 256x256, fraction of foreground pixels), so a mask's bin
is the bin the evaluator will put it in.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.draw import polygon as draw_polygon
from skimage.segmentation import felzenszwalb

from harmonylib.data.builtin.photos import _horse
from harmonylib.imageproc import FG_BIN_LABELS, evaluation_mask, fg_bin_index, fg_ratio

# Accepted measured ratios per bin. Bin 0 needs a mask that survives the 256 resize;
# bin 2 stays below 0.9 (a "foreground" covering nearly all the image is not a composite).
_ACCEPT = ((0.004, 0.05), (0.05, 0.15), (0.15, 0.9))
_MASK_METHODS = ("segments", "shape", "silhouette")
_MASK_WEIGHTS = (0.55, 0.3, 0.15)


def fg_ratio_256(mask: np.ndarray) -> float:
    """Foreground ratio of a boolean mask as the evaluator measures it (dither, NEAREST to 256)."""
    img = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L")
    return fg_ratio(evaluation_mask(img, 256, "dither"))


def fg_bin(ratio: float) -> int:
    """Index of the evaluator's foreground-ratio bin holding ``ratio`` (imageproc.fg_bin_index)."""
    return int(fg_bin_index(ratio))


def _target_ratio(b: int, rng: np.random.Generator) -> float:
    if b == 0:
        return float(rng.uniform(0.012, 0.045))
    if b == 1:
        return float(rng.uniform(0.06, 0.14))
    return float(math.exp(rng.uniform(math.log(0.17), math.log(0.6))))  # skewed to smaller objects


def _segments_mask(img: np.ndarray, target: float, rng: np.random.Generator) -> np.ndarray | None:
    """A union of adjacent Felzenszwalb segments of ``img`` covering about ``target`` of it."""
    h, w = img.shape[:2]
    labels = felzenszwalb(img, scale=float(rng.uniform(40, 160)), sigma=0.6, min_size=max(4, h * w // 400))
    n = int(labels.max()) + 1
    areas = np.bincount(labels.ravel(), minlength=n)
    want = target * h * w
    pairs = np.concatenate(
        [
            np.stack([labels[:, 1:].ravel(), labels[:, :-1].ravel()], 1),
            np.stack([labels[1:, :].ravel(), labels[:-1, :].ravel()], 1),
        ]
    )
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.concatenate([pairs, pairs[:, ::-1]]), axis=0)
    neighbours = [set() for _ in range(n)]
    for a, b in pairs:
        neighbours[a].add(int(b))
    seeds = np.nonzero(areas <= want * 1.15)[0]
    if len(seeds) == 0:
        return None
    region = {int(rng.choice(seeds))}
    area = int(areas[next(iter(region))])
    while area < want * 0.9:
        cands = sorted(set().union(*(neighbours[r] for r in region)) - region)
        cands = [c for c in cands if area + areas[c] <= want * 1.2]
        if not cands:
            break
        c = int(rng.choice(cands))
        region.add(c)
        area += int(areas[c])
    mask = ndimage.binary_fill_holes(np.isin(labels, sorted(region)))
    # reject thin structures (a horizon line, a wire): objects survive a 3x3 opening
    if ndimage.binary_opening(mask, np.ones((3, 3), bool)).sum() < 0.5 * mask.sum():
        return None
    return mask


def _shape_mask(h: int, w: int, target: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random star-shaped blob (low-order Fourier radius) of area about ``target``."""
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0, 0.3 / (k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = np.maximum(r, 0.2)
    stretch = math.exp(rng.uniform(-0.5, 0.5))
    rot = rng.uniform(0, np.pi)
    x = r * np.cos(theta) * stretch
    y = r * np.sin(theta) / stretch
    x, y = x * math.cos(rot) - y * math.sin(rot), x * math.sin(rot) + y * math.cos(rot)
    area1 = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))  # shoelace
    s = math.sqrt(target * h * w / area1)
    x, y = x * s, y * s
    cx = rng.uniform(min(x.max(), w / 2), max(w - x.max(), w / 2))
    cy = rng.uniform(min(y.max(), h / 2), max(h - y.max(), h / 2))
    mask = np.zeros((h, w), dtype=bool)
    rr, cc = draw_polygon(y + cy, x + cx, shape=(h, w))
    mask[rr, cc] = True
    return mask


def _silhouette_mask(h: int, w: int, target: float, rng: np.random.Generator) -> np.ndarray | None:
    """The horse silhouette, scaled to area about ``target``, maybe mirrored, placed at random."""
    horse = _horse()
    if horse is None:
        return None
    s = math.sqrt(target * h * w / horse.sum())
    hh, ww = max(1, round(horse.shape[0] * s)), max(1, round(horse.shape[1] * s))
    if hh > h or ww > w:
        return None
    sil = np.asarray(Image.fromarray(horse.astype(np.uint8) * 255).resize((ww, hh), Image.BILINEAR)) > 127
    if rng.random() < 0.5:
        sil = sil[:, ::-1]
    y0 = int(rng.integers(0, h - hh + 1))
    x0 = int(rng.integers(0, w - ww + 1))
    mask = np.zeros((h, w), dtype=bool)
    mask[y0 : y0 + hh, x0 : x0 + ww] = sil
    return mask


def make_mask(img: np.ndarray, b: int, rng: np.random.Generator) -> tuple[np.ndarray, str, float]:
    """An object-like mask for uint8 ``img`` whose evaluator-measured fg ratio lies in bin ``b``.

    Returns:
        (bool mask (H, W), method, measured ratio).
    """
    h, w = img.shape[:2]
    lo, hi = _ACCEPT[b]
    for attempt in range(12):
        target = _target_ratio(b, rng)
        method = (
            _MASK_METHODS[int(rng.choice(len(_MASK_METHODS), p=_MASK_WEIGHTS))] if attempt < 8 else "shape"
        )
        if method == "segments":
            mask = _segments_mask(img, target, rng)
        elif method == "silhouette":
            mask = _silhouette_mask(h, w, target, rng)
        else:
            mask = _shape_mask(h, w, target, rng)
        if mask is None:
            continue
        ratio = fg_ratio_256(mask)
        if lo <= ratio < hi:
            return mask, method, ratio
    # Rare: shrink or grow a blob until it fits.
    target = (lo + hi) / 2 if b < 2 else 0.25
    for _ in range(50):
        mask = _shape_mask(h, w, target, rng)
        ratio = fg_ratio_256(mask)
        if lo <= ratio < hi:
            return mask, "shape", ratio
        target *= 0.9 if ratio >= hi else 1.1
    raise RuntimeError(f"could not make a mask in fg bin {FG_BIN_LABELS[b]} for a {w}x{h} image")

"""Recolouring a foreground region, the way iHarmony4 made its composites.

iHarmony4 (Cong et al., CVPR 2020, §3) built HCOCO/HFlickr composites by colour transfer from
another photo (statistics transfer, histogram matching, ...), HAdobe5k by swapping in the same
region from a differently retouched version, and Hday2night from another capture time. The
built-in dataset (:mod:`harmonylib.data.builtin`) imitates these with the functions below, then
scales each change to a calibrated strength with :func:`blend_toward` (the parameter ranges below,
e.g. :data:`EXPOSURE_FACTOR`, therefore bound the largest change rather than set the typical one).

All functions are pure numpy on float RGB images in [0, 1] of shape (H, W, 3). A ``mask``
(H, W) (bool, or float thresholded at 0.5) selects the region to change; pixels outside it are
returned unchanged, bit for bit. Randomness comes only from the ``rng`` passed to
:func:`recolor`.

:func:`reinhard_transfer` is public on purpose: it is also the classical colour-statistics
baseline (Reinhard et al., "Color transfer between images", 2001), applied foreground <- background.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from skimage import color

RECOLOR_METHODS = ("reinhard", "histogram", "exposure", "gamma", "saturation", "white_balance")
# Methods that need a second photo to take colours from.
REFERENCE_METHODS = ("reinhard", "histogram")

_EPS = 1e-6


def _region(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """A bool (H, W) region; ``None`` means the whole image."""
    if mask is None:
        return np.ones(shape[:2], dtype=bool)
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {m.shape} does not match image shape {shape[:2]}")
    return m if m.dtype == bool else m >= 0.5


def _check_image(img: np.ndarray, name: str) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name}: expected an (H, W, 3) RGB image, got shape {img.shape}")
    return img


def _paste(src: np.ndarray, region: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``src`` with ``values`` (N, 3) written into ``region``, clipped to [0, 1]."""
    out = src.copy()
    out[region] = np.clip(values, 0.0, 1.0)
    return out


def reinhard_transfer(
    src: np.ndarray,
    src_mask: np.ndarray | None,
    ref: np.ndarray,
    ref_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Give the ``src_mask`` region of ``src`` the Lab mean and std of ``ref``'s ``ref_mask`` region.

    Args:
        src: (H, W, 3) float RGB in [0, 1], the image to change.
        src_mask: (H, W) region of ``src`` to change (``None``: whole image).
        ref: (H', W', 3) float RGB in [0, 1], where the colour statistics come from.
        ref_mask: (H', W') region of ``ref`` to measure (``None``: whole image).

    Returns:
        (H, W, 3) float RGB in [0, 1]; outside ``src_mask`` equal to ``src``.
    """
    src = _check_image(src, "src")
    ref = _check_image(ref, "ref")
    region = _region(src_mask, src.shape)
    ref_region = _region(ref_mask, ref.shape)
    if not region.any() or not ref_region.any():
        return src.copy()
    src_lab = color.rgb2lab(src)[region]  # (N, 3)
    ref_lab = color.rgb2lab(ref)[ref_region]  # (M, 3)
    mu_s, sd_s = src_lab.mean(0), src_lab.std(0)
    mu_r, sd_r = ref_lab.mean(0), ref_lab.std(0)
    lab = (src_lab - mu_s) * (sd_r / np.maximum(sd_s, _EPS)) + mu_r
    lab[:, 0] = np.clip(lab[:, 0], 0.0, 100.0)
    with warnings.catch_warnings():  # out-of-gamut Lab values are clipped, which is what we want
        warnings.simplefilter("ignore", UserWarning)
        rgb = color.lab2rgb(lab[None])[0]  # (N, 3)
    return _paste(src, region, rgb)


def histogram_match(
    src: np.ndarray,
    src_mask: np.ndarray | None,
    ref: np.ndarray,
    ref_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Match each RGB channel's histogram in ``src_mask`` to that of ``ref`` in ``ref_mask``.

    Quantile mapping per channel, as ``skimage.exposure.match_histograms`` does, restricted to
    the two regions.
    """
    src = _check_image(src, "src")
    ref = _check_image(ref, "ref")
    region = _region(src_mask, src.shape)
    ref_region = _region(ref_mask, ref.shape)
    if not region.any() or not ref_region.any():
        return src.copy()
    vals = src[region]  # (N, 3)
    refv = ref[ref_region]  # (M, 3)
    out = np.empty_like(vals)
    for c in range(3):
        s_vals, s_idx, s_counts = np.unique(vals[:, c], return_inverse=True, return_counts=True)
        r_vals, r_counts = np.unique(refv[:, c], return_counts=True)
        s_q = np.cumsum(s_counts) / vals.shape[0]
        r_q = np.cumsum(r_counts) / refv.shape[0]
        out[:, c] = np.interp(s_q, r_q, r_vals)[s_idx.ravel()]
    return _paste(src, region, out)


def adjust_exposure(img: np.ndarray, mask: np.ndarray | None, factor: float) -> np.ndarray:
    """Multiply the region by ``factor`` (a brighter or darker exposure)."""
    img = _check_image(img, "img")
    region = _region(mask, img.shape)
    return _paste(img, region, img[region] * factor)


def adjust_gamma(img: np.ndarray, mask: np.ndarray | None, gamma: float) -> np.ndarray:
    """Raise the region to the power ``gamma`` (< 1 lifts shadows, > 1 deepens them)."""
    img = _check_image(img, "img")
    region = _region(mask, img.shape)
    return _paste(img, region, np.power(np.clip(img[region], 0.0, 1.0), gamma))


def adjust_saturation(img: np.ndarray, mask: np.ndarray | None, factor: float) -> np.ndarray:
    """Scale the region's distance from its own luminance by ``factor`` (0: grey)."""
    img = _check_image(img, "img")
    region = _region(mask, img.shape)
    vals = img[region]  # (N, 3)
    lum = vals @ np.array([0.299, 0.587, 0.114])  # (N,) Rec. 601 luma
    return _paste(img, region, lum[:, None] + factor * (vals - lum[:, None]))


def white_balance_shift(img: np.ndarray, mask: np.ndarray | None, gains: np.ndarray) -> np.ndarray:
    """Multiply the region's R, G, B by ``gains`` (3,), a colour-temperature / tint shift."""
    img = _check_image(img, "img")
    gains = np.asarray(gains, dtype=np.float64).reshape(3)
    region = _region(mask, img.shape)
    return _paste(img, region, img[region] * gains)


def blend_toward(
    img: np.ndarray, recolored: np.ndarray, mask: np.ndarray | None, target_fmse: float
) -> tuple[np.ndarray, float]:
    """Mix ``recolored`` with ``img`` inside ``mask`` so the region's error is ``target_fmse``.

    The result is ``img + alpha * (recolored - img)`` inside the region (``img`` outside, bit for
    bit), with ``alpha = min(1, sqrt(target_fmse / full))``, where ``full`` is the region's mean
    squared difference between ``recolored`` and ``img`` over pixels and channels, in 8-bit units
    (the unit of the evaluator's fMSE). ``alpha`` never exceeds 1: a recolouring weaker than the
    target is kept whole.

    Returns:
        (the mixed (H, W, 3) image, ``alpha``).
    """
    img = _check_image(img, "img")
    recolored = _check_image(recolored, "recolored")
    region = _region(mask, img.shape)
    if not region.any():
        return img.copy(), 1.0
    diff = recolored[region] - img[region]  # (N, 3)
    full = float(np.mean((255.0 * diff) ** 2))
    alpha = 1.0 if full <= max(target_fmse, 0.0) else math.sqrt(max(target_fmse, 0.0) / full)
    return _paste(img, region, img[region] + alpha * diff), alpha


# Parameter ranges of the parametric edits. They set the kind and the largest size of the change;
# the builtin generator then scales each composite's change to a drawn strength (blend_toward).
EXPOSURE_FACTOR = (1.3, 2.5)  # brighter x f or darker / f
GAMMA = (1.4, 2.8)  # gamma g or 1 / g
SATURATION_LOW = (0.0, 0.4)  # desaturate (half the draws) ...
SATURATION_HIGH = (2.0, 4.0)  # ... or oversaturate
WB_WARM = (0.25, 0.6)  # red/blue gain offset, either sign
WB_TINT = 0.2  # green gain offset in [-WB_TINT, WB_TINT]


def _away_from_one(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A factor in [1/hi, 1/lo] or [lo, hi] (lo > 1), each side equally likely."""
    f = float(rng.uniform(lo, hi))
    return f if rng.random() < 0.5 else 1.0 / f


def _wb_gains(rng: np.random.Generator) -> np.ndarray:
    warm = float(rng.uniform(*WB_WARM)) * (1 if rng.random() < 0.5 else -1)  # red <-> blue
    tint = float(rng.uniform(-WB_TINT, WB_TINT))  # green <-> magenta
    return np.array([1.0 + warm, 1.0 + tint, 1.0 - warm])


def _saturation_factor(rng: np.random.Generator) -> float:
    return float(rng.uniform(*SATURATION_LOW)) if rng.random() < 0.5 else float(rng.uniform(*SATURATION_HIGH))


_RANDOM: dict[str, Callable[..., np.ndarray]] = {
    "exposure": lambda img, m, rng: adjust_exposure(img, m, _away_from_one(rng, *EXPOSURE_FACTOR)),
    "gamma": lambda img, m, rng: adjust_gamma(img, m, _away_from_one(rng, *GAMMA)),
    "saturation": lambda img, m, rng: adjust_saturation(img, m, _saturation_factor(rng)),
    "white_balance": lambda img, m, rng: white_balance_shift(img, m, _wb_gains(rng)),
}


def recolor(
    fg_image: np.ndarray,
    mask: np.ndarray | None,
    method: str,
    rng: np.random.Generator,
    reference: np.ndarray | None = None,
    reference_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Recolour the ``mask`` region of ``fg_image`` by ``method`` with random parameters.

    Args:
        fg_image: (H, W, 3) float RGB in [0, 1].
        mask: (H, W) region to change.
        method: one of :data:`RECOLOR_METHODS`.
        rng: the only source of randomness (parameters of the parametric methods).
        reference: (H', W', 3) photo to take colours from; required by ``reinhard`` and
            ``histogram``.
        reference_mask: region of ``reference`` to measure (``None``: whole photo).

    Returns:
        (H, W, 3) float RGB in [0, 1], unchanged outside ``mask``.

    Raises:
        ValueError: unknown method (the message lists the allowed ones), or a reference method
            without a reference.
    """
    if method not in RECOLOR_METHODS:
        raise ValueError(f"unknown recolour method {method!r}; allowed: {list(RECOLOR_METHODS)}")
    if method in REFERENCE_METHODS:
        if reference is None:
            raise ValueError(f"recolour method {method!r} needs a reference photo")
        fn = reinhard_transfer if method == "reinhard" else histogram_match
        return fn(fg_image, mask, reference, reference_mask)
    return _RANDOM[method](fg_image, mask, rng)

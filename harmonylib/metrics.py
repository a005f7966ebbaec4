"""Per-image harmonization metrics and the authors' 256×256 evaluation protocol.

Two layers, both free of file IO:

* Metric functions on numpy arrays on the 0–255 scale: :func:`mse`, :func:`psnr`, :func:`fmse`,
  :func:`bmse`, :func:`fg_ratio`, and :func:`batch_metrics`, which computes all of them for a
  stack of images at once (the evaluator's fast path; it gives the same numbers as the
  per-image functions).
* The protocol that turns a prediction, its ground truth, its mask (and, optionally, its
  composite) into the arrays that are scored: :func:`prepare_protocol_arrays` and its parts.

The protocol is the authors' evaluator, ``scripts/evaluate/main.py`` of nicecv/DiffHarmony run
as in ``scripts/evaluate.sh`` (official-implementation.md §7):

1. prediction and ground truth are RGB, resized to 256×256 with PIL BILINEAR (PIL antialiases
   when it downscales); the prediction only if it is not 256×256 already;
2. the mask is ``convert("1")`` (Floyd–Steinberg dithering, at the file's resolution), then
   resized to 256×256 with NEAREST, giving {0, 1}. The training threshold is not used;
3. the ground-truth background is pasted into the prediction, ``out·M + gt·(1−M)``
   (``--use_gt_bg``); our switch also allows the composite's background, or no paste;
4. MSE = mean over H·W·3 of (out−gt)²; PSNR = 10·log10(255²/MSE); fMSE and bMSE are the
   same mean restricted to the foreground / background pixels; fg_ratio = ΣM/(H·W) at 256.

Every input is uint8 and the mask is binary, so all squared errors are integers. The fast path
(:func:`squared_error_sums`, :func:`metrics_from_sums`) sums them exactly in integers and divides
once in float64; the result equals the float64 mean of the per-image functions (and the authors'
float32-then-float64 skimage computation, which is exact for integer-valued inputs).

Edge cases the authors leave unhandled (official-implementation.md §10 item 11) are defined here:
an empty mask gives fMSE = NaN and a full mask gives bMSE = NaN (never 0, and never averaged in;
see ``harmonylib.evaluation.aggregate``); identical images give MSE = 0 and PSNR = +inf.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

# the protocol's resize and mask rule, and the foreground-ratio bins, live in imageproc (shared
# with the data builders); re-exported here because they are part of the evaluation protocol
from harmonylib.imageproc import (  # noqa: F401
    FG_BIN_LABELS,
    FG_BINS,
    MASK_MODES,
    MaskMode,
    evaluation_mask,
    fg_bin_index,
    fg_ratio,
    resize_rgb,
)

PEAK = 255.0
Background = Literal["gt", "composite", "none"]
BACKGROUNDS = ("gt", "composite", "none")


# --------------------------------------------------------------------------------------------
# Per-image metrics (float64, 0–255 scale)
# --------------------------------------------------------------------------------------------


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)


def _mask_2d(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]  # (H, W, 1) -> (H, W)
    if m.shape != shape[:2]:
        raise ValueError(f"mask shape {np.shape(mask)} does not match image shape {shape}")
    return m


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel and channel, in float64.

    Args:
        a, b: arrays of the same shape, e.g. (H, W, 3), on the same scale.

    Returns:
        The mean of ``(a - b)**2``.
    """
    a, b = _check_pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr_from_mse(err: float | np.ndarray, peak: float = PEAK) -> float | np.ndarray:
    """PSNR in dB from an MSE: ``10·log10(peak²/err)``; ``err == 0`` gives ``+inf``."""
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10((peak * peak) / err)
    return float(out) if out.ndim == 0 else out


def psnr(a: np.ndarray, b: np.ndarray, peak: float = PEAK) -> float:
    """Peak signal-to-noise ratio in dB with a fixed peak (255, as the authors' ``data_range``).

    Args:
        a, b: arrays of the same shape on the 0–``peak`` scale.
        peak: the data range; 255 for 8-bit images.

    Returns:
        ``10·log10(peak²/MSE)``; ``+inf`` for identical arrays.
    """
    return psnr_from_mse(mse(a, b), peak)


def _masked_mse(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> float:
    a, b = _check_pair(a, b)
    w = _mask_2d(weights, a.shape)
    n = float(w.sum())
    if n == 0.0:
        return float("nan")
    sq = (a - b) ** 2
    if sq.ndim == 3:
        sq = sq.sum(axis=-1)  # (H, W, C) -> (H, W)
        channels = a.shape[-1]
    else:
        channels = 1
    return float((sq * w).sum() / (channels * n))


def fmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Foreground MSE: ``Σ_fg (a−b)² / (C·N_fg)``.

    Equals the authors' ``MSE(a·M, b·M)·H·W/ΣM`` for a binary mask. A soft mask acts as weights.

    Args:
        a, b: (H, W, C) or (H, W) arrays.
        mask: (H, W) or (H, W, 1) foreground mask in [0, 1].

    Returns:
        The foreground MSE, or NaN when the mask is empty.
    """
    return _masked_mse(a, b, mask)


def bmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Background MSE: :func:`fmse` over ``1 − mask``; NaN when the mask covers everything."""
    return _masked_mse(a, b, 1.0 - _mask_2d(mask, np.shape(a)))


def squared_error_sums(pred: np.ndarray, real: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer sums of squared errors over the foreground and over the whole image.

    Args:
        pred, real: (..., H, W, C) uint8, one image or a stack.
        mask: (..., H, W) bool foreground.

    Returns:
        ``(fg_sum, total_sum)``, int64 of the leading shape (a 0-d array for one image). The
        background sum is ``total_sum - fg_sum``.
    """
    if pred.shape != real.shape or pred.ndim < 3:
        raise ValueError(f"pred and real must be (..., H, W, C) of one shape: {pred.shape}, {real.shape}")
    if pred.dtype != np.uint8 or real.dtype != np.uint8:
        raise TypeError("squared_error_sums expects uint8 images (exact integer arithmetic)")
    *lead, h, w, c = pred.shape
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (*lead, h, w):
        raise ValueError(f"mask shape {mask.shape} does not match images {pred.shape}")
    d = np.subtract(pred, real, dtype=np.int16)  # (..., H, W, C) in [-255, 255]
    np.multiply(d, d, out=d)  # wraps in int16, but 255² < 2¹⁶: read back as uint16 it is exact
    sq = d.view(np.uint16).reshape(*lead, h * w * c)  # (..., H·W·C)
    m = np.repeat(mask.reshape(*lead, h * w), c, axis=-1)  # (..., H·W·C), channel-fastest as sq
    # Integer sums are exact (≤ H·W·C·255² ≪ 2⁶³); one float64 division later gives the exact mean.
    total = sq.sum(axis=-1, dtype=np.uint64).astype(np.int64)
    fg = sq.sum(axis=-1, dtype=np.uint64, where=m).astype(np.int64)
    return fg, total


def metrics_from_sums(
    fg_sum: np.ndarray, bg_sum: np.ndarray, n_fg: np.ndarray, n_pixels: int, channels: int = 3
) -> dict[str, np.ndarray]:
    """Per-image metrics from squared-error sums over foreground and background pixels.

    Args:
        fg_sum, bg_sum: (N,) sums of squared errors over the foreground / background (all channels).
        n_fg: (N,) foreground pixel counts.
        n_pixels: H·W.
        channels: C.

    Returns:
        A dict of float64 arrays of shape (N,): ``fg_ratio``, ``mse``, ``psnr``, ``fmse``,
        ``bmse``; fMSE is NaN where ``n_fg == 0``, bMSE where ``n_fg == n_pixels``, PSNR +inf
        where MSE is 0.
    """
    fg_sum = np.asarray(fg_sum, dtype=np.int64)
    bg_sum = np.asarray(bg_sum, dtype=np.int64)
    n_fg = np.asarray(n_fg, dtype=np.int64)
    n_bg = n_pixels - n_fg
    err = (fg_sum + bg_sum) / float(n_pixels * channels)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(n_fg > 0, fg_sum / (channels * n_fg).astype(np.float64), np.nan)
        b = np.where(n_bg > 0, bg_sum / (channels * n_bg).astype(np.float64), np.nan)
    return {
        "fg_ratio": n_fg / float(n_pixels),
        "mse": err,
        "psnr": np.asarray(psnr_from_mse(err), dtype=np.float64).reshape(err.shape),
        "fmse": f,
        "bmse": b,
    }


def batch_metrics(pred: np.ndarray, real: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """All per-image metrics for a stack of already-prepared uint8 images, vectorised.

    The background must already be pasted (see :func:`paste_background`); this only scores.

    Args:
        pred: (N, H, W, 3) uint8 predictions.
        real: (N, H, W, 3) uint8 ground truth.
        mask: (N, H, W) bool foreground masks.

    Returns:
        A dict of float64 arrays of shape (N,): ``fg_ratio``, ``mse``, ``psnr``, ``fmse``,
        ``bmse``. NaN where a mask is empty (fmse) or full (bmse), inf PSNR where MSE is 0.
    """
    if pred.ndim != 4:
        raise ValueError(f"pred must be (N, H, W, C), got {pred.shape}")
    fg, total = squared_error_sums(pred, real, mask)
    n, h, w, c = pred.shape
    n_fg = np.asarray(mask, dtype=bool).reshape(n, h * w).sum(axis=1)
    return metrics_from_sums(fg, total - fg, n_fg, h * w, c)


# --------------------------------------------------------------------------------------------
# The protocol: resize, binarise, paste
# --------------------------------------------------------------------------------------------


def paste_background(pred: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``pred·M + background·(1−M)`` for a binary mask, exactly, in uint8.

    Args:
        pred, background: (..., H, W, 3) uint8.
        mask: (..., H, W) bool.
    """
    return np.where(np.asarray(mask, dtype=bool)[..., None], pred, background)


def prepare_protocol_arrays(
    pred_img: Image.Image,
    real_img: Image.Image,
    mask_img: Image.Image,
    composite_img: Image.Image | None = None,
    resolution: int = 256,
    background: Background = "gt",
    mask_mode: MaskMode = "dither",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the evaluation protocol to one sample's images.

    Args:
        pred_img, real_img: RGB PIL images (any size).
        mask_img: the mask image ("L"; any size).
        composite_img: the composite, needed only for ``background="composite"``.
        resolution: the side the metrics are computed at (256 in the paper).
        background: ``"gt"`` pastes the ground-truth background into the prediction (authors'
            ``--use_gt_bg``), ``"composite"`` pastes the composite's, ``"none"`` scores raw.
        mask_mode: ``"dither"`` (authors') or ``"threshold"``; see :func:`harmonylib.imageproc.evaluation_mask`.

    Returns:
        ``(pred, real, mask)``: (R, R, 3) uint8, (R, R, 3) uint8, (R, R) bool; ``pred`` has
        its background pasted. Score them with :func:`batch_metrics` or the per-image functions.
    """
    if background not in BACKGROUNDS:
        raise ValueError(f"background {background!r} is not one of {list(BACKGROUNDS)}")
    pred = resize_rgb(pred_img, resolution)
    real = resize_rgb(real_img, resolution)
    mask = evaluation_mask(mask_img, resolution, mask_mode)
    if background == "gt":
        pred = paste_background(pred, real, mask)
    elif background == "composite":
        if composite_img is None:
            raise ValueError("background='composite' needs composite_img")
        pred = paste_background(pred, resize_rgb(composite_img, resolution), mask)
    return pred, real, mask

"""The peers' metric conventions: one definition each, one scorer for them all.

Harmonization papers all report MSE, PSNR and fMSE on iHarmony4, but each codebase computes
them its own way (peers.md §5): where images are resized, whether the mask is soft, whether
predictions are quantised, which PSNR peak, how fMSE treats an empty mask, how the
foreground-ratio bins close. A :class:`Convention` pins those choices down, and
:func:`score_sample` scores one sample under it. ``harmonylib.evaluation`` runs it over a test
set (``evaluate_predictions(..., EvalConfig(convention=NAME))``, ``harmonylib evaluate
--convention NAME``).

``diffharmony`` (the default) is the authors' evaluator; the evaluator keeps its exact integer
fast path for it, and the definition here is the same protocol, stated for the provenance.

What a convention does *not* decide: which background is pasted into the prediction before
scoring. That stays ``EvalConfig.background`` for every convention (default ``gt``, the
authors' ``--use_gt_bg``), so that a side table moves one thing only, the metric convention.
The peers paste nothing at evaluation: their models blend with the composite themselves (§5,
"Background paste"), which ``--background composite`` imitates. A soft-mask convention pastes
with its soft mask as weights, ``pred·M + B·(1 − M)``.

Every convention reports bMSE as ``Σ (1 − M)·(p − g)² / (3·Σ (1 − M))`` (NaN for a full mask);
no peer reports it, so this is ours.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from harmonylib.float_predictions import load_prediction
from harmonylib.io import load_mask_l, load_rgb
from harmonylib.metrics import evaluation_mask, resize_rgb

Peak = Literal["255", "target_max", "pred_range"]
FmseRule = Literal["foreground", "soft_eps", "full_mse_ratio"]
BinRule = Literal["[lo,hi)", "[lo,hi]", "(lo,hi]"]
DEFAULT_CONVENTION = "diffharmony"
FG_BIN_EDGES = (0.0, 0.05, 0.15, 1.0)  # the three bins every peer uses: 0-5 %, 5-15 %, 15-100 %


@dataclass(frozen=True)
class Convention:
    """One peer's way of scoring a harmonized image.

    Attributes:
        name: the ``--convention`` value.
        resolution: the side images are resized to, or None for the ground truth's own size.
        resize: ``"pil"`` (PIL bilinear, antialiased when shrinking, binarised mask resized
            NEAREST), ``"opencv"`` (OpenCV-style bilinear without antialiasing, images *and*
            soft mask) or ``"none"``.
        soft_mask: the mask is the file's grey level / 255 (kept soft), not binarised.
        float_predictions: read ``.npy`` / 16-bit PNG predictions when present.
        masked_mse: MSE is ``mean(M·(p − g)²)`` over the whole image instead of ``mean((p − g)²)``.
        peak: the PSNR peak: 255, the target's max, or ``pred.max() − pred.min()``.
        eps: added to the MSE inside PSNR and to fMSE's denominator (the iSSAM family's 1e-6).
        fmse: ``"foreground"``: Σ M·d / (3·ΣM), NaN when ΣM = 0; ``"soft_eps"``: Σ M·d /
            (3·ΣM + eps), 0 when ΣM = 0; ``"full_mse_ratio"``: MSE·H·W / ΣM, NaN when ΣM = 0.
        fg_threshold: a soft mask counts a pixel as foreground for ``fg_ratio`` above this.
        bins: how the foreground-ratio bins close.
        source: where the peers' code says so.
    """

    name: str
    resolution: int | None
    resize: Literal["pil", "opencv", "none"]
    soft_mask: bool
    float_predictions: bool
    masked_mse: bool
    peak: Peak
    eps: float
    fmse: FmseRule
    fg_threshold: float
    bins: BinRule
    source: str

    def __post_init__(self):
        if self.float_predictions and self.resize == "pil":
            raise ValueError(f"{self.name}: float predictions need the 'opencv' or 'none' resize")

    def definition(self) -> str:
        """The convention in one paragraph, for docstrings, provenance and reports."""
        size = f"resized to {self.resolution}" if self.resolution else "at the ground truth's own size"
        mask = "soft mask (grey/255, kept soft)" if self.soft_mask else "binarised mask (convert('1'))"
        preds = "float predictions (.npy / 16-bit PNG) else uint8" if self.float_predictions else "uint8"
        mse = "mean(M·(p−g)²)" if self.masked_mse else "mean((p−g)²)"
        peak = {"255": "255", "target_max": "target.max()", "pred_range": "pred.max()−pred.min()"}[self.peak]
        eps = f" + {self.eps:g}" if self.eps else ""
        fmse = {
            "foreground": "Σ M·(p−g)² / (3·ΣM), NaN for an empty mask",
            "soft_eps": f"Σ M·(p−g)² / (3·ΣM{eps}), 0 for an empty mask",
            "full_mse_ratio": "MSE·H·W / ΣM, NaN for an empty mask",
        }[self.fmse]
        return (
            f"{self.name}: images {size} ({self.resize} resize), {mask}, {preds} predictions; "
            f"MSE = {mse}; PSNR = 10·log10({peak}² / (MSE{eps})); fMSE = {fmse}; "
            f"fg_ratio = mean(M > {self.fg_threshold:g}); bins {self.bins} at {list(FG_BIN_EDGES)}. "
            f"Source: {self.source}."
        )


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        # The authors' evaluator (official-implementation.md §7): 256 antialiased, dithered mask,
        # uint8 PNGs, peak 255. harmonylib's bins close the last one so that r = 1 counts.
        Convention(
            "diffharmony",
            256,
            "pil",
            False,
            False,
            False,
            "255",
            0.0,
            "foreground",
            0.5,
            "[lo,hi)",
            "nicecv/DiffHarmony scripts/evaluate/main.py (official-implementation.md §7; peers.md §5)",
        ),
        # iSSAM family (iSSAM, DucoNet, CDTNet, DCCF, INR; peers.md §3, §5): albumentations
        # Resize(256) = OpenCV bilinear on images and mask (no_nearest_for_masks), float outputs,
        # iharm/inference/metrics.py: PSNR peak target.max() with +1e-6, fMSE + 1e-6;
        # scripts/evaluate_model_fg_ratios.py: mask > 0.5, bins inclusive on both ends.
        Convention(
            "issam",
            256,
            "opencv",
            True,
            True,
            False,
            "target_max",
            1e-6,
            "soft_eps",
            0.5,
            "[lo,hi]",
            "SamsungLabs/image_harmonization iharm/inference/metrics.py, scripts/evaluate_model_fg_ratios.py"
            " (peers.md §5)",
        ),
        # PCT-Net / AICT (peers.md §3, §5): --res FR, no resize; iharm/inference/metrics.py:
        # MSE = mean(mask·(p−g)²), PSNR = 10·log10(255² / (that + 1e-6)), fMSE as iSSAM. Its bins
        # are not stated in peers.md: the iSSAM family's (its code base) are used.
        Convention(
            "pctnet",
            None,
            "none",
            True,
            False,
            True,
            "255",
            1e-6,
            "soft_eps",
            0.5,
            "[lo,hi]",
            "rakutentech/PCT-Net-Image-Harmonization iharm/inference/metrics.py (peers.md §5)",
        ),
        # HDNet (peers.md §3, §5): uint8 outputs, skimage PSNR (peak 255), fMSE = MSE·HW/|fg|,
        # bins (lo, hi]. Its resize and mask binarisation are not stated: the authors' are kept.
        Convention(
            "hdnet",
            256,
            "pil",
            False,
            False,
            False,
            "255",
            0.0,
            "full_mse_ratio",
            0.5,
            "(lo,hi]",
            "chenhaoxing/HDNet train_evaluate.py (peers.md §5)",
        ),
        # Harmonizer src/val_harmonizer.py (peers.md §3, §5): tf.resize to 256 (PIL bilinear), mask
        # convert('1') then resized (NEAREST for mode "1"), fMSE = mse(p·M, g·M)·HW/|fg|, PSNR
        # data_range = pred.max() − pred.min(). No bins: the authors' are used.
        Convention(
            "harmonizer",
            256,
            "pil",
            False,
            False,
            False,
            "pred_range",
            0.0,
            "foreground",
            0.5,
            "[lo,hi)",
            "ZHKKKe/Harmonizer src/val_harmonizer.py (peers.md §5)",
        ),
    )
}


def get_convention(name: str) -> Convention:
    """The :class:`Convention` called ``name``; ValueError listing the known names otherwise."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"convention {name!r} is not one of {list(CONVENTIONS)}") from None


# --------------------------------------------------------------------------------------------
# Resizing
# --------------------------------------------------------------------------------------------


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV INTER_LINEAR sampling: source index pairs and the weight of the second, (n_out,)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5  # half-pixel centres
    i0 = np.floor(src).astype(np.int64)
    frac = src - i0
    low, high = src < 0, i0 >= n_in - 1  # OpenCV clamps: weight 0 on the border sample
    i0 = np.where(low, 0, np.where(high, n_in - 1, i0))
    frac = np.where(low | high, 0.0, frac)
    return i0, np.minimum(i0 + 1, n_in - 1), frac


def resize_bilinear_opencv(a: np.ndarray, resolution: int) -> np.ndarray:
    """OpenCV-style bilinear resize (``cv2.INTER_LINEAR``, no antialiasing) to (R, R).

    Args:
        a: (H, W) or (H, W, C) array, uint8 or float.
        resolution: output side R.

    Returns:
        Same dtype and channels. uint8 is computed in float64 and rounded half up; OpenCV's
        fixed-point arithmetic (11-bit weights) may differ by one level on rare pixels. OpenCV is
        not a dependency, so this is the same sampling written in numpy.
    """
    h, w = a.shape[:2]
    if (h, w) == (resolution, resolution):
        return a
    y0, y1, fy = _taps(h, resolution)
    x0, x1, fx = _taps(w, resolution)
    f = a.astype(np.float64)
    fx = fx[:, None] if f.ndim == 3 else fx
    top = f[y0][:, x0] * (1 - fx) + f[y0][:, x1] * fx  # (R, R[, C])
    bottom = f[y1][:, x0] * (1 - fx) + f[y1][:, x1] * fx
    wy = fy[:, None, None] if f.ndim == 3 else fy[:, None]
    out = top * (1 - wy) + bottom * wy
    if a.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------
# Preparing one sample
# --------------------------------------------------------------------------------------------


def _prepare_rgb(img: Image.Image | np.ndarray, conv: Convention) -> np.ndarray:
    """(R, R, 3) as ``conv`` resizes; float predictions only reach the ``opencv``/``none`` paths."""
    if conv.resize == "pil":
        pil = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8), "RGB")
        return resize_rgb(pil, conv.resolution)
    a = np.asarray(img)
    return resize_bilinear_opencv(a, conv.resolution) if conv.resize == "opencv" else a


def prepare_sample(
    pred_path: str | os.PathLike,
    real_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    conv: Convention,
    background: str = "gt",
    composite_path: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sample's arrays as ``conv`` scores them.

    Returns:
        ``(pred, real, mask)``: (R, R, 3) float64 prediction with its background pasted,
        (R, R, 3) float64 ground truth, (R, R) float64 mask weights in [0, 1] (R is the
        ground truth's own size when ``conv.resolution`` is None).

    Raises:
        ValueError: ``conv`` scores at full resolution and the prediction has another size
            (the message names the file).
    """
    real_img = load_rgb(real_path, exif_transpose=False)
    mask_img = load_mask_l(mask_path, exif_transpose=False)
    pred_raw = load_prediction(pred_path, allow_float=conv.float_predictions)  # (h, w, 3)
    if conv.resolution is None and pred_raw.shape[:2] != (real_img.height, real_img.width):
        raise ValueError(
            f"{pred_path}: prediction is {pred_raw.shape[1]}x{pred_raw.shape[0]}, but convention "
            f"{conv.name!r} scores at the ground truth's own size {real_img.width}x{real_img.height}"
        )
    real = _prepare_rgb(real_img, conv).astype(np.float64)
    pred = _prepare_rgb(pred_raw, conv).astype(np.float64)
    if conv.soft_mask:
        m = np.asarray(mask_img, dtype=np.float64) / 255.0  # (H, W) in [0, 1]
        mask = resize_bilinear_opencv(m, conv.resolution) if conv.resize == "opencv" else m
    else:
        mask = evaluation_mask(mask_img, conv.resolution, "dither").astype(np.float64)
    if background != "none":
        if background == "gt":
            bg = real
        elif background == "composite":
            if composite_path is None:
                raise ValueError("background='composite' needs the composite's path")
            bg = _prepare_rgb(load_rgb(composite_path, exif_transpose=False), conv).astype(np.float64)
        else:
            raise ValueError(f"background {background!r} is not one of ['gt', 'composite', 'none']")
        pred = pred * mask[..., None] + bg * (1.0 - mask[..., None])  # (R, R, 3)
    return pred, real, mask


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def score_arrays(pred: np.ndarray, real: np.ndarray, mask: np.ndarray, conv: Convention) -> dict[str, float]:
    """``fg_ratio``, ``mse``, ``psnr``, ``fmse``, ``bmse`` of prepared arrays under ``conv``.

    Args:
        pred, real: (H, W, 3) on the 0–255 scale.
        mask: (H, W) weights in [0, 1].
    """
    h, w, c = real.shape
    d = ((pred - real) ** 2).sum(axis=-1)  # (H, W): squared error summed over channels
    n_fg, n_bg = float(mask.sum()), float((1.0 - mask).sum())
    fg_sum = float((d * mask).sum())
    plain = float(d.sum()) / (h * w * c)
    mse = fg_sum / (h * w * c) if conv.masked_mse else plain
    peak = {"255": 255.0, "target_max": float(real.max()), "pred_range": float(pred.max() - pred.min())}[
        conv.peak
    ]
    denom = mse + conv.eps
    if peak == 0.0:
        psnr = -math.inf  # a black target or a flat prediction: log10(0)
    else:
        psnr = 10.0 * math.log10(peak * peak / denom) if denom > 0 else math.inf
    if conv.fmse == "soft_eps":
        fmse = fg_sum / (c * n_fg + conv.eps)
    elif n_fg == 0.0:
        fmse = math.nan
    elif conv.fmse == "full_mse_ratio":
        fmse = plain * (h * w) / n_fg
    else:
        fmse = fg_sum / (c * n_fg)
    bmse = float((d * (1.0 - mask)).sum()) / (c * n_bg) if n_bg > 0 else math.nan
    return {
        "fg_ratio": float((mask > conv.fg_threshold).mean()),
        "mse": mse,
        "psnr": psnr,
        "fmse": fmse,
        "bmse": bmse,
    }


def score_sample(sample, pred_path, conv: Convention, background: str = "gt") -> dict[str, float]:
    """Prepare and score one sample (``.real``, ``.mask``, ``.composite``) under ``conv``."""
    arrays = prepare_sample(pred_path, sample.real, sample.mask, conv, background, sample.composite)
    return score_arrays(*arrays, conv)


def fg_bin_members(ratio: np.ndarray, conv: Convention | str = DEFAULT_CONVENTION) -> np.ndarray:
    """(N, 3) bool: which foreground-ratio bins each ratio falls in under ``conv``.

    ``[lo,hi)``: half-open, except that the last bin holds r = 1 (harmonylib; the authors' drops
    it). ``[lo,hi]``: closed on both ends, so a ratio on an edge (0.05, 0.15) counts in two bins,
    as in iSSAM's ``evaluate_model_fg_ratios.py``. ``(lo,hi]``: HDNet's; r = 0 falls in no bin.
    """
    conv = get_convention(conv) if isinstance(conv, str) else conv
    r = np.asarray(ratio, dtype=np.float64)[:, None]  # (N, 1)
    lo, hi = np.array(FG_BIN_EDGES[:-1]), np.array(FG_BIN_EDGES[1:])  # (3,)
    if conv.bins == "[lo,hi]":
        return (r >= lo) & (r <= hi)
    if conv.bins == "(lo,hi]":
        return (r > lo) & (r <= hi)
    last = np.arange(len(lo)) == len(lo) - 1
    return (r >= lo) & ((r < hi) | (last & (r <= hi)))

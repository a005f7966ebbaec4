"""Image processing shared by models, pipeline, data and evaluation: resizing, mask binarisation.

One module for both mask rules, one name per meaning:

* :func:`threshold_mask` -- the **model-input** mask (training, inference, generation): foreground
  where the grey value is at least one half. Masks resized for a model are resized as 8-bit "L"
  images with the same bilinear filter as the RGB images, then thresholded (bilinear-then-threshold
  puts the resized boundary where area-weighted coverage crosses one half).
* :func:`evaluation_mask` -- the **evaluation** mask: the authors' ``convert("1")`` (Floyd-Steinberg
  dithering) at the file's resolution, then a NEAREST resize (official-implementation.md §7), for
  metric parity; ``mode="threshold"`` is the documented alternative.

Resizing: :func:`target_geometry` / :func:`resize_image` (the three resize modes of training and
inference, official-implementation.md §6, §10.17) and :func:`resize_rgb` (the evaluator's 256 px
resize). Foreground ratio and its bins (HDNet's, paper Table 3) are here too, because the data
builders stratify on them and the metrics report by them.

This module sits below both the core (models, pipeline, metrics) and the data layer: it imports
nothing from harmonylib.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

MaskMode = Literal["dither", "threshold"]
MASK_MODES = ("dither", "threshold")
ResizeMode = Literal["square", "center_crop", "keep_aspect"]
RESIZE_MODES = ("square", "center_crop", "keep_aspect")


# --------------------------------------------------------------------------------------------
# Masks: the model-input threshold and the evaluation dithering
# --------------------------------------------------------------------------------------------


def threshold_mask(x: Any) -> Any:
    """The model-input mask (training and inference): foreground where ``x >= 0.5``.

    ``uint8`` input (0..255) is thresholded at ``> 127`` (the same cut: 128/255 >= 0.5 > 127/255);
    float input is taken to be in [0, 1]. Returns float32 {0, 1} of the same shape, as a torch
    tensor for tensor input, else a numpy array.
    """
    if isinstance(x, torch.Tensor):
        fg = x > 127 if x.dtype == torch.uint8 else x >= 0.5
        return fg.to(torch.float32)
    if isinstance(x, Image.Image):
        x = np.asarray(x.convert("L"))
    arr = np.asarray(x)
    fg = arr > 127 if arr.dtype == np.uint8 else arr >= 0.5
    return fg.astype(np.float32)


def resize_rgb(img: Image.Image, resolution: int = 256) -> np.ndarray:
    """An RGB PIL image as a (R, R, 3) uint8 array, resized with PIL BILINEAR if not R×R.

    PIL's BILINEAR antialiases when downscaling, as ``torchvision.transforms.functional.resize``
    on a PIL image (what the authors call) does.
    """
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
    return np.asarray(img)


def evaluation_mask(mask_img: Image.Image, resolution: int = 256, mode: MaskMode = "dither") -> np.ndarray:
    """The evaluation mask, the authors' ``convert("1")`` dithering by default: a (R, R) bool array.

    ``"dither"`` (default, the authors'): ``convert("1")`` at the file's resolution, which applies
    Floyd–Steinberg dithering to grey values, then a NEAREST resize (PIL forces NEAREST for
    mode "1"). ``"threshold"``: ``> 127`` at the file's resolution, then NEAREST; documented
    alternative, closer to :func:`threshold_mask` (the model-input threshold).

    Args:
        mask_img: a single-channel ("L") mask image; other modes are converted to "L" first.
        resolution: output side.
        mode: ``"dither"`` or ``"threshold"``.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode {mode!r} is not one of {list(MASK_MODES)}")
    if mask_img.mode != "L":
        mask_img = mask_img.convert("L")
    size = (resolution, resolution)
    if mode == "threshold" or _is_binary(mask_img):
        # "> 127" is per pixel, so it commutes with NEAREST sampling: resize first, then threshold.
        # A mask that holds only 0 and 255 is unchanged by PIL's Floyd–Steinberg (no error to
        # diffuse), so for it dithering at full size is the same threshold: same result, less work.
        small = mask_img if mask_img.size == size else mask_img.resize(size, Image.Resampling.NEAREST)
        return np.asarray(small) > 127
    bilevel = mask_img.convert("1")  # Floyd–Steinberg, PIL's default dither
    if bilevel.size != size:
        bilevel = bilevel.resize(size, Image.Resampling.NEAREST)  # PIL's only choice for mode "1"
    return np.asarray(bilevel, dtype=bool)


def _is_binary(mask_img: Image.Image) -> bool:
    a = np.asarray(mask_img)
    return not np.any((a - np.uint8(1)) < 254)  # uint8 wrap: true for 1..254 only


# --------------------------------------------------------------------------------------------
# Resizing for models (three modes) and tensors
# --------------------------------------------------------------------------------------------


def _round8(v: float) -> int:
    return max(8, int(round(v / 8.0)) * 8)


def target_geometry(
    width: int, height: int, size: int, resize: str
) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """((resized width, height), crop box or None) for an image of ``width`` x ``height``.

    center_crop follows torchvision: ``Resize(size)`` gives the long side ``int(size * long / short)``
    and ``CenterCrop`` starts at ``round((side - size) / 2)``.
    """
    if resize == "square":
        return (size, size), None
    if resize == "center_crop":
        if width <= height:
            rw, rh = size, int(size * height / width)
        else:
            rw, rh = int(size * width / height), size
        left, top = int(round((rw - size) / 2.0)), int(round((rh - size) / 2.0))
        return (rw, rh), (left, top, left + size, top + size)
    if resize == "keep_aspect":
        s = size / min(width, height)
        return (_round8(width * s), _round8(height * s)), None
    raise ValueError(f"unknown resize mode {resize!r}; allowed: {list(RESIZE_MODES)}")


def resize_image(img: Image.Image, size: int, resize: str) -> np.ndarray:
    """``img`` resized (PIL BILINEAR, antialiased when downscaling) and cropped per :func:`target_geometry`."""
    (rw, rh), box = target_geometry(img.width, img.height, size, resize)
    out = img if img.size == (rw, rh) else img.resize((rw, rh), Image.BILINEAR)
    if box is not None:
        out = out.crop(box)
    return np.asarray(out)


# --------------------------------------------------------------------------------------------
# Foreground ratio and its bins
# --------------------------------------------------------------------------------------------


# Foreground-ratio bins of HDNet and the paper's Table 3: [0,.05), [.05,.15), [.15,1].
FG_BINS = ((0.0, 0.05), (0.05, 0.15), (0.15, 1.0))
FG_BIN_LABELS = ("0-5%", "5-15%", "15-100%")


def fg_bin_index(ratio: np.ndarray | float) -> np.ndarray:
    """Index into :data:`FG_BINS` of each foreground ratio: [0,.05)→0, [.05,.15)→1, [.15,1]→2.

    Unlike the authors' half-open [0.15, 1.0), r = 1 is put in the last bin.
    """
    inner = np.array([hi for _, hi in FG_BINS[:-1]])  # [0.05, 0.15]
    return np.searchsorted(inner, np.asarray(ratio, dtype=np.float64), side="right")


def fg_ratio(mask: np.ndarray) -> float:
    """Foreground ratio ``ΣM/(H·W)`` of a (H, W) or (H, W, 1) mask in [0, 1]."""
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    return float(m.mean())

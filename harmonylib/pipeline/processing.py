"""The pipeline's image pre- and post-processing: inputs to arrays, sizes, resizes, the output paste.

What :class:`~harmonylib.pipeline.DiffHarmonyPipeline` does before the models run (its steps 1-2)
and after they have run (step 8), kept apart from the denoising loop so that each can be read and
tested on its own:

- :func:`check_arguments`: step 1, each error naming the argument;
- input conversion: a path, PIL image, array or tensor becomes float32 numpy, (H, W, 3) images and
  (H, W) masks in [0, 1]; masks are then binarised by ``harmonylib.imageproc.threshold_mask``
  (the model-input threshold, >= 0.5) at the input's own size;
- :func:`processing_size`: the (H, W) the models run at (``"keep_aspect"`` or ``"square"``);
- :func:`prepare_samples`: step 2, one :class:`PreparedSample` per input with its processing and
  output sizes (and the empty / full mask warnings);
- the two resizes the pipeline uses, bilinear with antialias for images and nearest for the
  already binary masks, so a resized mask stays binary;
- :func:`finish_sample` / :func:`format_results`: step 8, the output size, the background paste
  and the requested output type; floats become uint8 by rounding (:func:`to_uint8`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from harmonylib.imageproc import threshold_mask  # the model-input mask threshold (>= 0.5), one place
from harmonylib.io import load_mask_l, load_rgb

SIZE_MODES = ("keep_aspect", "square")
DIRECTIONS = ("forward", "inverse")
OUTPUT_TYPES = ("pil", "np", "pt", "latent")
SIZE_MULTIPLE = 8  # processing sizes are multiples of 8 (the SD VAE's scale factor)


class EmptyMaskWarning(UserWarning):
    """A mask has no foreground pixel; the input is returned unchanged."""


class FullMaskWarning(UserWarning):
    """A mask covers the whole image; there is no background to harmonize against."""


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 by rounding (not truncating), clipped to [0, 255]."""
    return np.clip(np.round(np.asarray(images, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------
# Step 1: argument checks


def check_arguments(
    num_images: int,
    num_masks: int,
    num_inference_steps: int,
    output_type: str,
    direction: str,
    size_mode: str,
    size: int | None,
    height: int | None,
    width: int | None,
    generator: Any,
    refine: bool,
    has_refinement: bool,
) -> None:
    """Step 1 of a pipeline call: argument checks; each error names the argument."""
    if num_images == 0:
        raise ValueError("image: no input given")
    if num_images != num_masks:
        raise ValueError(f"image and mask_image: {num_images} images but {num_masks} masks")
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {list(OUTPUT_TYPES)}, got {output_type!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
    if size_mode not in SIZE_MODES:
        raise ValueError(f"size_mode must be one of {list(SIZE_MODES)}, got {size_mode!r}")
    for name, value in (("size", size), ("height", height), ("width", width)):
        if value is not None and (int(value) != value or value < SIZE_MULTIPLE or value % SIZE_MULTIPLE):
            raise ValueError(f"{name} must be a positive multiple of {SIZE_MULTIPLE}, got {value!r}")
    if isinstance(generator, list):
        if len(generator) != num_images:
            raise ValueError(
                f"generator: got {len(generator)} generators for {num_images} images (one per sample)"
            )
    elif generator is not None and num_images > 1:
        raise ValueError(
            f"generator: a single generator for {num_images} images would make each result depend on the "
            "batch; pass a list with one generator per image"
        )
    if refine and not has_refinement:
        raise ValueError("refine=True but the pipeline has no refinement_unet")


# ------------------------------------------------------------------------------------------------
# Input conversion: everything becomes float32 numpy, (H, W, 3) images and (H, W) masks in [0, 1]


def _pil_to_rgb_array(img: PIL.Image.Image) -> np.ndarray:
    """PIL → (H, W, 3) float32 in [0, 1], converted like ``harmonylib.io.load_rgb`` (no EXIF step)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        return np.repeat((arr / peak)[..., None], 3, axis=-1).astype(np.float32)
    if img.mode == "RGBA":  # alpha is not a mask: composite on black, as load_rgb does
        img = PIL.Image.alpha_composite(PIL.Image.new("RGBA", img.size, (0, 0, 0, 255)), img)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _pil_to_mask_array(img: PIL.Image.Image) -> np.ndarray:
    """PIL → (H, W) float32 in [0, 1], converted like ``harmonylib.io.load_mask_l`` (no EXIF step)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        return (arr / (65535.0 if arr.max() > 255 else 255.0)).astype(np.float32)
    if img.mode == "RGBA":
        arr = np.asarray(img)
        if arr[..., :3].std() == 0:  # a mask stored as alpha only
            return arr[..., 3].astype(np.float32) / 255.0
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _array_to_float(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(
                f"{what}: float arrays must be in [0, 1], got [{arr.min():.3g}, {arr.max():.3g}]"
            )
        return arr
    raise TypeError(f"{what}: unsupported dtype {arr.dtype}")


def _image_to_array(image: Any, what: str) -> np.ndarray:
    """One image (path, PIL, (H,W,3) array, (3,H,W) tensor in [0, 1]) → (H, W, 3) float32."""
    if isinstance(image, (str, os.PathLike)):
        return _pil_to_rgb_array(load_rgb(image))  # EXIF rotation applied; ImageReadError names the file
    if isinstance(image, PIL.Image.Image):
        return _pil_to_rgb_array(image)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(
                f"{what}: tensor images must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}"
            )
        image = image.detach().float().cpu().permute(1, 2, 0).numpy()  # (H, W, C)
    if isinstance(image, np.ndarray):
        arr = _array_to_float(image, what)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
            raise ValueError(f"{what}: arrays must be (H, W), (H, W, 1) or (H, W, 3), got {image.shape}")
        return np.array(np.broadcast_to(arr, (*arr.shape[:2], 3)), dtype=np.float32)
    raise TypeError(
        f"{what}: unsupported type {type(image).__name__} (use a path, PIL image, array or tensor)"
    )


def _mask_to_array(mask: Any, what: str) -> np.ndarray:
    """One mask (path, PIL, (H,W) array, (1,H,W) tensor in [0, 1]) → (H, W) float32 in [0, 1]."""
    if isinstance(mask, (str, os.PathLike)):
        return _pil_to_mask_array(load_mask_l(mask))
    if isinstance(mask, PIL.Image.Image):
        return _pil_to_mask_array(mask)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().float().cpu().numpy()
    if isinstance(mask, np.ndarray):
        arr = _array_to_float(mask, what)
        if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
            arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:2])
        if arr.ndim != 2:
            raise ValueError(f"{what}: masks must be (H, W), (1, H, W) or (H, W, 1), got {mask.shape}")
        return arr
    raise TypeError(
        f"{what}: unsupported type {type(mask).__name__} (use a path, PIL image, array or tensor)"
    )


def _as_list(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, torch.Tensor) and x.ndim == 4:
        return list(x.unbind(0))
    if isinstance(x, np.ndarray) and x.ndim == 4:
        return list(x)
    return [x]


def _round_to_multiple(x: float, m: int = SIZE_MULTIPLE) -> int:
    return max(m, int(round(x / m)) * m)


def processing_size(
    input_hw: tuple[int, int],
    size_mode: str,
    size: int | None,
    height: int | None,
    width: int | None,
    default_size: int,
) -> tuple[int, int]:
    """The (H, W) the models run at, for one input of size ``input_hw``.

    - ``height`` and ``width`` given: exactly that (both multiples of 8).
    - ``"square"``: N×N with N = ``size`` or ``default_size`` (the authors squash to 512).
    - ``"keep_aspect"``: the shorter side becomes ``size`` (or ``default_size``) and the longer side
      follows the aspect ratio; both are rounded to the nearest multiple of 8. Small inputs are
      upscaled, like the authors' fixed 512.
    """
    if height is not None or width is not None:
        if height is None or width is None:
            raise ValueError("give both height and width, or neither (use size= for the shorter side)")
        if size_mode == "square" and height != width:
            raise ValueError(f"size_mode='square' needs height == width, got {height}x{width}")
        return int(height), int(width)
    n = int(size if size is not None else default_size)
    if size_mode == "square":
        return n, n
    h, w = input_hw
    scale = n / min(h, w)
    return _round_to_multiple(h * scale), _round_to_multiple(w * scale)


def _resize_image(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float → (B, C, h, w), bilinear with antialias (≈ PIL bilinear, authors' resize)."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=tuple(hw), mode="bilinear", antialias=True, align_corners=False)


def _resize_mask(m: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) binary → (B, 1, h, w) binary, nearest with pixel centres (≈ PIL NEAREST)."""
    if tuple(m.shape[-2:]) == tuple(hw):
        return m
    return F.interpolate(m, size=tuple(hw), mode="nearest-exact")


@dataclass
class PreparedSample:
    """One input after steps 1-2: arrays at the input's size plus the sizes it will use."""

    index: int
    image: np.ndarray  # (H, W, 3) in [0, 1]
    mask: np.ndarray  # (H, W) in {0, 1}, binarised
    proc_hw: tuple[int, int]
    out_hw: tuple[int, int]
    generator: torch.Generator | None
    empty: bool


def prepare_samples(
    images: Sequence[Any],
    masks: Sequence[Any],
    generators: Sequence[torch.Generator | None],
    *,
    size_mode: str,
    size: int | None,
    height: int | None,
    width: int | None,
    default_size: int,
    resize_to_input: bool,
    refine_size: int | None,
    latent_output: bool,
) -> list[PreparedSample]:
    """Step 2: arrays at the input size, binarised masks, processing and output sizes.

    The output size is the input's (``resize_to_input``), else the refinement size when refining
    (``refine_size``), else the processing size. An empty mask marks its sample ``empty`` (returned
    unchanged) unless the output is latent, which runs as usual; it warns with
    :class:`EmptyMaskWarning`, a full mask with :class:`FullMaskWarning`.

    Raises:
        ValueError: an image and its mask differ in size (the message names both sizes).
    """
    samples: list[PreparedSample] = []
    for i, (img, msk) in enumerate(zip(images, masks, strict=True)):
        img_arr = _image_to_array(img, f"image[{i}]")  # (H, W, 3)
        msk_arr = threshold_mask(_mask_to_array(msk, f"mask_image[{i}]"))  # (H, W) in {0, 1}
        if img_arr.shape[:2] != msk_arr.shape:
            raise ValueError(
                f"image[{i}] is {img_arr.shape[1]}x{img_arr.shape[0]} (WxH) but mask_image[{i}] is "
                f"{msk_arr.shape[1]}x{msk_arr.shape[0]}; they must have the same size"
            )
        empty = not msk_arr.any()
        # stacklevel 3 skips this function and DiffHarmonyPipeline.__call__ (2 before the split)
        if empty:
            warnings.warn(
                f"mask_image[{i}] is empty: image[{i}] is returned unchanged",
                EmptyMaskWarning,
                stacklevel=3,
            )
        elif msk_arr.all():
            warnings.warn(
                f"mask_image[{i}] covers the whole image: no background to match",
                FullMaskWarning,
                stacklevel=3,
            )
        proc_hw = processing_size(img_arr.shape[:2], size_mode, size, height, width, default_size)
        if resize_to_input:
            out_hw = tuple(img_arr.shape[:2])
        elif refine_size is not None:
            out_hw = (refine_size,) * 2
        else:
            out_hw = proc_hw
        samples.append(
            PreparedSample(i, img_arr, msk_arr, proc_hw, out_hw, generators[i], empty and not latent_output)
        )
    return samples


# ------------------------------------------------------------------------------------------------
# Step 8: output size, background paste, output type


def finish_sample(result: torch.Tensor, s: PreparedSample, keep_background: bool) -> torch.Tensor:
    """(3, h, w) in [0, 1] → (3, H_out, W_out), background pasted if asked."""
    out = _resize_image(result[None].float(), s.out_hw).clamp(0, 1)  # (1, 3, Ho, Wo)
    if keep_background:
        inp = _resize_image(torch.from_numpy(s.image).permute(2, 0, 1)[None], s.out_hw).clamp(0, 1)
        m = _resize_mask(torch.from_numpy(s.mask)[None, None], s.out_hw)  # (1, 1, Ho, Wo)
        out = out * m + inp * (1 - m)
    return out[0]


def format_results(results: list[torch.Tensor], output_type: str) -> Any:
    """Per-sample (3, H, W) results (or (4, h, w) latents) as the requested ``output_type``."""
    if output_type == "latent":
        shapes = {tuple(r.shape) for r in results}
        return torch.stack(results) if len(shapes) == 1 else results
    if output_type == "pil":
        return [PIL.Image.fromarray(to_uint8(r.permute(1, 2, 0).numpy())) for r in results]
    same = len({tuple(r.shape) for r in results}) == 1
    if output_type == "pt":
        return torch.stack(results) if same else results  # (B, 3, H, W)
    arrays = [r.permute(1, 2, 0).numpy().astype(np.float32) for r in results]  # (H, W, 3)
    return np.stack(arrays) if same else arrays

"""Torch datasets over iHarmony4-style samples, resized and binarised by :mod:`harmonylib.imageproc`, with an in-memory cache.

Geometry (official-implementation.md §6, §10.17): the authors' UNet, inference and inverse
generation squash every image to a square ("square"), their Harmony-VAE trains on shorter-side
resize + centre crop ("center_crop"); "keep_aspect" keeps the aspect ratio with both sides
multiples of 8 (the pipeline only needs %8), for batch size 1 or same-shape batches.

RGB is resized with PIL bilinear, which is antialiased when downscaling (as torchvision's
``TF.resize`` on PIL images, the authors' call). Masks are resized as 8-bit "L" images with the
same bilinear filter and then thresholded by :func:`harmonylib.imageproc.threshold_mask`. The authors instead dither
with ``convert("1")`` and resize with NEAREST; on 0/255 masks dithering is a plain threshold, and
bilinear-then-threshold places the resized boundary where the area-weighted coverage crosses
one half instead of where the nearest source pixel happens to fall. The evaluator keeps the
authors' dithering for metric parity; training and inference use this module.

No augmentation and no global RNG: item ``i`` is a pure function of the sample and the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from harmonylib.data.iharmony4 import Sample
from harmonylib.imageproc import RESIZE_MODES, ResizeMode, resize_image, target_geometry, threshold_mask
from harmonylib.io import load_mask_l, load_rgb


def load_resized(
    sample: Sample, size: int, resize: str = "square"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(composite (H, W, 3), real (H, W, 3), mask (H, W)) as uint8 after resizing; mask not yet binarised."""
    comp = load_rgb(sample.composite)
    real = load_rgb(sample.real)
    mask = load_mask_l(sample.mask)
    if not (comp.size == real.size == mask.size):
        raise ValueError(
            f"{sample.name}: sizes differ: composite {comp.size}, real {real.size}, mask {mask.size}"
        )
    return (
        resize_image(comp, size, resize),
        resize_image(real, size, resize),
        resize_image(mask, size, resize),
    )


class PreResizedCache:
    """Pre-resized uint8 arrays of samples, kept in memory (filled lazily or by :meth:`fill`).

    At 64-256 px a sample is a few hundred KB, so the whole built-in dataset fits easily and
    the loader never waits on JPEG decoding. Results are identical to loading each time.
    """

    def __init__(self, samples: Sequence[Sample], size: int, resize: str = "square"):
        target_geometry(8, 8, size, resize)  # validates the mode
        self.samples = list(samples)
        self.size = size
        self.resize = resize
        self._items: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(composite, real, mask) uint8 arrays of sample ``index``."""
        item = self._items.get(index)
        if item is None:
            item = load_resized(self.samples[index], self.size, self.resize)
            for a in item:
                a.setflags(write=False)
            self._items[index] = item
        return item

    def fill(self, progress: bool = False) -> PreResizedCache:
        """Load every sample now."""
        it: Any = range(len(self.samples))
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="cache", unit="img")
        for i in it:
            self.get(i)
        return self

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for item in self._items.values() for a in item)


def _to_tensor_rgb(arr: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.array(arr, dtype=np.float32)).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    return t / 127.5 - 1.0  # [0, 255] -> [-1, 1], as Normalize(0.5, 0.5) after ToTensor


class HarmonyDataset(Dataset):
    """Composite, real and mask of each sample, resized, as tensors.

    Args:
        samples: from :func:`harmonylib.data.iharmony4.read_split`.
        size: output size (square side, crop side, or shorter side for keep_aspect).
        resize: ``"square"`` (squash to size x size, the authors' UNet), ``"center_crop"``
            (shorter side -> size, centre crop; the authors' Harmony-VAE training),
            ``"keep_aspect"`` (shorter side -> size, both sides rounded to multiples of 8).
        cache: ``True`` keeps pre-resized uint8 arrays in memory (filled on first access; call
            :meth:`preload` to fill now); or pass a :class:`PreResizedCache` to share one.

    Items are dicts: ``composite``, ``real`` float32 (3, H, W) in [-1, 1]; ``mask`` float32
    (1, H, W) in {0, 1}; ``name``, ``subset``, ``index``.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        size: int,
        resize: ResizeMode = "square",
        cache: bool | PreResizedCache = False,
    ):
        if resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {resize!r}; allowed: {list(RESIZE_MODES)}")
        if size < 8:
            raise ValueError(f"size must be at least 8, got {size}")
        self.samples = list(samples)
        self.size = size
        self.resize = resize
        if isinstance(cache, PreResizedCache):
            if (cache.size, cache.resize) != (size, resize) or [s.composite for s in cache.samples] != [
                s.composite for s in self.samples
            ]:
                raise ValueError("cache was built for other samples, size or resize mode")
            self.cache: PreResizedCache | None = cache
        else:
            self.cache = PreResizedCache(self.samples, size, resize) if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def preload(self, progress: bool = False) -> HarmonyDataset:
        """Fill the cache now (no-op without a cache)."""
        if self.cache is not None:
            self.cache.fill(progress)
        return self

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if self.cache is not None:
            comp, real, mask = self.cache.get(index)
        else:
            comp, real, mask = load_resized(self.samples[index], self.size, self.resize)
        sample = self.samples[index]
        return {
            "composite": _to_tensor_rgb(comp),  # (3, H, W)
            "real": _to_tensor_rgb(real),  # (3, H, W)
            "mask": torch.from_numpy(threshold_mask(mask))[None],  # (1, H, W)
            "name": sample.name,
            "subset": sample.subset,
            "index": index,
        }

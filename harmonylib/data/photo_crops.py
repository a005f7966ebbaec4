"""Random multi-scale crops of photographs, for pretraining the base VAE and the inpainting UNet.

Both base models are fully convolutional, so they train on square crops. ``PhotoCropDataset``
holds a fixed list of ``n_crops`` crops; crop ``i`` is a pure function of (seed, i), so the list
is the same in every epoch and every resumed run, and the training loop's per-epoch permutation
(:mod:`harmonylib.training.data_order`) only changes their order. Each crop is drawn as follows
(all numbers from ``make_generator(derive_seed(seed, "photo-crop", i))``):

1. a photo, uniformly (pass a photo twice to weight it);
2. an upscale factor ``u`` from ``upscales`` (e.g. 1 or 2): the crop's content is ``size / u``
   pixels wide and is then resized *up* by ``u``, as inference sees upsampled content when it
   processes a small image at a larger size;
3. a source side ``L``, log-uniform between ``size / u`` (one photo pixel per content pixel) and
   the photo's shorter side (the whole photo), so every scale from native detail to the whole
   scene is seen; a photo smaller than the content is used whole (and so upsampled);
4. a position, uniform; a left-right flip with probability 1/2 when ``hflip``;
5. a flat background colour, used only for photos with an alpha channel (cut-out stamps):
   they are composited over it, so no transparent pixel's hidden RGB ever reaches a model.

The crop is resized from ``L`` to ``size / u`` and then to ``size`` with PIL bilinear, the
filter harmonylib's inference uses (PIL antialiases when it shrinks).

Items are ``{"image": (3, size, size) float in [-1, 1], "index": i, "photo": photo index}``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from harmonylib.io import ImageReadError
from harmonylib.reproducibility import derive_seed, make_generator

PhotoLike = str | os.PathLike | Image.Image


@dataclass(frozen=True)
class CropPlan:
    """Where crop ``i`` comes from (see the module docstring)."""

    photo: int
    upscale: int
    side: int  # source pixels
    x0: int
    y0: int
    flip: bool
    background: tuple[int, int, int]


def open_photo(photo: PhotoLike) -> Image.Image:
    """A photo as "RGB", or "RGBA" when it has transparency; EXIF orientation applied.

    Raises:
        ImageReadError: naming the file, if it is missing or cannot be decoded.
    """
    if isinstance(photo, Image.Image):
        img = photo
    else:
        path = Path(photo)
        if not path.is_file():
            raise ImageReadError(f"{path}: file does not exist")
        try:
            img = Image.open(path)
            img.load()
        except (OSError, SyntaxError) as exc:
            raise ImageReadError(f"{path}: cannot read image ({exc})") from exc
        img = ImageOps.exif_transpose(img)
    alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    return img.convert("RGBA" if alpha else "RGB")


class PhotoCropDataset(Dataset):
    """``n_crops`` fixed random crops of ``photos`` at ``size`` px (module docstring).

    Args:
        photos: image paths or PIL images (opened lazily, kept in memory once opened).
        size: output side in pixels.
        n_crops: length of the dataset (the fixed crop list).
        seed: crop ``i`` depends only on (seed, i).
        upscales: factors the content is resized up by; each must divide ``size``.
        hflip: mirror half of the crops.
        max_photo_side: photos whose shorter side exceeds it are shrunk once on load (memory);
            None keeps them as they are.
    """

    def __init__(
        self,
        photos: Sequence[PhotoLike],
        size: int,
        n_crops: int,
        seed: int = 0,
        *,
        upscales: Sequence[int] = (1, 2),
        hflip: bool = True,
        max_photo_side: int | None = None,
    ):
        if not photos:
            raise ValueError("PhotoCropDataset: the photo list is empty")
        if n_crops < 1:
            raise ValueError(f"PhotoCropDataset: n_crops must be >= 1, got {n_crops}")
        bad = [u for u in upscales if u < 1 or size % u]
        if not upscales or bad:
            raise ValueError(
                f"PhotoCropDataset: upscales {list(upscales)} must be >= 1 and divide size {size}"
            )
        self.photos = list(photos)
        self.size, self.n_crops, self.seed = int(size), int(n_crops), int(seed)
        self.upscales, self.hflip, self.max_photo_side = (
            tuple(int(u) for u in upscales),
            hflip,
            max_photo_side,
        )
        self._images: dict[int, Image.Image] = {}

    def __len__(self) -> int:
        return self.n_crops

    def photo(self, p: int) -> Image.Image:
        """Photo ``p``, opened (and shrunk to ``max_photo_side``) once."""
        img = self._images.get(p)
        if img is None:
            img = open_photo(self.photos[p])
            short = min(img.size)
            if self.max_photo_side is not None and short > self.max_photo_side:
                s = self.max_photo_side / short
                img = img.resize(
                    (max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BILINEAR
                )
            self._images[p] = img
        return img

    def plan(self, index: int) -> CropPlan:
        """The crop of ``index`` (a pure function of (seed, index) and the photo's size)."""
        if not 0 <= index < self.n_crops:
            raise IndexError(f"crop {index} outside [0, {self.n_crops})")
        g = make_generator(derive_seed(self.seed, "photo-crop", index))
        u = torch.rand(9, generator=g, dtype=torch.float64).tolist()  # a fixed number of draws
        p = min(int(u[0] * len(self.photos)), len(self.photos) - 1)
        up = self.upscales[min(int(u[1] * len(self.upscales)), len(self.upscales) - 1)]
        w, h = self.photo(p).size
        content, short = self.size // up, min(w, h)
        lo, hi = min(content, short), short
        side = int(round(math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u[2])))
        side = min(max(side, 1), short)
        x0, y0 = int(u[3] * (w - side + 1)), int(u[4] * (h - side + 1))
        bg = tuple(int(v * 255.0 + 0.5) for v in u[6:9])
        return CropPlan(p, up, side, min(x0, w - side), min(y0, h - side), self.hflip and u[5] < 0.5, bg)

    def render(self, plan: CropPlan) -> Image.Image:
        """The RGB crop of ``plan`` at ``size`` px."""
        img = self.photo(plan.photo).crop((plan.x0, plan.y0, plan.x0 + plan.side, plan.y0 + plan.side))
        if img.mode == "RGBA":
            img = Image.alpha_composite(Image.new("RGBA", img.size, (*plan.background, 255)), img)
        img = img.convert("RGB")
        content = self.size // plan.upscale
        if img.size != (content, content):
            img = img.resize((content, content), Image.BILINEAR)  # shrink (antialiased) or enlarge
        if plan.upscale > 1:
            img = img.resize((self.size, self.size), Image.BILINEAR)  # the upsampling inference sees
        if plan.flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return img

    def __getitem__(self, index: int) -> dict[str, Any]:
        plan = self.plan(index)
        arr = np.asarray(self.render(plan), dtype=np.float32)  # (S, S, 3) in [0, 255]
        image = torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0  # (3, S, S) in [-1, 1]
        return {"image": image, "index": index, "photo": plan.photo}


def photo_paths(crops: Any) -> list[PhotoLike]:
    """The photos a ``PhotoCropConfig`` names (see ``config.PhotoCropConfig.source``).

    Raises:
        ValueError: ``paths`` matches no file, or the source holds no photo.
        ImportError: ``source="photo_set"`` without ``harmonylib.data.photo_set``.
    """
    from harmonylib.paths import resolve

    if crops.source == "builtin":
        from harmonylib.data.builtin import available_photos

        found = [path for spec, path in available_photos()[0] if spec.split == "train"]
    elif crops.source == "photo_set":
        # the train scenes of the vendored set (with the installed-package scenes it counts) and,
        # if asked, its photographic stamps; val and test photos never enter pretraining
        from harmonylib.data import photo_set
        from harmonylib.data.builtin import available_photos

        found = [path for spec, path in available_photos("vendored", ("train",))[0] if spec.split == "train"]
        if crops.stamps:
            root = photo_set.photo_root()
            stamps = [Path(str(root / e.file)) for e in photo_set.stamps()]
            # photos are drawn uniformly, so repeat the scenes until stamps (small cut-outs on a
            # flat colour) make up about ``stamp_share`` of the crops, not ~90 % of them
            share = float(crops.stamp_share)
            if not 0.0 < share < 1.0:
                raise ValueError(f"pretraining crops: stamp_share must lie in (0, 1), got {share}")
            reps = max(1, round(len(stamps) * (1.0 - share) / (share * max(len(found), 1))))
            found = [p for p in found for _ in range(reps)] + stamps
    else:
        found = []
        for pattern in crops.paths:
            p = resolve(pattern)
            hits = sorted(p.parent.glob(p.name)) if any(c in p.name for c in "*?[") else [p]
            missing = [h for h in hits if not Path(h).is_file()]
            if not hits or missing:
                raise ValueError(f"pretraining crops: {pattern!r} matches no file ({missing or p})")
            found += hits
    if not found:
        raise ValueError(f"pretraining crops: source {crops.source!r} holds no photo")
    return found


def photo_crop_dataset(crops: Any, size: int, seed: int) -> PhotoCropDataset:
    """The :class:`PhotoCropDataset` of a ``config.PhotoCropConfig`` at ``size`` px."""
    return PhotoCropDataset(
        photo_paths(crops),
        size,
        crops.n_crops,
        seed,
        upscales=crops.upscales,
        hflip=crops.hflip,
        max_photo_side=crops.max_photo_side,
    )

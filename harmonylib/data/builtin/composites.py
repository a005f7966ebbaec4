"""The built-in dataset's pixels: one real image cut from a photo, its masks, its recoloured composites.

A real is a random crop at a random scale, resized so that its shorter side is ``image_size``,
with aspect ratio 1, 4:3 or 3:4. Each composite recolours the real's foreground (the subset's
method mix, :data:`_METHOD_WEIGHTS`), is mixed back toward the real to hit its drawn strength
(:data:`STRENGTH_FMSE`), and is pasted with a hard mask, as iHarmony4 was made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harmonylib.config import BuiltinDataConfig
from harmonylib.data import recolor as rc
from harmonylib.data.builtin.masks import make_mask
from harmonylib.data.builtin.plan import _RealPlan
from harmonylib.data.builtin.stamps import paste_stamp
from harmonylib.reproducibility import numpy_rng

ASPECTS = (1.0, 4 / 3, 3 / 4)  # width / height
_MIN_CROP_SCALE = 0.35  # crop side as a fraction of the largest crop of that aspect


# Recolouring per subset, after how iHarmony4 made each (peers.md §1.1): colour transfer for
# HCOCO/HFlickr, photo-retouching edits for HAdobe5k, lighting changes for Hday2night.
_METHOD_WEIGHTS: dict[str, dict[str, float]] = {
    "HCOCO": {
        "reinhard": 0.35,
        "histogram": 0.35,
        "exposure": 0.1,
        "gamma": 0.05,
        "saturation": 0.05,
        "white_balance": 0.1,
    },
    "HAdobe5k": {"exposure": 0.3, "gamma": 0.25, "saturation": 0.2, "white_balance": 0.25},
    "HFlickr": {
        "reinhard": 0.35,
        "histogram": 0.35,
        "exposure": 0.1,
        "gamma": 0.05,
        "saturation": 0.05,
        "white_balance": 0.1,
    },
    "Hday2night": {"exposure": 0.4, "white_balance": 0.4, "gamma": 0.2},
}
# Recolouring strength per subset: each composite's foreground discrepancy (its fMSE against the
# real, 8-bit units, at the generator's resolution) is log-normal, log10 fMSE ~ N(log10 median,
# sigma) clipped to +-_STRENGTH_CLIP sigmas and stratified per split (_assign_strengths); the
# recoloured foreground is mixed with the original to hit it (recolor.blend_toward, alpha <= 1, so
# never stronger than the recolouring itself). Calibrated against the paper's Composite row: see
# "Recolouring strength" in harmonylib.data.builtin's docstring before changing a number.
STRENGTH_FMSE: dict[str, tuple[float, float]] = {
    # subset: (median fMSE, sigma of log10 fMSE)
    "HCOCO": (450.0, 0.52),
    "HAdobe5k": (640.0, 0.10),
    "HFlickr": (1300.0, 0.08),
    "Hday2night": (600.0, 0.70),
}


def _random_crop(photo: Image.Image, size: int, rng: np.random.Generator, resample: int) -> Image.Image:
    """A random crop at a random scale and aspect (1, 4:3, 3:4), shorter side -> ``size``."""
    aspect = ASPECTS[int(rng.integers(len(ASPECTS)))]
    out = (round(size * aspect), size) if aspect >= 1 else (size, round(size / aspect))
    pw, ph = photo.size
    cw_max = min(pw, ph * out[0] / out[1])
    scale = rng.uniform(_MIN_CROP_SCALE, 1.0)
    cw = cw_max * scale
    ch = cw * out[1] / out[0]
    x0 = rng.uniform(0, pw - cw)
    y0 = rng.uniform(0, ph - ch)
    return photo.resize(out, resample, box=(x0, y0, x0 + cw, y0 + ch))


def _target_fmse(subset: str, z: float) -> float:
    """A composite's foreground discrepancy (fMSE, 8-bit units) at strength quantile ``z``."""
    median, sigma = STRENGTH_FMSE[subset]
    return median * 10.0 ** (sigma * z)


def _photo_draw(cfg: BuiltinDataConfig, plan: _RealPlan, n_photos: int) -> tuple[np.random.Generator, int]:
    """The real image's own random stream, and the index of the photo it is cut from (its first draw)."""
    rng = numpy_rng(cfg.seed, "builtin-real", plan.split, plan.subset, plan.index)
    return rng, int(rng.integers(n_photos))


def _build_real(
    plan: _RealPlan,
    cfg: BuiltinDataConfig,
    photos: dict[str, list[tuple[str, Image.Image]]],
    out: Path,
) -> list[dict[str, Any]]:
    """Write one real, its masks and composites; return one record per composite."""
    split_photos = photos[plan.split]
    rng, pi = _photo_draw(cfg, plan, len(split_photos))
    photo_name, photo = split_photos[pi]
    real_img = _random_crop(photo, cfg.image_size, rng, Image.LANCZOS)
    real_u8 = np.asarray(real_img)
    # A train real with one mask may instead hold a pasted stamp as its foreground (stamps.py);
    # its own stream, so no other real, mask or composite moves.
    stamped = None
    if plan.split == "train" and cfg.stamp_foregrounds > 0 and len(plan.masks) == 1:
        srng = numpy_rng(cfg.seed, "builtin-stamp", plan.split, plan.subset, plan.index)
        if srng.random() < cfg.stamp_foregrounds:
            stamped = paste_stamp(real_u8.astype(np.float64) / 255.0, plan.masks[0].bin, srng)
    if stamped is not None:
        real_u8 = np.clip(np.round(stamped[0] * 255.0), 0, 255).astype(np.uint8)
        real_img = Image.fromarray(real_u8, "RGB")
    real = real_u8.astype(np.float64) / 255.0
    sub = out / plan.subset
    real_img.save(sub / "real_images" / f"{plan.real_id}.jpg", quality=cfg.jpeg_quality)
    weights = _METHOD_WEIGHTS[plan.subset]
    methods, probs = list(weights), np.array(list(weights.values()))
    records = []
    for mplan in plan.masks:
        mrng = numpy_rng(cfg.seed, "builtin-mask", plan.split, plan.subset, plan.index, mplan.mask_label)
        if stamped is not None:
            _, mask, mask_method, ratio = stamped
        else:
            mask, mask_method, ratio = make_mask(real_u8, mplan.bin, mrng)
        mask_stem = f"{plan.real_id}_{mplan.mask_label}"
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L").save(sub / "masks" / f"{mask_stem}.png")
        # different methods for the composites of one mask while there are enough
        order = mrng.choice(
            len(methods),
            size=mplan.n_composites,
            replace=mplan.n_composites > len(methods),
            p=probs / probs.sum(),
        )
        for k in range(1, mplan.n_composites + 1):
            crng = numpy_rng(
                cfg.seed, "builtin-comp", plan.split, plan.subset, plan.index, mplan.mask_label, k
            )
            method = methods[int(order[k - 1])]
            reference = None
            if method in rc.REFERENCE_METHODS:
                others = [p for j, p in enumerate(split_photos) if j != pi] or split_photos
                ref_photo = others[int(crng.integers(len(others)))][1]
                reference = np.asarray(_random_crop(ref_photo, cfg.image_size, crng, Image.BILINEAR)) / 255.0
            fg = rc.recolor(real, mask, method, crng, reference=reference)
            target = _target_fmse(plan.subset, mplan.strength_z[k - 1])
            fg, alpha = rc.blend_toward(real, fg, mask, target)
            comp = np.where(mask[..., None], fg, real)  # hard mask: real outside, recoloured inside
            comp_u8 = np.clip(np.round(comp * 255.0), 0, 255).astype(np.uint8)
            name = f"{mask_stem}_{k}"
            Image.fromarray(comp_u8, "RGB").save(
                sub / "composite_images" / f"{name}.jpg", quality=cfg.jpeg_quality
            )
            records.append(
                {
                    "split": plan.split,
                    "subset": plan.subset,
                    "name": name,
                    "photo": photo_name,
                    "mask_method": mask_method,
                    "recolor": method,
                    "target_fmse": target,
                    "alpha": alpha,
                    "fg_ratio": ratio,
                    "bin": mplan.bin,
                }
            )
    return records

"""The built-in dataset: iHarmony4-style composites made from real photos shipped in packages.

The ``smoke`` and ``mini`` profiles train and evaluate on this dataset, so the whole project runs
offline on a laptop. It imitates how iHarmony4 was made (Cong et al., CVPR 2020, §3): take a real
photo, select an object mask, recolour the foreground (colour transfer from another photo,
histogram matching, or an exposure/gamma/saturation/white-balance edit), paste it back with a hard
mask. Several composites share one mask and real (``x_1_1 ... x_1_5``).

Photos are real photographs that lie inside installed packages (scikit-image's ``data`` folder,
matplotlib's ``sample_data``, scikit-learn's ``datasets/images``); their files are read directly,
so nothing is ever downloaded. Whole photos are held out for the test split
(:data:`PHOTOS` fixes which), so train and test never share a scene.

Samples are random crops at random scales, resized so that the shorter side is
``image_size``, with aspect ratio 1, 4:3 or 3:4. Masks are object-like: unions of adjacent
Felzenszwalb segments of the crop, the scikit-image horse silhouette, or smooth random shapes.
The foreground-ratio mix of each split is iHarmony4's test mix (paper Table 3: 3835 / 1951 / 1618
of 7404 composites in [0, 5%), [5, 15%), [15, 100%]), measured as the evaluator measures it
(mask dithered to mode "1", NEAREST-resized to 256x256, fraction of foreground pixels).

Subsets mimic iHarmony4's four, names included: HCOCO ``c<id>_<annid>_<k>``, HAdobe5k
``a<4 digits>_<m>_<k>``, HFlickr ``f<id>_<m>_<k>``, Hday2night ``d<id>-<date>-<time>_<m>_<k>``.
Their sizes follow iHarmony4's proportions after each gets its minimum.

Recolouring strength -- a data generator calibrated against a published dataset statistic.
The recolouring *kind* follows iHarmony4 (per-subset method weights in ``_METHOD_WEIGHTS``, edit
ranges in :mod:`harmonylib.data.recolor`); its *size* is set per composite: a target foreground
discrepancy (fMSE against the real, 8-bit units, at the generator's resolution) is drawn from a
per-subset log-normal (:data:`STRENGTH_FMSE`: median fMSE and sigma of log10 fMSE, clipped to
+-2 sigma, stratified over each split's composites of that subset), and the recoloured foreground
is mixed with the original, ``real + alpha * (recoloured - real)``, with the ``alpha <= 1`` that
hits the target (:func:`harmonylib.data.recolor.blend_toward`; 15-30 % of composites keep
``alpha = 1`` because their recolouring is weaker than the target, e.g. desaturating a grey region;
the edit ranges were widened in version 2 to keep that share low).

Target: the Composite row of the paper's Table 1 (the composites scored as predictions with the
authors' protocol) on real iHarmony4 test -- PSNR / MSE / fMSE: HCOCO 35.47 / 41.07 / 542.06,
HAdobe5k 33.77 / 63.40 / 404.62, HFlickr 30.03 / 143.45 / 785.65, Hday2night 34.50 / 76.61 /
989.07, All 34.35 / 59.67 / 594.67. The eight numbers were fitted by hand (build, score with
:func:`harmonylib.evaluation.evaluate_predictions`, adjust) on the ``mini`` profile, aiming at
+-1.5 dB PSNR and +-35 % fMSE per subset on both splits and seeds 0 and 1. Not every pair can be met
exactly: our splits share one foreground-ratio mix across subsets, so mean PSNR pins each subset's
geometric-mean fMSE, and HFlickr / HAdobe5k's paper PSNR asks for a geometric mean above their
arithmetic-mean fMSE (impossible); those two get a balanced compromise with a near-constant strength
(small sigma), Hday2night a wide one (its paper fMSE is far above what its PSNR implies). For the
same reason MSE follows the mix (about 0.1 x fMSE in every subset), not the paper's per-subset MSE.

Measured after calibration (generator version 2, ``mini``, seed 0; PSNR / MSE / fMSE):

=========== ======================= ======================= =======================
subset      test (n = 400)          train (n = 2400)        paper
=========== ======================= ======================= =======================
HCOCO       35.58 / 62.88 / 522.97  35.32 / 65.55 / 555.82  35.47 / 41.07 / 542.06
HAdobe5k    33.45 / 58.91 / 494.02  34.55 / 55.55 / 462.73  33.77 / 63.40 / 404.62
HFlickr     30.89 / 138.72 / 990.84 31.15 / 115.64 / 914.12 30.03 / 143.45 / 785.65
Hday2night  34.20 / 113.27 / 766.00 34.47 / 82.69 / 817.28  34.50 / 76.61 / 989.07
All         34.06 / 80.03 / 620.11  34.47 / 70.64 / 593.50  34.35 / 59.67 / 594.67
=========== ======================= ======================= =======================

(Before calibration, version 1 with full-strength recolouring: test All 30.60 / 267.39 / 2161.21.)
With seed 1 every subset stays within +-1.5 dB and +-35 % on both splits. The ``smoke`` test split
(24 composites) is too small to match per subset; its All fMSE is only checked to lie in a band.

Everything is deterministic from ``BuiltinDataConfig.seed``: the same config gives the same bytes
for every image and list (``BUILD.json`` differs only in its build time).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import json
import math
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage
from skimage.draw import polygon as draw_polygon
from skimage.segmentation import felzenszwalb

from harmonylib.config import SUBSETS, BuiltinDataConfig, Config, DataConfig, config_hash, to_dict
from harmonylib.data import recolor as rc
from harmonylib.data.iharmony4 import PUBLISHED_COUNTS
from harmonylib.imageproc import FG_BIN_LABELS, FG_BINS, evaluation_mask, fg_bin_index, fg_ratio
from harmonylib.io import load_rgb
from harmonylib.paths import resolve
from harmonylib.reproducibility import numpy_rng

# Bump when the generator's output changes for the same config: ensure_builtin then rebuilds.
GENERATOR_VERSION = 2
BUILD_FILE = "BUILD.json"
COMPOSITES_FILE = "composites.csv"  # per composite: split, subset, name, photo, recolouring, fg ratio

# iHarmony4's test mix over the evaluator's foreground-ratio bins (imageproc.FG_BINS).
FG_MIX_COUNTS = (3835, 1951, 1618)  # paper Table 3, N_samples on iHarmony4 test (sum 7404)
# Accepted measured ratios per bin. Bin 0 needs a mask that survives the 256 resize;
# bin 2 stays below 0.9 (a "foreground" covering nearly all the image is not a composite).
_ACCEPT = ((0.004, 0.05), (0.05, 0.15), (0.15, 0.9))

ASPECTS = (1.0, 4 / 3, 3 / 4)  # width / height
_MIN_CROP_SCALE = 0.35  # crop side as a fraction of the largest crop of that aspect
_PHOTO_SIDE_FACTOR = 6  # photos are pre-shrunk once to shorter side <= 6 * image_size


@dataclass(frozen=True)
class PhotoSpec:
    """A photograph shipped in an installed package, and the split it belongs to."""

    name: str
    package: str
    relpath: str  # inside the package folder
    split: str


# The fixed train/test assignment of whole photos. The two stereo_motorcycle views show one
# scene, so both are train. The test photos are three ordinary photographs of unrelated scenes.
PHOTOS: tuple[PhotoSpec, ...] = (
    PhotoSpec("astronaut", "skimage", "data/astronaut.png", "train"),
    PhotoSpec("rocket", "skimage", "data/rocket.jpg", "train"),
    PhotoSpec("motorcycle_left", "skimage", "data/motorcycle_left.png", "train"),
    PhotoSpec("motorcycle_right", "skimage", "data/motorcycle_right.png", "train"),
    PhotoSpec("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "train"),
    PhotoSpec("immunohistochemistry", "skimage", "data/ihc.png", "train"),
    PhotoSpec("retina", "skimage", "data/retina.jpg", "train"),
    PhotoSpec("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "train"),
    PhotoSpec("flower", "sklearn", "datasets/images/flower.jpg", "train"),
    PhotoSpec("chelsea", "skimage", "data/chelsea.png", "test"),
    PhotoSpec("coffee", "skimage", "data/coffee.png", "test"),
    PhotoSpec("china", "sklearn", "datasets/images/china.jpg", "test"),
)
_MIN_PHOTOS = {"train": 3, "val": 1, "test": 2}
# Not scenes: kept out of the "vendored" set's harmonization data (mini-v2: the train split was
# really about 5 natural scenes, and these three are micrographs / astronomy).
_NOT_SCENES = frozenset({"hubble_deep_field", "immunohistochemistry", "retina"})


def split_plan(cfg: BuiltinDataConfig) -> list[tuple[str, int, int]]:
    """``(split, n_composites, min_per_subset)`` of every split the config asks for, in build order.

    Train and test always exist; validation only when ``n_val > 0`` (so a profile without it keeps
    its bytes: every random stream is keyed by split name, so adding one split moves no other).
    """
    out = [("train", cfg.n_train, cfg.min_train_per_subset)]
    if cfg.n_val > 0:
        out.append(("val", cfg.n_val, cfg.min_val_per_subset))
    out.append(("test", cfg.n_test, cfg.min_test_per_subset))
    return out


def split_names(cfg: BuiltinDataConfig) -> list[str]:
    """The split names the config builds (``train``, [``val``,] ``test``)."""
    return [name for name, _, _ in split_plan(cfg)]


def photo_specs(photo_set: str = "packages") -> tuple[PhotoSpec, ...]:
    """The photographs of a photo set, each with its split.

    ``packages``: :data:`PHOTOS` (the photos inside installed packages). ``vendored``: the
    scenes among them (:data:`_NOT_SCENES` dropped) plus every scene of the vendored photo set
    (``harmonylib/assets/photos/MANIFEST.csv``, read by :mod:`harmonylib.data.photo_set`), with
    the split its manifest gives.
    """
    if photo_set == "packages":
        return PHOTOS
    if photo_set != "vendored":
        raise ValueError(f"unknown photo_set {photo_set!r}; allowed: ['packages', 'vendored']")
    from harmonylib.data import photo_set as ps

    specs = [p for p in PHOTOS if p.name not in _NOT_SCENES]
    specs += [PhotoSpec(e.name, "harmonylib", f"assets/photos/{e.file}", e.split) for e in ps.scenes()]
    return tuple(specs)


_HORSE = ("skimage", "data/horse.png")

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
# "Recolouring strength" in the module docstring before changing a number.
STRENGTH_FMSE: dict[str, tuple[float, float]] = {
    # subset: (median fMSE, sigma of log10 fMSE)
    "HCOCO": (450.0, 0.52),
    "HAdobe5k": (640.0, 0.10),
    "HFlickr": (1300.0, 0.08),
    "Hday2night": (600.0, 0.70),
}
_STRENGTH_CLIP = 2.0
_MASK_METHODS = ("segments", "shape", "silhouette")
_MASK_WEIGHTS = (0.55, 0.3, 0.15)
# Probability that the next mask of HCOCO/HFlickr lies on the same real image (several objects).
_SHARE_REAL = 0.3


class BuiltinDataError(RuntimeError):
    """The built-in dataset cannot be built (too few photos) or its folder is not ours."""


# ------------------------------------------------------------------------------ photos


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # does not import the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _package_file(package: str, relpath: str) -> Path | None:
    """The file ``relpath`` inside an installed package, or None (never downloads)."""
    base = _package_dir(package)
    if base is None:
        return None
    path = (base / relpath).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def available_photos(
    photo_set: str = "packages", splits: Sequence[str] = ("train", "test")
) -> tuple[list[tuple[PhotoSpec, Path]], list[str]]:
    """(photos found with their paths, names of photos skipped with a warning)."""
    found, skipped = [], []
    for spec in photo_specs(photo_set):
        path = _package_file(spec.package, spec.relpath)
        if path is None:
            warnings.warn(
                f"built-in data: photo {spec.name!r} ({spec.package}/{spec.relpath}) "
                "is not installed; skipping it",
                stacklevel=2,
            )
            skipped.append(spec.name)
        else:
            found.append((spec, path))
    for split in splits:
        need = _MIN_PHOTOS[split]
        have = sum(1 for s, _ in found if s.split == split)
        if have < need:
            raise BuiltinDataError(
                f"built-in data: only {have} {split} photos are installed, need {need}; skipped: {skipped}"
            )
    return found, skipped


def _load_photo(path: Path, image_size: int) -> Image.Image:
    """The photo as RGB, shrunk once so its shorter side is at most 6 * image_size."""
    img = load_rgb(path)
    short = min(img.size)
    limit = _PHOTO_SIDE_FACTOR * image_size
    if short > limit:
        s = limit / short
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
    return img


@lru_cache(maxsize=1)
def _horse() -> np.ndarray | None:
    """The scikit-image horse silhouette, bool, cropped to its bounding box; None if absent."""
    path = _package_file(*_HORSE)
    if path is None:
        return None
    arr = np.asarray(Image.open(path).convert("RGBA"))
    sil = (arr[..., :3].mean(-1) < 128) & (arr[..., 3] > 127)  # black horse on white
    ys, xs = np.nonzero(sil)
    return sil[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


# ------------------------------------------------------------------------------ sizes and plans


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` that sum to ``total`` (Hamilton's method)."""
    w = np.asarray(weights, dtype=np.float64)
    raw = total * w / w.sum()
    out = np.floor(raw).astype(int)
    rest = total - out.sum()
    order = np.argsort(-(raw - out), kind="stable")
    out[order[:rest]] += 1
    return [int(x) for x in out]


def subset_sizes(n: int, min_per_subset: int, split: str) -> dict[str, int]:
    """Composites per subset: each gets the minimum, the rest follows iHarmony4's proportions.

    Raises:
        ValueError: ``n`` too small for the minimums and the order HCOCO > HAdobe5k > HFlickr >
            Hday2night.
    """
    col = 0 if split == "train" else 1  # val follows iHarmony4's test proportions
    base = n - min_per_subset * len(SUBSETS)
    if base < 0:
        raise ValueError(f"{split}: {n} composites cannot give {min_per_subset} to each of 4 subsets")
    extra = _largest_remainder(base, [PUBLISHED_COUNTS[s][col] for s in SUBSETS])
    sizes = [min_per_subset + e for e in extra]
    # enforce a strict order by moving single composites up the list (keeps the total)
    for i in range(len(sizes) - 1, 0, -1):
        while sizes[i - 1] <= sizes[i]:
            j = next((k for k in range(i, len(sizes)) if sizes[k] > min_per_subset), None)
            if j is None:
                raise ValueError(
                    f"{split}: {n} composites are too few for strictly ordered subsets "
                    f"of at least {min_per_subset}"
                )
            sizes[j] -= 1
            sizes[i - 1] += 1
    if any(a <= b for a, b in zip(sizes, sizes[1:], strict=False)) or min(sizes) < min_per_subset:
        raise ValueError(
            f"{split}: {n} composites are too few for strictly ordered subsets of at least {min_per_subset}"
        )
    return dict(zip(SUBSETS, sizes, strict=True))


@dataclass
class _MaskPlan:
    bin: int
    n_composites: int
    mask_label: str  # the "<maskid>" part of the name
    strength_z: list[float] = field(default_factory=list)  # per composite, see _assign_strengths


@dataclass
class _RealPlan:
    split: str
    subset: str
    real_id: str
    index: int  # per (split, subset), for derived seeds
    masks: list[_MaskPlan]


def _bin_stream(bin_counts: list[int], rng: np.random.Generator) -> list[int]:
    """Bin labels, interleaved so any consecutive chunk has about the target mix."""
    items = []
    for b, c in enumerate(bin_counts):
        items += [((j + rng.uniform(0.1, 0.9)) / c, b) for j in range(c)]
    return [b for _, b in sorted(items)]


def _hday_id(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        cam = int(rng.integers(10000, 99999))
        day = _dt.date(2010, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 6 * 365)))
        secs = int(rng.integers(0, 86400))
        rid = f"d{cam}-{day:%Y%m%d}-{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}"
        if rid not in used:
            used.add(rid)
            return rid


def _new_id(subset: str, rng: np.random.Generator, used: set[str], counter: list[int]) -> str:
    if subset == "Hday2night":
        return _hday_id(rng, used)
    if subset == "HAdobe5k":  # a0001 ... sequential, as the FiveK numbering
        counter[0] += 1
        rid = f"a{counter[0]:04d}"
    else:
        hi = 581929 if subset == "HCOCO" else 99999
        while True:
            rid = f"{subset[1].lower()}{int(rng.integers(1, hi))}"
            if rid not in used:
                break
    used.add(rid)
    return rid


def plan_dataset(cfg: BuiltinDataConfig) -> list[_RealPlan]:
    """Every real image, its masks (target fg bin, composite count) and names. Cheap, no pixels."""
    plans: list[_RealPlan] = []
    for subset in SUBSETS:
        id_rng = numpy_rng(cfg.seed, "builtin-ids", subset)
        used: set[str] = set()
        counter = [int(id_rng.integers(0, 50))]
        ann_used: set[int] = set()
        for split, n, mn in split_plan(cfg):
            sizes = subset_sizes(n, mn, split)
            mix = _largest_remainder(n, list(FG_MIX_COUNTS))
            stream = _bin_stream(mix, numpy_rng(cfg.seed, "builtin-bins", split))
            start = sum(sizes[s] for s in SUBSETS[: SUBSETS.index(subset)])
            bins = stream[start : start + sizes[subset]]
            rng = numpy_rng(cfg.seed, "builtin-groups", split, subset)
            groups: list[tuple[int, int]] = []
            for b in range(len(FG_BINS)):
                left = bins.count(b)
                while left > 0:
                    k = min(left, int(rng.integers(1, cfg.max_composites_per_mask + 1)))
                    groups.append((b, k))
                    left -= k
            order = rng.permutation(len(groups))
            current: _RealPlan | None = None
            n_reals = 0
            for gi in order:
                b, k = groups[int(gi)]
                share = current is not None and subset in ("HCOCO", "HFlickr") and rng.random() < _SHARE_REAL
                if not share:
                    current = _RealPlan(split, subset, _new_id(subset, id_rng, used, counter), n_reals, [])
                    plans.append(current)
                    n_reals += 1
                if subset == "HCOCO":  # COCO annotation ids
                    while (ann := int(id_rng.integers(100000, 2200000))) in ann_used:
                        pass
                    ann_used.add(ann)
                    label = str(ann)
                else:
                    label = str(len(current.masks) + 1)
                current.masks.append(_MaskPlan(b, k, label))
    _assign_strengths(plans, cfg.seed, split_names(cfg))
    return plans


def _assign_strengths(plans: list[_RealPlan], seed: int, splits: Sequence[str] = ("train", "test")) -> None:
    """Give every composite its strength quantile z (standard normal, clipped to +-_STRENGTH_CLIP).

    Stratified per (split, subset): the N composites take one draw from each of N equal-probability
    strata of N(0, 1), in random order, so even a 40-composite test subset has the calibrated strength
    distribution, not a noisy sample of it. Uses its own random stream: names and masks are unaffected.
    """
    normal = NormalDist()
    for split in splits:
        for subset in SUBSETS:
            masks = [m for p in plans if p.split == split and p.subset == subset for m in p.masks]
            n = sum(m.n_composites for m in masks)
            if n == 0:
                continue
            rng = numpy_rng(seed, "builtin-strength", split, subset)
            u = (rng.permutation(n) + rng.uniform(0.0, 1.0, n)) / n
            z = np.clip(
                [normal.inv_cdf(float(x)) for x in np.clip(u, 1e-9, 1 - 1e-9)],
                -_STRENGTH_CLIP,
                _STRENGTH_CLIP,
            )
            i = 0
            for m in masks:
                m.strength_z = [float(v) for v in z[i : i + m.n_composites]]
                i += m.n_composites


# ------------------------------------------------------------------------------ masks


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


# ------------------------------------------------------------------------------ pixels


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
    real = real_u8.astype(np.float64) / 255.0
    sub = out / plan.subset
    real_img.save(sub / "real_images" / f"{plan.real_id}.jpg", quality=cfg.jpeg_quality)
    weights = _METHOD_WEIGHTS[plan.subset]
    methods, probs = list(weights), np.array(list(weights.values()))
    records = []
    for mplan in plan.masks:
        mrng = numpy_rng(cfg.seed, "builtin-mask", plan.split, plan.subset, plan.index, mplan.mask_label)
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


def _write_lists(out: Path, records: list[dict[str, Any]], splits: Sequence[str]) -> None:
    for split in splits:
        rows = sorted(
            (SUBSETS.index(r["subset"]), r["subset"], r["name"]) for r in records if r["split"] == split
        )
        entries = [f"{s}/composite_images/{n}.jpg" for _, s, n in rows]
        (out / f"IHD_{split}.txt").write_text("".join(e + "\n" for e in entries))
        (out / f"{split}.jsonl").write_text(
            "".join(json.dumps({"file_name": e, "text": ""}) + "\n" for e in entries)
        )
        for s in SUBSETS:
            names = [f"{n}.jpg" for _, s2, n in rows if s2 == s]
            (out / s / f"{s}_{split}.txt").write_text("".join(n + "\n" for n in names))


def _summary(records: list[dict[str, Any]], splits: Sequence[str]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    mix: dict[str, dict[str, float]] = {}
    mix_counts: dict[str, dict[str, int]] = {}
    for split in splits:
        rs = [r for r in records if r["split"] == split]
        c = Counter(r["subset"] for r in rs)
        counts[split] = {s: c.get(s, 0) for s in SUBSETS} | {"total": len(rs)}
        bc = Counter(fg_bin(r["fg_ratio"]) for r in rs)
        mix_counts[split] = {FG_BIN_LABELS[i]: bc.get(i, 0) for i in range(len(FG_BINS))}
        mix[split] = {k: round(v / max(len(rs), 1), 4) for k, v in mix_counts[split].items()}
    return {
        "counts": counts,
        "fg_ratio_mix": mix,
        "fg_ratio_counts": mix_counts,
        "fg_ratio_target": {
            lab: round(c / sum(FG_MIX_COUNTS), 4) for lab, c in zip(FG_BIN_LABELS, FG_MIX_COUNTS, strict=True)
        },
        "mask_methods": dict(
            sorted(
                Counter(
                    m
                    for m in {
                        (r["split"], r["subset"], r["name"].rsplit("_", 1)[0]): r["mask_method"]
                        for r in records
                    }.values()
                ).items()
            )
        ),
        "recolor_methods": dict(sorted(Counter(r["recolor"] for r in records).items())),
    }


def _generate(cfg: BuiltinDataConfig, out: Path, progress: bool = False) -> dict[str, Any]:
    """Write the whole dataset into the (empty) folder ``out``; return the BUILD.json record."""
    t0 = time.perf_counter()
    splits = split_names(cfg)
    found, skipped = available_photos(cfg.photo_set, splits)
    photos: dict[str, list[tuple[str, Image.Image]]] = {split: [] for split in splits}
    for spec, path in found:
        if spec.split not in photos:  # a val photo of a profile without a val split: unused
            continue
        photos[spec.split].append((spec.name, _load_photo(path, cfg.image_size)))
    for s in SUBSETS:
        for d in ("composite_images", "masks", "real_images"):
            (out / s / d).mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(cfg)
    it: Any = plans
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(plans, desc="build-data", unit="real")
    records: list[dict[str, Any]] = []
    for plan in it:
        records += _build_real(plan, cfg, photos, out)
    _write_lists(out, records, splits)
    # One row per composite with the photo it was cut from: composites of one photo are
    # correlated, so the claims' bootstrap resamples photos, not images (harmonylib.claims).
    pd.DataFrame(records).sort_values(["split", "subset", "name"]).to_csv(out / COMPOSITES_FILE, index=False)
    info = {
        "generator_version": GENERATOR_VERSION,
        "config": to_dict(cfg),
        "config_hash": config_hash(cfg),
        "seed": cfg.seed,
        "photos": {split: [n for n, _ in ps] for split, ps in photos.items()},
        "photo_files": {spec.name: f"{spec.package}/{spec.relpath}" for spec, _ in found},
        "skipped_photos": skipped,
        "reals": dict(Counter(f"{p.split}/{p.subset}" for p in plans)),
        "masks": dict(Counter(f"{p.split}/{p.subset}" for p in plans for _ in p.masks)),
        **_summary(records, splits),
        "build_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    (out / BUILD_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


# ------------------------------------------------------------------------------ public API


def read_build_info(root: str | os.PathLike) -> dict[str, Any] | None:
    """``BUILD.json`` of a built-in dataset folder, or None if absent or unreadable."""
    path = Path(root) / BUILD_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) and "config_hash" in info else None


def composite_photos(root: str | os.PathLike) -> dict[str, str] | None:
    """Composite name -> the photo it was cut from, for a built-in dataset; None for any other root.

    Rebuilt from ``BUILD.json`` without reading pixels: the names come from :func:`plan_dataset`
    and the photo from the real image's first draw (:func:`_photo_draw`), as at build time. The
    claims' bootstrap resamples these photos (``harmonylib.claim_rule``). None also when the
    folder was built by another generator version, whose draws may differ. A folder that holds
    ``composites.csv`` (written by every build since the validation split) is read directly.
    """
    table = Path(root) / COMPOSITES_FILE
    if table.is_file():
        df = pd.read_csv(table, usecols=["name", "photo"], dtype=str)
        return dict(zip(df["name"], df["photo"], strict=True))
    info = read_build_info(root)
    if info is None or info.get("generator_version") != GENERATOR_VERSION or "photos" not in info:
        return None
    cfg = BuiltinDataConfig(**info["config"])
    if config_hash(cfg) != info["config_hash"]:
        return None
    out = {}
    for plan in plan_dataset(cfg):
        names = info["photos"][plan.split]
        _, pi = _photo_draw(cfg, plan, len(names))
        for m in plan.masks:
            for k in range(1, m.n_composites + 1):
                out[f"{plan.real_id}_{m.mask_label}_{k}"] = names[pi]
    return out


def _is_current(info: dict[str, Any] | None, cfg: BuiltinDataConfig) -> bool:
    return (
        bool(info)
        and info.get("config_hash") == config_hash(cfg)
        and info.get("generator_version") == GENERATOR_VERSION
    )


def _refuse_foreign(root: Path) -> None:
    if root.exists() and read_build_info(root) is None and (root.is_file() or any(root.iterdir())):
        raise BuiltinDataError(
            f"{root} exists but holds no {BUILD_FILE}: it is not a built-in dataset, so it is left alone. "
            "Point data.root elsewhere, or remove that folder yourself."
        )


def build_builtin(cfg: BuiltinDataConfig, root: str | os.PathLike, progress: bool = False) -> dict[str, Any]:
    """Build the dataset into a temporary folder beside ``root``, then swap it into place.

    An existing built-in dataset at ``root`` is replaced only after the new one is complete; a
    folder that is not a built-in dataset is never touched.

    Returns:
        The ``BUILD.json`` record.

    Raises:
        BuiltinDataError: ``root`` exists and is not ours, or too few photos are installed.
    """
    root = resolve(root)
    _refuse_foreign(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.building-"))
    try:
        info = _generate(cfg, tmp, progress=progress)
        if root.exists():
            _refuse_foreign(root)
            old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(root, old)
            os.rename(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, root)
            except OSError:
                # another process finished first; keep theirs if it is this config
                if not _is_current(read_build_info(root), cfg):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
                return read_build_info(root) or info
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def ensure_builtin(data_cfg: DataConfig, force: bool = False, progress: bool = False) -> Path:
    """The built-in dataset's root, built first if absent or made from another config.

    Args:
        data_cfg: ``root`` says where; ``builtin`` says what (its hash is compared with BUILD.json).
        force: rebuild even if the folder is current.
        progress: show a progress bar while building.

    Returns:
        The absolute root path.

    Raises:
        BuiltinDataError: the folder exists without our BUILD.json (never deleted).
    """
    root = resolve(data_cfg.root)
    cfg = data_cfg.builtin
    if root.is_dir() and not any(root.iterdir()):
        with contextlib.suppress(OSError):
            root.rmdir()  # an empty folder is nobody's data
    _refuse_foreign(root)
    if force or not _is_current(read_build_info(root), cfg):
        build_builtin(cfg, root, progress=progress)
    return root


def ensure_dataset(cfg: Config, progress: bool = False) -> Path:
    """The dataset root of ``cfg``: the built-in one (built if needed), or a checked iHarmony4 root.

    Raises:
        FileNotFoundError: an ``iharmony4`` root that does not exist.
    """
    if cfg.data.kind == "builtin":
        return ensure_builtin(cfg.data, progress=progress)
    root = resolve(cfg.data.root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"iHarmony4 root {root} does not exist. Download iHarmony4 "
            "(github.com/bcmi/Image-Harmonization-Dataset-iHarmony4) and set data.root "
            "(e.g. `-p data_root /path/to/iHarmony4`), or use the mini profile's built-in data."
        )
    return root


def format_build_info(info: dict[str, Any]) -> str:
    """Counts per subset and the fg-ratio mix, as printed by ``harmonylib build-data``."""
    splits = list(info["counts"])
    lines = [f"{'subset':<12}" + "".join(f"{sp:>7}" for sp in splits)]
    for s in (*SUBSETS, "total"):
        lines.append(f"{s:<12}" + "".join(f"{info['counts'][sp][s]:>7}" for sp in splits))
    lines.append("fg-ratio mix   " + "  ".join(f"{lab:>8}" for lab in FG_BIN_LABELS))
    lines.append(
        "target         " + "  ".join(f"{info['fg_ratio_target'][lab]:>8.3f}" for lab in FG_BIN_LABELS)
    )
    for split in splits:
        lines.append(
            f"{split:<15}" + "  ".join(f"{info['fg_ratio_mix'][split][lab]:>8.3f}" for lab in FG_BIN_LABELS)
        )
    lines.append("photos: " + "; ".join(f"{sp} {info['photos'][sp]}" for sp in splits))
    return "\n".join(lines)


def _run_build(args: argparse.Namespace) -> int:
    from harmonylib.config import load_config

    overrides = {"data.root": args.root} if args.root else None
    cfg = load_config(args.profile, overrides)
    if cfg.data.kind != "builtin":
        print(f"profile {cfg.profile!r} uses data.kind={cfg.data.kind!r}; nothing to build")
        return 2
    t0 = time.perf_counter()
    root = ensure_builtin(cfg.data, force=args.force, progress=True)
    info = read_build_info(root)
    print(
        f"{root} ({time.perf_counter() - t0:.1f} s; built in {info['build_seconds']} s at {info['build_time']})"
    )
    print(format_build_info(info))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonylib build-data``."""
    p = subparsers.add_parser("build-data", help="build the built-in dataset of a profile (smoke, mini)")
    p.add_argument("--profile", default="mini", help="profile name or YAML path (default: mini)")
    p.add_argument("--root", default=None, help="where to build (default: the profile's data.root)")
    p.add_argument("--force", action="store_true", help="rebuild even if the folder is current")
    p.set_defaults(func=_run_build)

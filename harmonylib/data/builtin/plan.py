"""The built-in dataset's plan: every real image, its masks and composites, their names. No pixels.

Splits and their sizes (iHarmony4's subset proportions after each subset gets its minimum), the
foreground-ratio bin of every mask (iHarmony4's test mix, paper Table 3), how many composites
share a mask (``x_1_1 ... x_1_5``), iHarmony4-style names, and each composite's recolouring
strength quantile. Every random stream is keyed by split and subset (``numpy_rng``), so adding a
split moves no other.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from harmonylib.config import SUBSETS, BuiltinDataConfig
from harmonylib.data.iharmony4 import PUBLISHED_COUNTS
from harmonylib.imageproc import FG_BINS
from harmonylib.reproducibility import numpy_rng

# iHarmony4's test mix over the evaluator's foreground-ratio bins (imageproc.FG_BINS).
FG_MIX_COUNTS = (3835, 1951, 1618)  # paper Table 3, N_samples on iHarmony4 test (sum 7404)
# A composite's strength quantile z is clipped to +-_STRENGTH_CLIP sigmas (_assign_strengths).
_STRENGTH_CLIP = 2.0
# Probability that the next mask of HCOCO/HFlickr lies on the same real image (several objects).
_SHARE_REAL = 0.3


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

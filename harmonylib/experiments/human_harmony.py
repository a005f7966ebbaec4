"""Human Harmony as the experiments read it: which root, its test pairs, its masks.

The dataset is built by notebook 11 (:mod:`harmonylib.inverse_data`), at
``inverse_data.default_human_harmony_root(cfg, out)``; Table 3, Figure 2 and the Figure 4 grid
score or count it with the iHarmony4-trained models. A root that is not built reads as no pairs.
"""

from __future__ import annotations

import os
from pathlib import Path

from harmonylib.experiments.context import Experiment
from harmonylib.paths import resolve


def resolve_human_harmony_root(exp: Experiment, given: str | os.PathLike = "", build: bool = True) -> Path:
    """The Human Harmony root a notebook uses: ``given``, else notebook 11's default root.

    The default is ``inverse_data.default_human_harmony_root``; when ``build``, it is built first
    if it is not built yet (``inverse_data.ensure_human_harmony``: on smoke/mini from the
    imaterialist-format fixture, with the profile's inverse model and classifier).
    """
    if given:
        return resolve(given)
    from harmonylib import inverse_data

    if build:
        return inverse_data.ensure_human_harmony(exp.cfg, exp.out, progress=exp.progress)
    return inverse_data.default_human_harmony_root(exp.cfg, exp.out)


def human_harmony_samples(root: str | os.PathLike | None, split: str = "test") -> list:
    """The Human Harmony split of a built root (notebook 11's output), or [] if it is not built."""
    from harmonylib.data.iharmony4 import read_split

    if not root:
        return []
    root = resolve(root)
    if not (root / f"IHD_{split}.txt").is_file():
        return []
    return read_split(root, split)


def human_harmony_mask_sources(root: str | os.PathLike | None) -> list:
    """Objects with ``.mask`` for every Human Harmony pair of a prepared root (all splits), or []."""
    from harmonylib.data.human_harmony import PAIRS_FILE, human_harmony_pairs

    if not root or not (resolve(root) / PAIRS_FILE).is_file():
        return []
    return human_harmony_pairs(resolve(root))

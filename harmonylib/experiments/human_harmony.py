"""Human Harmony: its build (notebook 11) and how the experiments read it (root, test pairs, masks).

:func:`human_harmony_dataset` builds the dataset (the stages of
:func:`harmonylib.inverse_data.build_human_harmony`) at
``inverse_data.default_human_harmony_root(cfg, out)`` and reads it back, as
:func:`~harmonylib.experiments.table2` does for Table 2. Table 3, Figure 2 and the Figure 4 grid
score or count it with the iHarmony4-trained models. A root that is not built reads as no pairs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harmonylib.experiments.context import Experiment
from harmonylib.paths import resolve


@dataclass
class HumanHarmonyResult:
    """The built Human Harmony dataset, as notebook 11 shows it.

    Attributes:
        build: what each stage made (``inverse_data.HumanHarmonyBuild``: root, source, the
            prepare summary, generation, classifier run, selection).
        train, test: the root's splits (``read_split``).
        stats: the foreground-ratio mix beside the paper's Table 3 test counts.
        summary: the notebook's key numbers (``n_kept``, ``n_dropped``, ``train``, ``test``,
            ``candidates_per_second``).
    """

    build: Any
    train: list
    test: list
    stats: pd.DataFrame
    summary: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.build.root


def human_harmony_dataset(exp: Experiment, imaterialist_root: str | os.PathLike = "") -> HumanHarmonyResult:
    """Build the Human Harmony dataset (paper §4.2, §5.1.2) and read it back; finished stages are reused.

    Args:
        exp: from :func:`~harmonylib.experiments.setup` (its ``cfg.seed`` is the split, generation
            and training seed; ``exp.out`` the results root).
        imaterialist_root: the unpacked imaterialist-fashion-2020-fgvc7 release (paper profile);
            empty on smoke/mini: the generated stand-in in the release's format.
    """
    from harmonylib import inverse_data
    from harmonylib.data.iharmony4 import read_split

    build = inverse_data.build_human_harmony(
        exp.cfg, exp.out, imaterialist_root or None, progress=exp.progress
    )
    train, test = read_split(build.root, "train"), read_split(build.root, "test")
    summary = {
        "n_kept": build.prepared["n_kept"],
        "n_dropped": build.prepared["n_dropped_product_only"],
        "train": len(train),
        "test": len(test),
        "candidates_per_second": build.generation["candidates_per_second"],
    }
    return HumanHarmonyResult(build, train, test, inverse_data.read_fg_ratio_stats(build.root), summary)


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

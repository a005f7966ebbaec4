"""Table 2, steps 1-2: the augmented training data, and how the candidates differ from their reals.

The inverse pipeline (inverse UNet + inverse Harmony-VAE, trained on the whole training split as
in §4.1) generates K candidates per (real, mask) pair of each subset's training split; K is
``augment.table2_k``, raised to ⌈γ·N2/N1⌉ when smaller. ``augment.mix_training_list`` then adds
⌈γ·N2/N1⌉ of them per pair (γ = 1) to the subset's training list (:func:`generate_table2_data`).

:func:`table2_candidate_fidelity` compares the candidates mixed in with the dataset's own
composites (:func:`harmonylib.augment.foreground_difference`, summarised per subset and source).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harmonylib.config import Config
from harmonylib.inverse_data.common import GEN_ROOT_NAME, _check_inverse, _key, _subset_samples, results_root
from harmonylib.paths import relative_to_home


@dataclass(frozen=True)
class SubsetMix:
    """One subset's share of the augmented data (paper §4.1 notation)."""

    subset: str
    n_pairs: int  # N1: (real, mask) pairs in the training split
    n_composites: int  # N2: composites in the training split
    per_pair: int  # ⌈γ·N2/N1⌉ generated composites added per pair
    k: int  # candidates generated per pair (>= per_pair)
    added: int  # N1 · per_pair


@dataclass
class AugmentedData:
    """The generated root of Table 2 and what it adds per subset."""

    main_root: Path
    gen_root: Path
    gamma: float
    subsets: dict[str, SubsetMix]
    generation: dict[str, Any]  # candidates generated now, seconds, candidates per second

    def counts_frame(self) -> pd.DataFrame:
        """One row per subset: N1, N2, per pair, K, added, and the augmented list's size."""
        rows = [
            {**dataclasses.asdict(m), "augmented_total": m.n_composites + m.added}
            for m in self.subsets.values()
        ]
        return pd.DataFrame(rows)


def generate_table2_data(
    cfg: Config,
    pipeline: Any,
    out_dir: str | os.PathLike | None = None,
    *,
    subsets: Iterable[str] | None = None,
    progress: bool = True,
) -> AugmentedData:
    """Steps 1-2 of Table 2: K candidates per training pair with the inverse pipeline, then γ-mixing.

    Args:
        cfg: the resolved config (``augment`` section: gamma, table2_k, generation settings).
        pipeline: the inverse ``DiffHarmonyPipeline`` (``assemble_pipeline(cfg, "inverse")``).
        out_dir: the results root (default ``results/<profile>``).
        subsets: default ``cfg.augment.table2_subsets``.
        progress: progress bars.

    Returns:
        An :class:`AugmentedData`. The generated root's name carries a key of the inverse model's
        weights, K, γ, the seed and the generation settings, so the augmented runs (whose config
        holds that path) are retrained whenever the generated data would differ.
    """
    from harmonylib.augment import (
        generate_candidates,
        mix_training_list,
        mixing_count,
        model_hashes,
        pairs_from_samples,
        read_manifest,
    )
    from harmonylib.data.builtin import ensure_dataset

    _check_inverse(pipeline)
    a = cfg.augment
    subsets = tuple(subsets or a.table2_subsets)
    main_root = ensure_dataset(cfg)
    plan: dict[str, tuple[list, int, int, int, int]] = {}
    for s in subsets:
        train = _subset_samples(main_root, "train", s)
        pairs = pairs_from_samples(train)
        m = mixing_count(a.gamma, len(pairs), len(train))
        plan[s] = (pairs, len(pairs), len(train), m, max(a.table2_k, m))
    key = _key(
        {
            "models": model_hashes(pipeline),
            "k": {s: p[4] for s, p in plan.items()},
            "gamma": a.gamma,  # the mixed list lives in the same root: a new γ must change the path
            "seed": cfg.seed,
            "steps": a.generation_steps,
            "main_root": relative_to_home(main_root),  # the same generated folder in every clone
        }
    )
    gen_root = results_root(cfg, out_dir) / "table2" / f"generated-{key}"
    before = len(read_manifest(gen_root)) if (gen_root / "manifest.jsonl").is_file() else 0
    t0 = time.perf_counter()
    for pairs, _, _, _, k in plan.values():
        generate_candidates(
            pipeline, pairs, gen_root, k=k, seed=cfg.seed, batch_size=a.generation_batch_size,
            num_inference_steps=a.generation_steps, rank=0, world_size=1, progress=progress,
        )  # fmt: skip
    seconds = time.perf_counter() - t0
    made = len(read_manifest(gen_root)) - before
    mix = mix_training_list(
        main_root, gen_root, a.gamma, cfg.seed, subsets=subsets, gen_root_name=GEN_ROOT_NAME
    )
    mixes = {
        s: SubsetMix(s, c["n_pairs"], c["n_composites"], c["per_pair"], plan[s][4], c["added"])
        for s in subsets
        for c in [mix.counts[s]]
    }
    generation = {
        "generated": made,
        "seconds": seconds,
        "candidates_per_second": made / seconds if made and seconds > 0 else None,
        "torch_threads": torch.get_num_threads(),
    }
    return AugmentedData(main_root, gen_root, a.gamma, mixes, generation)


def table2_candidate_fidelity(data: AugmentedData, progress: bool = False) -> pd.DataFrame:
    """Original training composites against the generated ones mixed in, per subset.

    One row per (subset, source): the means of :func:`harmonylib.augment.foreground_difference`
    (fMSE, colour shift, and the residual fMSE that no per-channel affine colour map explains).
    The paper reads Table 2 as evidence that the inverse model makes good composites; this says
    whether the candidates differ from their reals the way the dataset's composites do (colour and
    light) or also in other ways (blur, artefacts) that a harmonizer would then learn to undo.
    """
    from harmonylib.augment import FIDELITY_COLUMNS
    from harmonylib.augment import candidate_fidelity as per_image
    from harmonylib.data.iharmony4 import read_split

    samples = read_split(
        {"main": data.main_root, GEN_ROOT_NAME: data.gen_root}, "train", subsets=list(data.subsets)
    )
    df = per_image(samples, progress=progress)
    df["source"] = np.where(df["root_name"] == GEN_ROOT_NAME, "generated", "original")
    out = df.groupby(["subset", "source"], sort=False)[list(FIDELITY_COLUMNS)].mean().reset_index()
    out.insert(2, "n", df.groupby(["subset", "source"], sort=False).size().to_numpy())
    return out


def write_candidate_fidelity(cfg: Config, data: AugmentedData, out_dir: str | os.PathLike | None = None,
                             progress: bool = False) -> tuple[pd.DataFrame, Path]:  # fmt: skip
    """:func:`table2_candidate_fidelity` to ``<results>/tables/table2_candidates.csv`` (atomic)."""
    from harmonylib.io import atomic_write_text

    df = table2_candidate_fidelity(data, progress=progress)
    path = results_root(cfg, out_dir) / "tables" / "table2_candidates.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, df.to_csv(index=False, float_format="%.4f"))
    return df, path

"""Step 2 of the augmentation: the blending ratio γ (paper §4.1).

With N1 (real, mask) pairs and N2 composites in a subset's training split, ⌈γ·N2/N1⌉ randomly
chosen candidates per pair are added to the training list (:func:`mix_training_list`), which is
written into the generated root beside the candidates; the original lists are never touched.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from harmonylib.augment.manifest import GEN_ROOT_NAME, MIX_FILE, AugmentError, read_manifest
from harmonylib.data.iharmony4 import Sample, read_split
from harmonylib.io import atomic_write_json, atomic_write_text
from harmonylib.reproducibility import numpy_rng


def mixing_count(gamma: float, n_pairs: int, n_composites: int) -> int:
    """⌈γ·N2/N1⌉ (paper §4.1): generated composites added per (real, mask) pair.

    Computed in exact rational arithmetic (γ is taken as the decimal it is written as), so
    ``γ·N2/N1`` landing on an integer never rounds up by a float error.

    Paper §5.3.2 (γ = 1) quotes train+test counts that are each 3 above the files: HFlickr
    4,836 reals / 8,280 composites (files: 4,833 / 8,277) → 2 per pair either way; Hday2night
    109 / 447 (files: 106 / 444) → 5. :func:`mix_training_list` counts the training split's files.
    """
    if n_pairs <= 0:
        raise ValueError(f"n_pairs (N1) must be positive, got {n_pairs}")
    if n_composites < 0 or gamma < 0:
        raise ValueError(f"gamma and n_composites must be >= 0, got {gamma}, {n_composites}")
    g = Fraction(str(gamma)) if isinstance(gamma, float) else Fraction(gamma)
    return math.ceil(g * n_composites / n_pairs)


@dataclass
class MixResult:
    """What :func:`mix_training_list` added: entries, per-subset counts, the list written."""

    added: list[str]
    counts: dict[str, dict[str, int]]
    list_path: Path | None


def mix_training_list(
    main_root: str | os.PathLike,
    gen_root: str | os.PathLike,
    gamma: float,
    seed: int,
    *,
    subsets: Iterable[str] | None = None,
    split: str = "train",
    gen_root_name: str = GEN_ROOT_NAME,
    write: bool = True,
) -> MixResult:
    """Add ⌈γ·N2/N1⌉ randomly chosen generated candidates per (real, mask) pair (paper §4.1).

    N1 (pairs) and N2 (composites) are counted per subset from the ``split`` list's files (the
    paper's Table 2 augments HFlickr and Hday2night separately, each with γ = 1). The candidates
    of each pair are drawn without replacement with ``numpy_rng(seed, "mix", pair_id)``, so the
    choice does not depend on the order of pairs.

    Writes ``<gen_root>/IHD_<split>.txt`` holding only the added entries
    (``@<gen_root_name>/<Subset>/composite_images/<name>.png``), so that
    ``read_split({"main": main_root, gen_root_name: gen_root}, split)`` reads the augmented list:
    the original entries from the main root plus these. The original lists are never touched.
    ``MIX.json`` beside it records γ, the seed and the counts.

    Raises:
        AugmentError: a pair has fewer candidates than ⌈γ·N2/N1⌉ (the message gives K, N1, N2
            and the number needed), or the generated root has no manifest.
    """
    main_root, gen_root = Path(main_root), Path(gen_root)
    samples = read_split(main_root, split, subsets=subsets, check=False)
    if not samples:
        raise AugmentError(
            f"{main_root}: the {split} list has no samples{' in ' + str(subsets) if subsets else ''}"
        )
    by_pair: dict[str, list[dict[str, Any]]] = {}
    for rec in read_manifest(gen_root):
        by_pair.setdefault(rec["pair_id"], []).append(rec)

    per_subset: dict[str, list[Sample]] = {}
    for s in samples:
        per_subset.setdefault(s.subset, []).append(s)
    added: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for subset, subs in per_subset.items():
        pair_ids = list(dict.fromkeys(f"{s.subset}/{s.mask_id}" for s in subs))
        n1, n2 = len(pair_ids), len(subs)
        m = mixing_count(gamma, n1, n2)
        have = {pid: len(by_pair.get(pid, [])) for pid in pair_ids}
        k_min = min(have.values())
        if k_min < m:
            short = [pid for pid, n in have.items() if n < m]
            raise AugmentError(
                f"{subset}: γ={gamma} needs ⌈γ·N2/N1⌉ = ⌈{gamma}·{n2}/{n1}⌉ = {m} generated candidates per "
                f"(real, mask) pair, but {len(short)} of {n1} pairs have fewer (smallest K = {k_min}, "
                f"e.g. {short[:3]}). Generate at least K = {m} candidates per pair (generate_candidates(k=...))."
            )
        for pid in pair_ids:
            cands = sorted(by_pair[pid], key=lambda r: int(r["j"]))
            rng = numpy_rng(seed, "mix", pid)
            chosen = sorted(rng.choice(len(cands), size=m, replace=False).tolist())
            for c in chosen:
                added.append(f"@{gen_root_name}/{cands[c]['file']}")
        counts[subset] = {"n_pairs": n1, "n_composites": n2, "per_pair": m, "added": n1 * m}

    list_path = None
    if write:
        list_path = gen_root / f"IHD_{split}.txt"
        atomic_write_text(list_path, "".join(e + "\n" for e in added))
        atomic_write_json(
            gen_root / MIX_FILE,
            {"gamma": gamma, "seed": seed, "split": split, "gen_root_name": gen_root_name,
             "main_root": str(main_root), "counts": counts},
        )  # fmt: skip
    return MixResult(added=added, counts=counts, list_path=list_path)

"""The Human Harmony dataset (paper §4.2, §5.1.2), built with the inverse model.

:func:`imaterialist_source` (the real release for the paper profile, a generated stand-in in the
release's format for smoke/mini), then the builder's stages prepare → generate (inverse pipeline,
K = ``augment.human_harmony_k``, :func:`generate_human_harmony_candidates`) → select (harmony
classifier, ``ensure_trained(cfg, "classifier")``, :func:`harmony_classifier`), then
:func:`write_fg_ratio_stats`; :func:`build_human_harmony` runs them in that order and marks the root
done. The result lies at :func:`default_human_harmony_root` (``<results>/data/HumanHarmony``), an
iHarmony4-layout root that ``read_split`` reads unchanged; :func:`ensure_human_harmony` builds it
once for other notebooks, :func:`harmonylib.experiments.human_harmony_dataset` for notebook 11.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harmonylib import metrics
from harmonylib.config import Config
from harmonylib.inverse_data.common import _check_inverse, results_root
from harmonylib.io import atomic_path, atomic_write_json
from harmonylib.paths import portable, relative_to_home, resolve

HUMAN_HARMONY_DONE = "BUILD_DONE.json"
FG_RATIO_STATS_FILE = "human_harmony_fg_ratio_stats.csv"
FG_RATIOS_FILE = "human_harmony_fg_ratios.csv"


def default_human_harmony_root(cfg: Config, out_dir: str | os.PathLike | None = None) -> Path:
    """Where the Human Harmony dataset of ``cfg`` is built: ``<results root>/data/HumanHarmony``.

    ``read_split(default_human_harmony_root(cfg, out_dir), "test")`` reads it (notebooks 06 and 09);
    :func:`ensure_human_harmony` builds it when absent. (``experiments.resolve_human_harmony_root``
    is the notebooks' choice between a root they were given and this default.)
    """
    return results_root(cfg, out_dir) / "data" / "HumanHarmony"


def imaterialist_source(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    imaterialist_root: str | os.PathLike | None = None,
) -> Path:
    """The iMaterialist-Fashion-2020 release to build from.

    Args:
        imaterialist_root: the unpacked release (``train.csv``, ``label_descriptions.json``,
            ``train/``). Required for profiles on real data (``data.kind != "builtin"``).

    Returns:
        ``imaterialist_root``, or (smoke, mini) the generated stand-in at
        ``<results root>/data/imaterialist-fixture`` (``augment.human_harmony_fixture_images``
        images), written when absent or made with other settings.

    Raises:
        FileNotFoundError: no release given on a real-data profile, or it lacks ``train.csv``.
    """
    from harmonylib.data.imaterialist_fixture import build_imaterialist_fixture

    if imaterialist_root:
        src = resolve(imaterialist_root)
        if not (src / "train.csv").is_file():
            raise FileNotFoundError(
                f"{src}: no train.csv; unpack imaterialist-fashion-2020-fgvc7 "
                "(https://www.kaggle.com/c/imaterialist-fashion-2020-fgvc7/data) and pass its folder"
            )
        return src
    if cfg.data.kind != "builtin":
        raise FileNotFoundError(
            f"profile {cfg.profile!r} builds Human Harmony from the real imaterialist-fashion-2020-fgvc7 "
            "release: download it and pass imaterialist_root (e.g. `-p imaterialist_root /path/to/it`)"
        )
    a = cfg.augment
    args = {
        "n_images": a.human_harmony_fixture_images,
        "seed": cfg.seed,
        "image_size": a.human_harmony_fixture_size,
    }
    src = results_root(cfg, out_dir) / "data" / "imaterialist-fixture"
    marker = src / "FIXTURE.json"
    if not (marker.is_file() and json.loads(marker.read_text()).get("args") == args):
        info = build_imaterialist_fixture(src, **args)
        atomic_write_json(
            marker, {"args": args, "info": {k: v for k, v in info.items() if not k.endswith("_ids")}}
        )
    return src


def describe_filter(summary: Mapping[str, Any]) -> str:
    """The product-only rule and its effect, from a ``prepare_human_harmony`` summary."""
    rule = summary["rule"]
    return (
        f"rule: keep an image whose segments cover >= {rule['min_body_regions']} body regions of "
        f"{list(rule['body_supercategories'])}\n"
        f"kept {summary['n_kept']} of {summary['n_images']} images; dropped {summary['n_dropped_product_only']} "
        f"product-only images (e.g. {summary['dropped_product_only'][:3]})\n"
        f"split: train {summary['split']['train']}, test {summary['split']['test']} "
        f"(paper: {summary['paper']['train']} / {summary['paper']['test']})"
    )


def generate_human_harmony_candidates(
    cfg: Config, root: str | os.PathLike, pipeline: Any, *, progress: bool = True
) -> dict[str, Any]:
    """Stage 2 with ``augment.human_harmony_k`` candidates per pair, timed.

    Returns:
        ``{"k", "pairs", "generated", "seconds", "candidates_per_second", "torch_threads"}``
        (``generated`` counts candidates made by this call; a resumed build makes fewer).
    """
    from harmonylib.augment import read_manifest
    from harmonylib.data.human_harmony import CANDIDATES_DIR, read_pairs
    from harmonylib.human_harmony_build import generate_human_harmony

    _check_inverse(pipeline)
    root = Path(root)
    cand = root / CANDIDATES_DIR
    before = len(read_manifest(cand)) if (cand / "manifest.jsonl").is_file() else 0
    a = cfg.augment
    t0 = time.perf_counter()
    generate_human_harmony(
        root, pipeline, k=a.human_harmony_k, seed=cfg.seed, batch_size=a.generation_batch_size,
        num_inference_steps=a.generation_steps, rank=0, world_size=1, progress=progress,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    made = len(read_manifest(cand)) - before
    return {
        "k": a.human_harmony_k,
        "pairs": len(read_pairs(root)),
        "generated": made,
        "seconds": seconds,
        "candidates_per_second": made / seconds if made and seconds > 0 else None,
        "torch_threads": torch.get_num_threads(),
    }


def harmony_classifier(cfg: Config, out_dir: str | os.PathLike | None = None, *, progress: bool = True):
    """The harmony classifier (``ensure_trained(cfg, "classifier")``) in ``eval()`` mode, and its run."""
    from harmonylib.assemble import run_dir_for
    from harmonylib.training.runs import ensure_trained

    run = ensure_trained(
        cfg,
        "classifier",
        run_dir=run_dir_for(cfg, "classifier", out_dir) if out_dir else None,
        progress=progress,
    )
    return run.load_model(ema=True).eval(), run


def write_fg_ratio_stats(root: str | os.PathLike) -> dict[str, Path]:
    """The foreground-ratio mix of a built Human Harmony root, over ``metrics.FG_BINS``.

    Writes ``human_harmony_fg_ratio_stats.csv`` (per split and bin: ``n``, ``fraction``, and for the
    test split the paper's Table 3 ``N_samples`` 26 / 323 / 2,597 with their fractions) and
    ``human_harmony_fg_ratios.csv`` (one row per pair: ``dataset``, ``split``, ``image``,
    ``fg_ratio``, readable by ``figures.read_fg_ratio_csv``). Ratios are the evaluator's (dither,
    256²), from ``human_harmony_pairs.csv``.
    """
    from harmonylib.data.human_harmony import PAPER_TEST_FG_MIX, read_pairs

    root = Path(root)
    pairs = read_pairs(root)
    rows = []
    paper_total = sum(PAPER_TEST_FG_MIX)
    for split in ("train", "test", "all"):
        sel = pairs if split == "all" else pairs[pairs["split"] == split]
        total = len(sel)
        for b, label in enumerate(metrics.FG_BIN_LABELS):
            n = int((sel["fg_bin"] == b).sum())
            rows.append(
                {
                    "split": split,
                    "fg_bin": label,
                    "n": n,
                    "fraction": n / total if total else float("nan"),
                    "paper_n": PAPER_TEST_FG_MIX[b] if split == "test" else None,
                    "paper_fraction": PAPER_TEST_FG_MIX[b] / paper_total if split == "test" else None,
                }
            )
    stats = pd.DataFrame(rows)
    ratios = pd.DataFrame(
        {
            "dataset": "Human Harmony",
            "split": pairs["split"],
            "image": pairs["image_id"],
            "fg_ratio": pairs["fg_ratio"].astype(np.float64),
        }
    )
    paths = {"stats": root / FG_RATIO_STATS_FILE, "ratios": root / FG_RATIOS_FILE}
    with atomic_path(paths["stats"]) as tmp:
        stats.to_csv(tmp, index=False)
    with atomic_path(paths["ratios"]) as tmp:
        ratios.to_csv(tmp, index=False)
    return paths


def read_fg_ratio_stats(root: str | os.PathLike) -> pd.DataFrame:
    """``human_harmony_fg_ratio_stats.csv`` of a built root."""
    return pd.read_csv(Path(root) / FG_RATIO_STATS_FILE)


def _build_key(cfg: Config, source: Path) -> dict[str, Any]:
    # the source relative to the home: a build copied to another clone is still recognised
    return {
        "profile": cfg.profile,
        "seed": cfg.seed,
        "k": cfg.augment.human_harmony_k,
        "source": relative_to_home(source),
    }


def mark_human_harmony_done(cfg: Config, root: str | os.PathLike, source: Path, **record: Any) -> Path:
    """Write ``BUILD_DONE.json`` (last): what the build used, so :func:`ensure_human_harmony` can reuse it.

    Paths in ``record`` are written relative to the home (:func:`harmonylib.paths.portable`).
    """
    return _build_cache(cfg, root, source).mark_done(portable(record))


def is_human_harmony_built(cfg: Config, root: str | os.PathLike, source: Path) -> bool:
    """Whether ``root`` holds a finished build of this profile, seed, K and source."""
    return _build_cache(cfg, root, source).is_done()


def _build_cache(cfg: Config, root: str | os.PathLike, source: Path):
    """The built root as a :class:`~harmonylib.cache.CacheFolder`; ``BUILD_DONE.json`` holds the key.

    A root built with another key is rebuilt in place (stage 1 rewrites the pairs, stage 3 replaces
    stale composites), so its done marker is not a foreign-key refusal.
    """
    from harmonylib.cache import CacheFolder, Marker

    return CacheFolder(Path(root), _build_key(cfg, source), done=Marker(HUMAN_HARMONY_DONE, "key"),
                       what="a Human Harmony build")  # fmt: skip


@dataclass
class HumanHarmonyBuild:
    """What :func:`build_human_harmony` made and used, stage by stage.

    Attributes:
        root: the built root (:func:`default_human_harmony_root`).
        source: the release it was built from (:func:`imaterialist_source`).
        prepared: stage 1's summary (``prepare_human_harmony``: filter, split; :func:`describe_filter`).
        generation: stage 2's record (:func:`generate_human_harmony_candidates`).
        classifier_run: the harmony classifier's ``TrainedRun`` (stage 3).
        selection: stage 3's record (``select_human_harmony``; its ``"selection"`` sums it up).
        stats_files: the foreground-ratio files (:func:`write_fg_ratio_stats`).
    """

    root: Path
    source: Path
    prepared: dict[str, Any]
    generation: dict[str, Any]
    classifier_run: Any
    selection: dict[str, Any]
    stats_files: dict[str, Path]


def build_human_harmony(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    imaterialist_root: str | os.PathLike | None = None,
    *,
    progress: bool = False,
) -> HumanHarmonyBuild:
    """Every stage of the build, in order, then ``BUILD_DONE.json``; each stage resumes its own work.

    Prepare (product-only filter, masks, split) -> K candidates per pair with the inverse pipeline
    (its runs trained if missing) -> per mask the candidate the harmony classifier finds most
    unharmonious (trained if missing) -> the foreground-ratio statistics.

    Args:
        cfg: the resolved config.
        out_dir: the results root (default ``results/<profile>``).
        imaterialist_root: the real release (needed on real-data profiles).
        progress: progress bars.
    """
    from harmonylib.assemble import assemble_pipeline
    from harmonylib.data.human_harmony import prepare_human_harmony
    from harmonylib.human_harmony_build import select_human_harmony

    source = imaterialist_source(cfg, out_dir, imaterialist_root)
    root = default_human_harmony_root(cfg, out_dir)
    prepared = prepare_human_harmony(source, root, seed=cfg.seed, progress=progress)
    inverse = assemble_pipeline(cfg, "inverse", harmony_vae=True, out_dir=out_dir, progress=progress)
    generation = generate_human_harmony_candidates(cfg, root, inverse, progress=progress)
    classifier, clf_run = harmony_classifier(cfg, out_dir, progress=progress)
    selection = select_human_harmony(root, classifier, progress=progress)
    stats_files = write_fg_ratio_stats(root)
    mark_human_harmony_done(
        cfg, root, source, n_kept=prepared["n_kept"], selection=selection["selection"], generation=generation,
        classifier={"run_dir": str(clf_run.run_dir), "config_hash": clf_run.config_hash},
        inverse=getattr(inverse, "assembly_sources", {}),
    )  # fmt: skip
    return HumanHarmonyBuild(root, source, prepared, generation, clf_run, selection, stats_files)


def ensure_human_harmony(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    imaterialist_root: str | os.PathLike | None = None,
    *,
    progress: bool = False,
) -> Path:
    """The Human Harmony root of ``cfg``, built first (:func:`build_human_harmony`) when it is not.

    Args:
        cfg: the resolved config.
        out_dir: the results root (default ``results/<profile>``).
        imaterialist_root: the real release (needed on real-data profiles).
        progress: progress bars.

    Returns:
        :func:`default_human_harmony_root`; ``read_split(it, "train" | "test")`` reads it.
    """
    source = imaterialist_source(cfg, out_dir, imaterialist_root)
    root = default_human_harmony_root(cfg, out_dir)
    if is_human_harmony_built(cfg, root, source):
        return root
    return build_human_harmony(cfg, out_dir, imaterialist_root, progress=progress).root

"""Stages 2 and 3 of the Human Harmony build (paper §4.2): composites made with the inverse model.

The Human Harmony *source* (the iMaterialist release: filter, masks, split; stage 1) is read and
prepared by :mod:`harmonylib.data.human_harmony`, which imports no model. The stages that need
models sit here, on the augmentation side:

2. :func:`generate_human_harmony` -- K = 10 candidates per prepared pair with the inverse pipeline
   (:func:`harmonylib.augment.generate_candidates`; shards under ``accelerate launch``).
3. :func:`select_human_harmony` -- the harmony classifier keeps, per (real, mask) pair, the
   candidate with the highest P(unharmonious) (:func:`harmonylib.augment.select_best`); writes
   the composites and the lists.

``harmonylib human-harmony {prepare,generate,select,fixture}`` is registered here.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmonylib.augment import generate_candidates, score_candidates, select_best
from harmonylib.data.human_harmony import (
    CANDIDATES_DIR,
    PAPER_K,
    PAPER_SPLIT,
    SUBSET,
    SUMMARY_FILE,
    FilterRule,
    human_harmony_pairs,
    prepare_human_harmony,
    read_pairs,
    subset_dir,
)
from harmonylib.io import atomic_write_json, atomic_write_text, link_or_copy


def generate_human_harmony(
    out_root: str | os.PathLike,
    pipeline: Any,
    *,
    k: int = PAPER_K,
    seed: int = 0,
    batch_size: int = 8,
    candidates_root: str | os.PathLike | None = None,
    **generate_kwargs: Any,
) -> Path:
    """Stage 2: K candidates per prepared pair with the inverse pipeline (resumable, shardable).

    ``generate_kwargs`` go to :func:`harmonylib.augment.generate_candidates` (``rank``,
    ``world_size``, ``num_inference_steps``, ``size_mode``, ``size``, ``model_paths``, ...).

    Returns:
        This process's manifest part.
    """
    out_root = Path(out_root)
    cand = Path(candidates_root) if candidates_root is not None else out_root / CANDIDATES_DIR
    return generate_candidates(
        pipeline,
        human_harmony_pairs(out_root),
        cand,
        k=k,
        seed=seed,
        batch_size=batch_size,
        **generate_kwargs,
    )


def select_human_harmony(
    out_root: str | os.PathLike,
    classifier: Any,
    *,
    candidates_root: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    link_mode: str = "hardlink",
    progress: bool = True,
) -> dict[str, Any]:
    """Stage 3: score the candidates, keep the best per pair, write composites and lists.

    Returns:
        The updated summary (also in ``HUMAN_HARMONY.json``), with a ``selection`` block.

    Raises:
        ValueError: a prepared pair has no candidate.
    """
    out_root = Path(out_root)
    cand = Path(candidates_root) if candidates_root is not None else out_root / CANDIDATES_DIR
    records = score_candidates(classifier, cand, batch_size=batch_size, device=device, progress=progress)
    best = select_best(records, group_by="mask")
    pairs = read_pairs(out_root)
    sub = subset_dir(out_root)
    comp_dir = sub / "composite_images"
    comp_dir.mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    chosen_rows = []
    missing = []
    for r in pairs.itertuples():
        mask_id = Path(r.mask).stem
        rec = best.get(f"{SUBSET}/{mask_id}")
        if rec is None:
            missing.append(r.image_id)
            continue
        name = rec["name"] + Path(rec["file"]).suffix
        for stale in comp_dir.glob(f"{mask_id}_*"):
            if stale.name != name:
                stale.unlink()  # a different candidate selected earlier (e.g. another classifier)
        link_or_copy(cand / rec["file"], comp_dir / name, link_mode)
        lists[r.split].append(name)
        chosen_rows.append({"image_id": r.image_id, "composite": name, "j": rec["j"], "score": rec["score"]})
    if missing:
        raise ValueError(
            f"{len(missing)} prepared pairs have no candidate (e.g. ImageId {missing[0]}); "
            "run generate_human_harmony on all pairs first"
        )
    for split, names in lists.items():
        entries = [f"{SUBSET}/composite_images/{n}" for n in names]
        atomic_write_text(out_root / f"IHD_{split}.txt", "".join(e + "\n" for e in entries))
        atomic_write_text(
            out_root / f"{split}.jsonl",
            "".join(json.dumps({"file_name": e, "text": ""}) + "\n" for e in entries),
        )
        atomic_write_text(sub / f"{SUBSET}_{split}.txt", "".join(n + "\n" for n in names))
    summary_path = out_root / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    scores = np.array([c["score"] for c in chosen_rows], dtype=np.float64)
    summary["selection"] = {
        "group_by": "mask",
        "n_candidates": len(records),
        "n_selected": len(chosen_rows),
        "mean_selected_score": float(scores.mean()) if scores.size else float("nan"),
        "train": len(lists["train"]),
        "test": len(lists["test"]),
    }
    atomic_write_text(out_root / "human_harmony_selection.csv", pd.DataFrame(chosen_rows).to_csv(index=False))
    atomic_write_json(summary_path, summary)
    return summary


# --------------------------------------------------------------------------------------- CLI


def _run_prepare(args: argparse.Namespace) -> int:
    rule = FilterRule(min_body_regions=args.min_body_regions)
    s = prepare_human_harmony(args.src, args.out, seed=args.seed, rule=rule)
    print(
        f"kept {s['n_kept']} of {s['n_images']} images ({s['n_dropped_product_only']} product-only dropped)"
    )
    print(
        f"split: train {s['split']['train']}, test {s['split']['test']} (paper: {PAPER_SPLIT[0]} / {PAPER_SPLIT[1]})"
    )
    print(
        "test fg-ratio mix:", s["fg_ratio"]["test"]["counts"], "paper:", s["fg_ratio"]["paper_test"]["counts"]
    )
    return 0


def _run_generate(args: argparse.Namespace) -> int:
    from harmonylib.pipeline import DiffHarmonyPipeline

    pipe = DiffHarmonyPipeline.from_pretrained(args.pipeline)
    if args.device:
        pipe.to(args.device)
    generate_human_harmony(
        args.out, pipe, k=args.k, seed=args.seed, batch_size=args.batch_size,
        num_inference_steps=args.steps, model_paths={"pipeline": args.pipeline},
    )  # fmt: skip
    return 0


def _run_select(args: argparse.Namespace) -> int:
    from harmonylib.models.classifier import build_classifier

    clf = build_classifier(args.arch).load_authors_checkpoint(args.classifier).to(args.device)
    s = select_human_harmony(args.out, clf, batch_size=args.batch_size, device=args.device)
    print(
        f"selected {s['selection']['n_selected']} composites: train {s['selection']['train']}, test {s['selection']['test']}"
    )
    return 0


def _run_fixture(args: argparse.Namespace) -> int:
    from harmonylib.data.imaterialist_fixture import build_imaterialist_fixture

    info = build_imaterialist_fixture(
        args.out, n_images=args.n_images, seed=args.seed, image_size=args.image_size
    )
    print(f"wrote {info['n_images']} images ({info['n_product']} product-only) to {args.out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonylib human-harmony {prepare,generate,select,fixture}``."""
    p = subparsers.add_parser("human-harmony", help="build the Human Harmony dataset (paper §4.2)")
    sub = p.add_subparsers(dest="hh_command", metavar="STAGE", required=True)
    a = sub.add_parser("prepare", help="stage 1: filter, masks, split (no model)")
    a.add_argument("--src", required=True, help="unpacked imaterialist-fashion-2020-fgvc7 folder")
    a.add_argument("--out", required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--min-body-regions", type=int, default=2)
    a.set_defaults(func=_run_prepare)
    g = sub.add_parser("generate", help="stage 2: K candidates per pair (accelerate launch shards it)")
    g.add_argument("--out", required=True)
    g.add_argument("--pipeline", required=True, help="saved inverse DiffHarmonyPipeline folder")
    g.add_argument("--k", type=int, default=PAPER_K)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--steps", type=int, default=5)
    g.add_argument("--device", default=None)
    g.set_defaults(func=_run_generate)
    s = sub.add_parser("select", help="stage 3: classifier selection, composites and lists")
    s.add_argument("--out", required=True)
    s.add_argument("--classifier", required=True, help="model_state_dict.pth")
    s.add_argument("--arch", default="resnet50")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=_run_select)
    f = sub.add_parser("fixture", help="write a generated fixture in the imaterialist release format")
    f.add_argument("--out", required=True)
    f.add_argument("--n-images", type=int, default=14)
    f.add_argument("--image-size", type=int, default=64)
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=_run_fixture)


__all__ = ["add_parser", "generate_human_harmony", "select_human_harmony"]

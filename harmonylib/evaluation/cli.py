"""Scoring a folder of predictions against an iHarmony4-style test set, as the authors do.

``harmonylib evaluate --data-root R --split test --predictions P --out F.csv`` writes the
per-image CSV (atomically) and ``F.provenance.json``, and prints the aggregates. (The first
paragraph above is the command's ``--help`` description.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harmonylib.config import EvalConfig
from harmonylib.conventions import CONVENTIONS, DEFAULT_CONVENTION, get_convention
from harmonylib.evaluation.aggregate import aggregate, aggregate_by_fg_bins, format_report
from harmonylib.evaluation.ground_truth import GroundTruthCache, ground_truth_key
from harmonylib.evaluation.scoring import MissingPredictionsError, evaluate_predictions
from harmonylib.io import ImageReadError, atomic_path, atomic_write_json
from harmonylib.metrics import BACKGROUNDS, MASK_MODES


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``harmonylib evaluate``."""
    d = EvalConfig()
    p = subparsers.add_parser(
        "evaluate",
        help="score a folder of predictions (authors' 256 protocol); write a per-image CSV",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--data-root", required=True, help="iHarmony4 root (holds the split lists)")
    p.add_argument("--split", default="test", help="split list to score (default: test)")
    p.add_argument("--predictions", required=True, help="folder of predictions (<stem>.png)")
    p.add_argument("--out", required=True, help="per-image CSV to write")
    p.add_argument(
        "--background",
        choices=BACKGROUNDS,
        default=d.background,
        help="background pasted into the prediction before scoring (default: gt, the authors')",
    )
    p.add_argument(
        "--mask-mode",
        choices=MASK_MODES,
        default=d.mask_mode,
        help="mask binarisation (default: dither, the authors')",
    )
    p.add_argument("--resolution", type=int, default=d.resolution, help="metric resolution (default: 256)")
    p.add_argument(
        "--convention",
        choices=list(CONVENTIONS),
        default=d.convention,
        help="whose metric convention (default: diffharmony, the authors'); see harmonylib.conventions."
        " --resolution and --mask-mode apply to diffharmony only",
    )
    p.add_argument(
        "--allow-missing", action="store_true", help="score what exists; count missing predictions"
    )
    p.add_argument("--subsets", nargs="+", default=None, help="only these subsets")
    p.add_argument("--cache-dir", default=None, help="persist the prepared ground truth here (.npz)")
    p.add_argument("--workers", type=int, default=None, help="decoding threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    # lazy: only this command needs the dataset reader
    from harmonylib.data.iharmony4 import DataIntegrityError, read_split

    cfg = EvalConfig(
        resolution=args.resolution,
        background=args.background,
        mask_mode=args.mask_mode,
        allow_missing=args.allow_missing,
        convention=args.convention,
    )
    conv = get_convention(cfg.convention)
    cache = GroundTruthCache(args.cache_dir, workers=args.workers)
    try:
        samples = read_split(Path(args.data_root), args.split, subsets=args.subsets)
        df = evaluate_predictions(samples, args.predictions, cfg, cache=cache, progress=not args.no_progress)
    except (MissingPredictionsError, ImageReadError, DataIntegrityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    out = Path(args.out)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False, na_rep="nan")
    summary, bins = aggregate(df), aggregate_by_fg_bins(df, cfg.convention)
    from harmonylib.config import to_dict
    from harmonylib.provenance import provenance

    atomic_write_json(
        out.with_name(out.stem + ".provenance.json"),
        provenance(
            config=to_dict(cfg),
            command="harmonylib evaluate",
            data_root=str(args.data_root),
            split=args.split,
            predictions=str(args.predictions),
            ground_truth_key=ground_truth_key(samples, cfg.resolution, cfg.mask_mode),
            convention=conv.name,
            convention_definition=conv.definition(),
            summary=json.loads(summary.to_json(orient="records")),
        ),
    )
    if conv.name == DEFAULT_CONVENTION:
        print(f"protocol: resolution={cfg.resolution} background={cfg.background} mask_mode={cfg.mask_mode}")
    else:
        print(f"protocol: convention={conv.name} background={cfg.background}\n  {conv.definition()}")
    print(format_report(summary, bins))
    print(f"\nwrote {out} ({len(df)} rows)")
    return 0

"""Accuracy and ROC-AUC of a finished classifier run on any split (train, val, test).

The classifier recipe scores the test split once at the end of a run (``test_metrics.json``);
choosing between classifier settings must use the validation split instead, so this scores a
run on the split asked for::

    python -m harmonylib.training.classifier_eval --profile mini --set train.classifier.pooling=mask \\
        --run-dir /tmp/clf-mask --split val

The profile and ``--set`` overrides must be the ones the run was trained with: the run's config
hash is checked, so a score never belongs to another config's weights. Writes nothing unless
``--out`` is given.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from harmonylib.cli_format import Parser
from harmonylib.config import Config, ConfigError, load_config, parse_overrides

SPLITS = ("train", "val", "test")


def evaluate_classifier_run(cfg: Config, run_dir: str | os.PathLike, split: str = "val") -> dict[str, float]:
    """``{"accuracy", "roc_auc", "n_images", "split"}`` of the classifier run in ``run_dir`` on ``split``.

    Raises:
        FileNotFoundError: ``run_dir`` holds no finished run.
        ValueError: the run is not a classifier run, or was trained with another config than ``cfg``.
    """
    from harmonylib.training.classifier_data import NormalizedInputClassifier, evaluate_classifier
    from harmonylib.training.recipes import harmony_dataset
    from harmonylib.training.runs import TrainedRun, read_done, run_folder, run_hash

    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    done = read_done(run_dir)
    if done is None:
        raise FileNotFoundError(f"{run_dir}: no finished run (no DONE marker)")
    if done["recipe"] != "classifier":
        raise ValueError(f"{run_dir}: a {done['recipe']!r} run, not a classifier run")
    expected = run_hash(cfg, "classifier")
    if not run_folder(run_dir, expected).is_done():
        raise ValueError(
            f"{run_dir}: trained with config hash {done['config_hash']}, but this profile and these "
            f"overrides give {expected}; pass the --set values the run was trained with"
        )
    run = TrainedRun.from_done(Path(run_dir), done)
    rc = cfg.train.classifier
    model = NormalizedInputClassifier(run.load_model(ema=False))
    metrics = evaluate_classifier(model, harmony_dataset(cfg, rc.resolution, rc.resize, split=split))
    return {**metrics, "split": split}


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.training.classifier_eval") -> int:
    """Score a finished classifier run on one split; exit 0 done, 2 bad input."""
    ap = Parser(prog=prog, description="Accuracy and ROC-AUC of a finished classifier run on one split.")
    ap.add_argument("--profile", default="mini", help="the profile the run was trained with")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="its config overrides")
    ap.add_argument("--run-dir", required=True, help="the finished classifier run")
    ap.add_argument("--split", default="val", choices=SPLITS, help="choose settings on val; test once")
    ap.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.profile, parse_overrides(args.set))
        metrics = evaluate_classifier_run(cfg, args.run_dir, args.split)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(metrics, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

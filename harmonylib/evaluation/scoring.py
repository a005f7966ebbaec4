"""Scoring one method's predictions: find each sample's prediction file, decode it, sum its errors.

With the default convention the squared errors are summed in integers against the cached ground
truth (:mod:`harmonylib.evaluation.ground_truth`) on the decoding threads; another peer's
convention prepares and scores each sample itself (``conventions.score_sample``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmonylib.config import EvalConfig
from harmonylib.conventions import DEFAULT_CONVENTION, get_convention, score_sample
from harmonylib.evaluation.ground_truth import GroundTruthCache, SampleLike
from harmonylib.evaluation.parallel import _ordered_map, _progress
from harmonylib.io import load_rgb
from harmonylib.metrics import BACKGROUNDS, MASK_MODES, metrics_from_sums, resize_rgb, squared_error_sums

COLUMNS = ("image", "subset", "fg_ratio", "mse", "psnr", "fmse", "bmse", "missing")
METRICS = ("mse", "psnr", "fmse", "bmse")
_MISSING_SHOWN = 20


class MissingPredictionsError(FileNotFoundError):
    """Some samples have no prediction file; the message lists them (capped) and their count."""

    def __init__(self, predictions_dir: Path, missing: Sequence[str], total: int):
        self.missing = list(missing)
        shown = "\n  ".join(self.missing[:_MISSING_SHOWN])
        more = (
            f"\n  ... and {len(self.missing) - _MISSING_SHOWN} more"
            if len(self.missing) > _MISSING_SHOWN
            else ""
        )
        super().__init__(
            f"{len(self.missing)} of {total} predictions missing in {predictions_dir} "
            f"(looked for <stem>.png, then the composite's file name, flat or in <Subset>/):\n  "
            f"{shown}{more}\nPass allow_missing=True (--allow-missing) to score the others."
        )


def _listing(folder: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(folder) if e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def find_predictions(
    samples: Sequence[SampleLike], predictions_dir: str | os.PathLike, float_first: bool = False
) -> list[Path | None]:
    """The prediction file of each sample (None where there is none), in the documented order.

    Order: ``<stem>.png``, the composite's own file name, then both inside ``<Subset>/``. With
    ``float_first`` a ``<stem>.npy`` comes first in each folder (the ``issam`` convention).
    """
    root = Path(predictions_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: predictions folder does not exist")
    listings: dict[str, set[str]] = {"": _listing(root)}
    found: list[Path | None] = []
    for s in samples:
        if s.subset not in listings:
            listings[s.subset] = _listing(root / s.subset)
        own = Path(s.composite).name
        hit = None
        for sub in ("", s.subset):
            names = (f"{s.name}.npy", f"{s.name}.png", own) if float_first else (f"{s.name}.png", own)
            for fname in names:
                if fname in listings[sub]:
                    hit = root / sub / fname if sub else root / fname
                    break
            if hit is not None:
                break
        found.append(hit)
    return found


def evaluate_predictions(
    samples: Iterable[SampleLike],
    predictions_dir: str | os.PathLike | Sequence[str | os.PathLike | None],
    cfg: EvalConfig | None = None,
    cache: GroundTruthCache | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> pd.DataFrame:
    """Score one method's predictions with the authors' protocol (or a switched variant).

    Args:
        samples: the test set (objects with ``name``, ``subset``, ``composite``, ``mask``,
            ``real``), e.g. from ``harmonylib.data.iharmony4.read_split``.
        predictions_dir: the folder of predictions (see the module docstring for file names),
            or one path per sample, aligned with ``samples`` (None or a non-file = missing);
            Table 1's "Composite" row passes the composites themselves this way.
        cfg: resolution, background (``gt`` | ``composite`` | ``none``), mask mode
            (``dither`` | ``threshold``) and ``allow_missing``; default :class:`EvalConfig`.
        cache: a :class:`GroundTruthCache` to reuse across methods; a fresh one if None.
        progress: show progress bars (tqdm, on stderr).
        workers: decoding threads (default: the cache's, else :func:`default_workers`).

    Returns:
        One row per sample, in sample order, with columns ``image`` (composite stem),
        ``subset``, ``fg_ratio``, ``mse``, ``psnr``, ``fmse``, ``bmse``, ``missing``.

    Raises:
        MissingPredictionsError: a prediction is missing and ``cfg.allow_missing`` is False.
        harmonylib.io.ImageReadError: an image cannot be read (the message names it).
    """
    cfg = cfg or EvalConfig()
    if cfg.background not in BACKGROUNDS:
        raise ValueError(f"background {cfg.background!r} is not one of {list(BACKGROUNDS)}")
    if cfg.mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode {cfg.mask_mode!r} is not one of {list(MASK_MODES)}")
    conv = get_convention(cfg.convention)
    samples = list(samples)
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:_MISSING_SHOWN]
        raise ValueError(f"duplicate composite names would share a prediction file: {dup}")
    cache = cache if cache is not None else GroundTruthCache(workers=workers)
    workers = workers or cache.workers
    r = cfg.resolution

    if isinstance(predictions_dir, (str, os.PathLike)):
        pred_paths = find_predictions(samples, predictions_dir, float_first=conv.float_predictions)
    else:
        pred_paths = [Path(p) if p is not None and Path(p).is_file() else None for p in predictions_dir]
        if len(pred_paths) != len(samples):
            raise ValueError(f"{len(pred_paths)} prediction paths for {len(samples)} samples")
        predictions_dir = "<per-sample paths>"
    missing = [Path(s.composite).name for s, p in zip(samples, pred_paths, strict=True) if p is None]
    if missing and not cfg.allow_missing:
        raise MissingPredictionsError(Path(predictions_dir), missing, len(samples))

    n = len(samples)
    found = [i for i, p in enumerate(pred_paths) if p is not None]
    if conv.name != DEFAULT_CONVENTION:
        return _evaluate_convention(samples, pred_paths, found, conv, cfg.background, workers, progress)
    gt = cache.get(samples, r, cfg.mask_mode, with_composite=cfg.background == "composite", progress=progress)

    def score(i: int) -> tuple[int, int, int]:
        # Runs on the thread pool: decode, resize, and sum this image's squared errors.
        pred = resize_rgb(load_rgb(pred_paths[i], exif_transpose=False), r)  # (R, R, 3) uint8
        fg, total = squared_error_sums(pred, gt.real[i], gt.mask[i])
        return i, int(fg), int(total)

    fg_sum = np.zeros(n, np.int64)
    raw_total = np.zeros(n, np.int64)
    with (
        contextlib.closing(_ordered_map(score, found, workers)) as scored,
        _progress(len(found), "scoring", progress) as bar,
    ):
        for i, fg, total in scored:
            fg_sum[i], raw_total[i] = fg, total
            bar.update(1)

    # Pasting a background B into the prediction leaves the foreground error as it is and makes
    # the background error Σ_bg (B − real)²: 0 for the ground truth, a ground-truth-only sum for
    # the composite, the prediction's own for "none". Same integers as pasting, then scoring.
    if cfg.background == "gt":
        bg_sum = np.zeros(n, np.int64)
    elif cfg.background == "composite":
        bg_sum = gt.composite_bg_sum
    else:
        bg_sum = raw_total - fg_sum
    scores = metrics_from_sums(fg_sum, bg_sum, gt.n_fg, r * r, 3)
    is_missing = np.array([p is None for p in pred_paths], dtype=bool)
    out = {k: np.where(is_missing, np.nan, scores[k]) for k in METRICS}

    df = pd.DataFrame(
        {
            "image": names,
            "subset": [s.subset for s in samples],
            "fg_ratio": scores["fg_ratio"],
            **out,
            "missing": is_missing,
        },
        columns=list(COLUMNS),
    )
    return df


def _evaluate_convention(samples, pred_paths, found, conv, background, workers, progress) -> pd.DataFrame:
    """Score with a peer's convention: each sample prepared and scored on the thread pool."""
    n = len(samples)
    cols = {k: np.full(n, np.nan) for k in ("fg_ratio", *METRICS)}

    def score(i: int):
        return i, score_sample(samples[i], pred_paths[i], conv, background)

    with (
        contextlib.closing(_ordered_map(score, found, workers)) as scored,
        _progress(len(found), f"scoring ({conv.name})", progress) as bar,
    ):
        for i, values in scored:
            for k, v in values.items():
                cols[k][i] = v
            bar.update(1)
    df = pd.DataFrame(
        {
            "image": [s.name for s in samples],
            "subset": [s.subset for s in samples],
            **cols,
            "missing": np.array([p is None for p in pred_paths], dtype=bool),
        },
        columns=list(COLUMNS),
    )
    return df

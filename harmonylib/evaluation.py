"""Scoring a folder of predictions against an iHarmony4-style test set, as the authors do.

The protocol (resize to 256, dithered mask, ground-truth background pasted, 0–255 metrics) is
``harmonylib.metrics``; this module finds the prediction files, loads images (in a thread pool;
results never depend on order or thread count), keeps the prepared ground truth in a
:class:`GroundTruthCache` so that scoring many methods on one test set decodes it once, and
aggregates per subset, over all images, and by foreground ratio.

Prediction files. For a composite ``<Subset>/composite_images/<stem>.<ext>`` the first of these
that exists under the predictions folder ``P`` is used:

1. ``P/<stem>.png``: the authors' naming (``scripts/inference/main.py`` saves flat PNGs);
2. ``P/<stem>.<ext>``: the composite's own file name;
3. ``P/<Subset>/<stem>.png`` and 4. ``P/<Subset>/<stem>.<ext>``: one folder per subset.

Images are read with ``harmonylib.io.load_rgb`` / ``load_mask_l`` without EXIF rotation, as
the authors' ``Image.open(...).convert(...)`` reads them. One difference: an RGBA prediction is
composited on black where ``convert("RGB")`` drops alpha; the two agree for opaque images.

A missing prediction is an error that lists the missing files, unless ``allow_missing`` is set;
then the sample's row has ``missing=True`` and NaN metrics, and it is counted (``n_missing``)
but never averaged. The authors skip missing files silently (official-implementation.md §7).

Aggregation (differences from the authors' script are deliberate, and listed):

* per subset: the arithmetic mean of per-image values; "All": the mean over all images (not the
  mean of subset means), as the authors and every peer do (peers.md §5);
* fMSE is NaN for an empty mask and bMSE for a full one (after the 256 resize). Those images are
  left out of that metric's mean and counted (``n_fmse_nan``, ``n_bmse_nan``); in the authors'
  script one such image turns the whole mean into NaN;
* PSNR is +inf for a prediction identical to the ground truth. Its mean is taken over the
  finite values only and the infinite ones are counted (``n_psnr_inf``); the MSE mean includes
  them (as 0). The authors' mean would be +inf;
* foreground-ratio bins are [0, 0.05), [0.05, 0.15), [0.15, 1]: r = 1 (a full mask) falls in
  the last bin. The authors' bins are all half-open, so their last bin [0.15, 1.0) drops it.

Speed. Pasting a background ``B`` into the prediction leaves the foreground error unchanged and
makes the background error ``Σ_bg (B − real)²``: zero for the ground truth, a sum that depends on
the ground truth only for the composite. So each prediction is decoded, its squared errors are
summed in integers against the cached ground truth (on the decoding thread), and nothing is
pasted; the numbers are the same integers as "paste, then score", divided once in float64. On
a warm cache the cost per image is close to decoding the prediction PNG
(``benchmarks/bench_evaluation.py``).

Other conventions. ``EvalConfig(convention=...)`` (``--convention``) scores with another
peer's metric convention instead (``harmonylib.conventions``: ``issam``, ``pctnet``, ``hdnet``,
``harmonizer``); each image is then prepared and scored by ``conventions.score_sample`` on the
thread pool, and the bins follow the convention (:func:`aggregate_by_fg_bins`). ``issam`` also
looks for ``P/<stem>.npy`` (flat or in ``<Subset>/``) before the PNG rules, and reads a 16-bit
PNG in float.

Command line: ``harmonylib evaluate --data-root R --split test --predictions P --out F.csv``
writes the per-image CSV (atomically) and ``F.provenance.json``, and prints the aggregates.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from harmonylib.config import SUBSETS, EvalConfig
from harmonylib.conventions import (
    CONVENTIONS,
    DEFAULT_CONVENTION,
    fg_bin_members,
    get_convention,
    score_sample,
)
from harmonylib.io import ImageReadError, atomic_path, atomic_write_json, load_mask_l, load_rgb
from harmonylib.metrics import (
    BACKGROUNDS,
    FG_BIN_LABELS,
    MASK_MODES,
    evaluation_mask,
    fg_bin_index,  # noqa: F401  (re-exported: callers use evaluation.fg_bin_index)
    metrics_from_sums,
    resize_rgb,
    squared_error_sums,
)

COLUMNS = ("image", "subset", "fg_ratio", "mse", "psnr", "fmse", "bmse", "missing")
METRICS = ("mse", "psnr", "fmse", "bmse")
# Foreground-ratio bins, as in the authors' report. The last one is closed on the right.
ALL = "All"
_MISSING_SHOWN = 20
_CACHE_VERSION = 1


class SampleLike(Protocol):
    """What the evaluator needs of a sample (``harmonylib.data.iharmony4.Sample`` has it)."""

    name: str  # composite stem, e.g. "a0001_1_1"
    subset: str
    composite: Path
    mask: Path
    real: Path


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


def default_workers() -> int:
    """Threads for image decoding: PIL releases the GIL while decoding and resizing."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _ordered_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> Iterator[Any]:
    """``map(fn, items)`` in order, on ``workers`` threads with a bounded look-ahead.

    At most ``4·workers`` results wait to be consumed, so memory stays bounded however slow the
    consumer is. Each result lands at its item's index, so order and thread count never change
    the numbers.
    """
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    window = 4 * workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        it = iter(items)
        try:
            for item in it:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False, file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Ground truth, prepared once per test set
# --------------------------------------------------------------------------------------------


@dataclass
class GroundTruth:
    """A test set's ground truth, prepared by the protocol at one resolution and mask mode.

    The composite itself is not kept: pasting its background makes the background error
    ``Σ_bg (composite − real)²``, which depends on the ground truth only, so it is summed once.
    """

    key: str
    names: list[str]
    subsets: list[str]
    real: np.ndarray  # (N, R, R, 3) uint8, resized
    mask: np.ndarray  # (N, R, R) bool, binarised then resized
    composite_bg_sum: np.ndarray | None = None  # (N,) int64 Σ_bg (composite − real)², all channels

    @property
    def n_fg(self) -> np.ndarray:
        """(N,) foreground pixel counts at the metric resolution."""
        return self.mask.sum(axis=(1, 2), dtype=np.int64)


def _stat(path: str) -> list[int]:
    try:
        st = os.stat(path)
    except OSError:
        return [-1, -1]
    return [st.st_size, st.st_mtime_ns]


def ground_truth_key(samples: Sequence[SampleLike], resolution: int, mask_mode: str) -> str:
    """A hash of the sample list's content: names, subsets, paths, and each file's size and mtime.

    Editing the list, or any of its files, gives a new key, so a stale cache is never used.
    """
    h = hashlib.sha256()
    h.update(json.dumps({"v": _CACHE_VERSION, "resolution": resolution, "mask_mode": mask_mode}).encode())
    for s in samples:
        row = [s.name, s.subset]
        for p in (s.real, s.mask, s.composite):
            p = os.path.abspath(p)
            row += [p, *_stat(p)]
        h.update(json.dumps(row).encode() + b"\n")
    return h.hexdigest()[:20]


def _composite_bg_sum(composite: np.ndarray, real: np.ndarray, mask: np.ndarray) -> int:
    fg, total = squared_error_sums(composite, real, mask)
    return int(total - fg)


class GroundTruthCache:
    """Keeps prepared ground truth (resized real, binarised mask) per test set.

    In memory always; also as ``<cache_dir>/gt-<key>.npz`` when ``cache_dir`` is given, so a
    later process reuses it. The key is :func:`ground_truth_key`. About 200 KB per image at 256
    (the full iHarmony4 test set: 1.5 GB).

    Args:
        cache_dir: folder for the ``.npz`` files, or None for memory only.
        workers: decoding threads (default :func:`default_workers`).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, workers: int | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.workers = workers or default_workers()
        self._entries: dict[str, GroundTruth] = {}

    def clear(self) -> None:
        """Forget the in-memory entries (files in ``cache_dir`` stay)."""
        self._entries.clear()

    def _file(self, key: str) -> Path | None:
        return self.cache_dir / f"gt-{key}.npz" if self.cache_dir is not None else None

    def _read(self, key: str, n: int, resolution: int) -> GroundTruth | None:
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                real = z["real"]
                mask = np.unpackbits(z["mask_bits"], axis=-1, count=resolution).astype(bool)
                comp = z["composite_bg_sum"] if "composite_bg_sum" in z.files else None
        except (OSError, ValueError, KeyError):
            return None  # unreadable or from another version: rebuild
        if real.shape != (n, resolution, resolution, 3) or mask.shape != (n, resolution, resolution):
            return None
        return GroundTruth(key, meta["names"], meta["subsets"], real, mask, comp)

    def _write(self, gt: GroundTruth) -> None:
        path = self._file(gt.key)
        if path is None:
            return
        arrays = {
            "meta": np.array(json.dumps({"names": gt.names, "subsets": gt.subsets})),
            "real": gt.real,
            "mask_bits": np.packbits(gt.mask, axis=-1),  # (N, R, R/8) uint8
        }
        if gt.composite_bg_sum is not None:
            arrays["composite_bg_sum"] = gt.composite_bg_sum
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)

    def get(
        self,
        samples: Sequence[SampleLike],
        resolution: int = 256,
        mask_mode: str = "dither",
        with_composite: bool = False,
        progress: bool = False,
    ) -> GroundTruth:
        """The prepared ground truth of ``samples``; decoded only if not cached.

        Args:
            samples: the test set, in order.
            resolution: the side the metrics are computed at.
            mask_mode: ``"dither"`` or ``"threshold"`` (see ``imageproc.evaluation_mask``).
            with_composite: also sum the composites' background errors (for
                ``background="composite"``); added to a cached entry when missing.
            progress: show a progress bar while decoding.
        """
        samples = list(samples)
        key = ground_truth_key(samples, resolution, mask_mode)
        gt = self._entries.get(key) or self._read(key, len(samples), resolution)
        changed = gt is None
        if gt is None:
            gt = self._build(samples, key, resolution, mask_mode, with_composite, progress)
        elif with_composite and gt.composite_bg_sum is None:
            gt.composite_bg_sum = self._composite_sums(samples, gt, progress)
            changed = True
        self._entries[key] = gt
        if changed:
            self._write(gt)
        return gt

    def _build(self, samples, key, resolution, mask_mode, with_composite, progress) -> GroundTruth:
        n, r = len(samples), resolution
        real = np.empty((n, r, r, 3), np.uint8)  # (N, R, R, 3)
        mask = np.empty((n, r, r), bool)  # (N, R, R)
        comp_bg = np.zeros(n, np.int64) if with_composite else None

        def load(i: int):
            s = samples[i]
            # exif_transpose=False: the authors' evaluator reads the stored pixel order.
            re = resize_rgb(load_rgb(s.real, exif_transpose=False), r)
            ma = evaluation_mask(load_mask_l(s.mask, exif_transpose=False), r, mask_mode)
            cb = None
            if with_composite:
                cb = _composite_bg_sum(resize_rgb(load_rgb(s.composite, exif_transpose=False), r), re, ma)
            return i, re, ma, cb

        with _progress(n, "ground truth", progress) as bar:
            for i, re, ma, cb in _ordered_map(load, range(n), self.workers):
                real[i], mask[i] = re, ma
                if comp_bg is not None:
                    comp_bg[i] = cb
                bar.update(1)
        return GroundTruth(key, [s.name for s in samples], [s.subset for s in samples], real, mask, comp_bg)

    def _composite_sums(self, samples, gt: GroundTruth, progress) -> np.ndarray:
        n, r = len(samples), gt.real.shape[1]
        out = np.zeros(n, np.int64)

        def load(i: int):
            comp = resize_rgb(load_rgb(samples[i].composite, exif_transpose=False), r)
            return i, _composite_bg_sum(comp, gt.real[i], gt.mask[i])

        with _progress(n, "composites", progress) as bar:
            for i, v in _ordered_map(load, range(n), self.workers):
                out[i] = v
                bar.update(1)
        return out


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


def _summarise(g: pd.DataFrame) -> dict[str, float | int]:
    scored = g[~g["missing"].astype(bool)] if "missing" in g else g
    psnr = scored["psnr"].to_numpy(np.float64)
    finite = np.isfinite(psnr)

    def mean(x: np.ndarray) -> float:
        return float(x.mean()) if x.size else float("nan")

    fmse = scored["fmse"].to_numpy(np.float64)
    bmse = scored["bmse"].to_numpy(np.float64)
    return {
        "n": len(scored),
        "mse": mean(scored["mse"].to_numpy(np.float64)),
        "psnr": mean(psnr[finite]),  # over finite PSNR only; the infinite ones are counted
        "fmse": mean(fmse[~np.isnan(fmse)]),
        "bmse": mean(bmse[~np.isnan(bmse)]),
        "n_missing": len(g) - len(scored),
        "n_psnr_inf": int(np.isinf(psnr).sum()),
        "n_fmse_nan": int(np.isnan(fmse).sum()),
        "n_bmse_nan": int(np.isnan(bmse).sum()),
    }


def _subset_order(df: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(df["subset"]))
    return [s for s in SUBSETS if s in present] + sorted(s for s in present if s not in SUBSETS)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Per-subset and overall means of a per-image frame from :func:`evaluate_predictions`.

    Args:
        df: per-image rows (columns ``subset``, ``mse``, ``psnr``, ``fmse``, ``bmse``,
            optionally ``missing``).

    Returns:
        One row per subset (paper order) and a last row ``"All"`` = the mean over all images,
        with columns ``subset``, ``n``, ``mse``, ``psnr``, ``fmse``, ``bmse``, ``n_missing``,
        ``n_psnr_inf``, ``n_fmse_nan``, ``n_bmse_nan``. ``psnr`` averages finite values only.
    """
    rows = [{"subset": s, **_summarise(df[df["subset"] == s])} for s in _subset_order(df)]
    rows.append({"subset": ALL, **_summarise(df)})
    return pd.DataFrame(rows)


def aggregate_by_fg_bins(df: pd.DataFrame, convention: str = DEFAULT_CONVENTION) -> pd.DataFrame:
    """Means per foreground-ratio bin, per subset and over all images.

    Args:
        df: per-image rows from :func:`evaluate_predictions`.
        convention: whose bin edges (``conventions.fg_bin_members``): the default's are
            [0, .05), [.05, .15), [.15, 1]; ``issam``/``pctnet`` close both ends (an edge ratio
            counts twice); ``hdnet``'s are (lo, hi].

    Returns:
        Rows (subset, bin) for each subset and ``"All"``, bins in order ``0-5%``, ``5-15%``,
        ``15-100%`` (empty bins kept with n = 0), columns ``subset``, ``fg_bin``, ``n``
        (N_samples), the metric means and NaN/inf counts as in :func:`aggregate`.
    """
    members = fg_bin_members(df["fg_ratio"].to_numpy(np.float64), convention)  # (N, 3)
    rows = []
    for s in [*_subset_order(df), ALL]:
        in_subset = np.ones(len(df), bool) if s == ALL else (df["subset"] == s).to_numpy()
        for b, label in enumerate(FG_BIN_LABELS):
            rows.append({"subset": s, "fg_bin": label, **_summarise(df[in_subset & members[:, b]])})
    return pd.DataFrame(rows)


def format_report(summary: pd.DataFrame, bins: pd.DataFrame | None = None) -> str:
    """Plain-text tables of :func:`aggregate` (and :func:`aggregate_by_fg_bins`) for a terminal."""
    fmt = {k: "{:.2f}".format for k in METRICS}
    text = summary.to_string(index=False, formatters=fmt)
    if bins is not None:
        text += "\n\nBy foreground ratio:\n" + bins.to_string(index=False, formatters=fmt)
    text += (
        "\n\nMeans over images; psnr over finite values (n_psnr_inf counted apart); fmse/bmse"
        " leave out empty/full masks (n_fmse_nan, n_bmse_nan); missing predictions not scored."
    )
    return text


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


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

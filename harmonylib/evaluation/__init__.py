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

Modules, one concern each: :mod:`~harmonylib.evaluation.ground_truth` (the prepared ground truth
and its cache), :mod:`~harmonylib.evaluation.scoring` (prediction files and per-image scores),
:mod:`~harmonylib.evaluation.aggregate` (means per subset and per foreground-ratio bin),
:mod:`~harmonylib.evaluation.parallel` (the ordered thread pool) and
:mod:`~harmonylib.evaluation.cli` (``harmonylib evaluate``). Every name is importable from here.
"""

from __future__ import annotations

from harmonylib.evaluation.aggregate import ALL, aggregate, aggregate_by_fg_bins, format_report
from harmonylib.evaluation.cli import add_parser
from harmonylib.evaluation.ground_truth import GroundTruth, GroundTruthCache, SampleLike, ground_truth_key
from harmonylib.evaluation.parallel import default_workers
from harmonylib.evaluation.scoring import (
    COLUMNS,
    METRICS,
    MissingPredictionsError,
    evaluate_predictions,
    find_predictions,
)
from harmonylib.metrics import FG_BIN_LABELS, fg_bin_index  # re-exported: callers use evaluation.fg_bin_index

__all__ = [
    "ALL",
    "COLUMNS",
    "FG_BIN_LABELS",
    "METRICS",
    "GroundTruth",
    "GroundTruthCache",
    "MissingPredictionsError",
    "SampleLike",
    "add_parser",
    "aggregate",
    "aggregate_by_fg_bins",
    "default_workers",
    "evaluate_predictions",
    "fg_bin_index",
    "find_predictions",
    "format_report",
    "ground_truth_key",
]

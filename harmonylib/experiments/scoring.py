"""Scores and what is recorded from them: per-image CSVs, seed means, claims measurements, provenance.

:func:`score` evaluates an arm's predictions with the authors' protocol and writes one per-image
CSV per (table, dataset, row, arm) under ``<out>/tables/per_image/``, so that every table can be
re-aggregated without re-running inference. :func:`mean_summary` is a table cell's mean over
training seeds. :func:`write_measurements` writes an experiment's per-seed numbers for the claims
(``<out>/claims/<experiment>.csv`` and their per-image values, with each composite's source
photo, under ``<out>/claims/per_image/``); :func:`update_claims` merges them and regenerates
``<out>/claims.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harmonylib import claims as _claims
from harmonylib.config import to_dict
from harmonylib.evaluation import aggregate, aggregate_by_fg_bins, evaluate_predictions
from harmonylib.experiments import predictions as _predictions
from harmonylib.experiments.context import IHARMONY4, Experiment
from harmonylib.experiments.predictions import Arm
from harmonylib.io import atomic_path
from harmonylib.paths import relative_to_home

METRICS = ("psnr", "mse", "fmse")  # the summary columns every table reports


def per_image_slug(table: str, dataset: str, name: str, arm: Arm) -> str:
    """The per-image CSV's stem: ``<table>_<dataset>_<name>_<arm label>`` (spaces ``_``, slashes ``-``)."""
    return f"{table}_{dataset.replace(' ', '')}_{name}_{arm.label()}".replace(" ", "_").replace("/", "-")


def score(
    exp: Experiment,
    arm: Arm,
    table: str,
    name: str,
    samples: Sequence | None = None,
    dataset: str = IHARMONY4,
) -> pd.DataFrame:
    """Per-image metrics of ``arm`` (predictions made if missing), also written as a CSV.

    The CSV is ``<out>/tables/per_image/<table>_<dataset>_<name>_<arm label>.csv`` (columns of
    :func:`harmonylib.evaluation.evaluate_predictions` plus ``predictions``).

    Raises:
        harmonylib.experiments.DivergedRun: the arm's Harmony-VAE run diverged (no CSV written).
    """
    samples = exp.samples if samples is None else samples
    preds = _predictions.predictions_for(exp, arm, samples, dataset)
    df = evaluate_predictions(samples, preds, exp.cfg.eval, cache=exp.cache, progress=exp.progress)
    # relative to the home: the committed CSV must not depend on where the clone lies
    df["predictions"] = relative_to_home(preds) if isinstance(preds, (str, os.PathLike)) else "<composites>"
    write_per_image(exp, df, per_image_slug(table, dataset, name, arm))
    return df


def write_per_image(exp: Experiment, df: pd.DataFrame, stem: str) -> Path:
    """``<out>/tables/per_image/<stem>.csv``: one run's per-image scores (written atomically)."""
    path = exp.per_image_dir / f"{stem}.csv"
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def summarize(df: pd.DataFrame, by_bins: bool = False) -> pd.DataFrame:
    """One run's summary: per subset (``aggregate``) or per subset and foreground bin."""
    return aggregate_by_fg_bins(df) if by_bins else aggregate(df)


def mean_summary(frames: Sequence[pd.DataFrame], by_bins: bool = False) -> pd.DataFrame:
    """Mean over seeds of the per-seed aggregates (``aggregate`` or ``aggregate_by_fg_bins``)."""
    aggs = [summarize(f, by_bins) for f in frames]
    keys = ["subset", "fg_bin"] if by_bins else ["subset"]
    cat = pd.concat(aggs, ignore_index=True)
    out = cat.groupby(keys, sort=False, as_index=False)[["n", "mse", "psnr", "fmse"]].mean()
    return out


def all_row(summary: pd.DataFrame) -> dict[str, float]:
    """The ``All`` row of a summary: ``{"psnr", "mse", "fmse"}``."""
    row = summary[summary["subset"] == "All"].iloc[0]
    return {m: float(row[m]) for m in METRICS}


def photo_clusters(exp: Experiment) -> tuple[dict[str, str], str]:
    """Composite name -> the photo it was cut from, and that cluster's kind, for the claims' bootstrap.

    The built-in data knows each composite's source photo (``composite_photos``); elsewhere
    (iHarmony4) the photo is unknown and the real image (``Sample.real_id``) stands in for it.
    """
    from harmonylib.data.builtin import composite_photos

    if exp._clusters is None:
        photos = composite_photos(exp.data_root)
        exp._clusters = (
            (photos, "source photo")
            if photos is not None
            else ({s.name: s.real_id for s in exp.samples}, "real image")
        )
    return exp._clusters


def measurements(
    summary: pd.DataFrame, experiment: str, arm: str, seed: int | None, kind: str, subset: str = "All"
) -> pd.DataFrame:
    """The claims' rows of one arm and seed (:func:`harmonylib.claims.measurements_from_summary`)."""
    return _claims.measurements_from_summary(summary, experiment, arm, seed, kind, subset=subset)


def diverged_measurements(experiment: str, arm: str, seed: int) -> pd.DataFrame:
    """The claims' rows of a seed whose run diverged: every metric NaN, so the seed is counted, not lost."""
    return pd.DataFrame(
        [{"experiment": experiment, "arm": arm, "metric": m, "seed_kind": "training", "seed": seed,
          "value": float("nan")} for m in METRICS]
    )  # fmt: skip


def per_image_rows(
    exp: Experiment,
    df: pd.DataFrame,
    experiment: str,
    arm: str,
    seed: int | None,
    kind: str,
    by_bins: bool = False,
    clusters: tuple[dict[str, str], str] | None = None,
) -> pd.DataFrame:
    """Per-image rows for the claims; ``clusters`` (name -> photo, kind) default: :func:`photo_clusters`."""
    clusters, cluster_kind = clusters or photo_clusters(exp)
    return _claims.per_image_from_frame(df, experiment, arm, seed, kind, clusters, cluster_kind, by_bins)


def write_measurements(
    exp: Experiment,
    experiment: str,
    rows: Sequence[pd.DataFrame],
    per_image: Sequence[pd.DataFrame] = (),
) -> Path:
    """``<out>/claims/<experiment>.csv``: this experiment's raw per-seed numbers (replaced whole).

    ``per_image`` rows (:func:`harmonylib.claims.per_image_from_frame`) go to
    ``<out>/claims/per_image/<experiment>.csv`` (replaced whole), for the claims' bootstrap
    (:func:`harmonylib.claims.files.write_measurements`).
    """
    return _claims.write_measurements(exp.out, experiment, rows, per_image)


def update_claims(out: str | os.PathLike, title: str | None = None) -> dict[str, Path] | None:
    """Merge ``<out>/claims/*.csv`` into ``<out>/claims_measurements.csv``; regenerate ``claims.md``."""
    return _claims.update_claims(out, title)


def provenance(exp: Experiment, seeds: Sequence[int], **extra: Any) -> dict[str, Any]:
    """The provenance record of a table or figure: resolved config, seeds, the test list's hash."""
    from harmonylib import provenance as _prov

    test_list = exp.data_root / "IHD_test.txt"
    return _prov.provenance(
        config=to_dict(exp.cfg),
        seeds={"base_seed": exp.cfg.seed, "training_seeds": list(seeds)},
        files={"test_list": test_list} if test_list.is_file() else None,
        **extra,
    )

"""The measurements a claim is judged on: the per-seed CSV and the per-image CSVs, read and checked.

The measurements CSV (one row per measured number)
---------------------------------------------------
``experiment, arm, metric, seed_kind, seed, value``:

* ``experiment``: ``table1`` | ``table2`` | ``table3`` | ``table4`` | ``table5``; ``arm``: one of
  that experiment's :data:`~harmonylib.claims.schema.ARMS` (e.g. ``DiffHarmony++``,
  ``low/harmony_vae``, ``high/plain+refine``, ``E_c/random``, ``PixelHarmonizer/15-100%``,
  ``Human Harmony/DiffHarmony++/15-100%``, ``HFlickr/augmented``); ``metric``: ``psnr`` | ``mse`` |
  ``fmse`` (the evaluator's means over the test set, or over a foreground-ratio bin for ``table3``);
* ``seed_kind``: ``training`` (the model was retrained with this seed), ``sampling`` (one trained
  model, this sampling seed), or ``none`` with ``seed`` empty (a deterministic number, such as the
  Composite row or a baseline evaluated once; it is used for every seed of a claim);
* ``value``: a float; ``nan`` marks a diverged run.

Raw numbers, not differences, go in the CSV; the differencing (and its sign) is done by
:mod:`harmonylib.claims.verdicts`, from the claims, once.

The per-image CSV(s) (condition (b) of the rule; one row per scored image)
-------------------------------------------------------------------------
``experiment, arm, seed_kind, seed, image, cluster, cluster_kind, psnr, mse, fmse``: the same
keys as the measurements, the composite's name, the photo it was cut from (``cluster``; its kind
``source photo``, or ``real image`` where the photo is unknown, as on iHarmony4), and its metrics
(non-finite: not in that arm's mean, as in ``harmonylib.evaluation.aggregate``). Built by
:func:`per_image_from_frame`; the mean of an arm's rows must give its measurement.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from harmonylib.claims.schema import (
    ARMS,
    CLUSTER_KINDS,
    MEASUREMENT_COLUMNS,
    METRIC_DIRECTION,
    PER_IMAGE_COLUMNS,
    SEED_KINDS,
)
from harmonylib.metrics import FG_BIN_LABELS, fg_bin_index


def read_measurements(path_or_df: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Load and check a measurements CSV (see the module docstring for its columns).

    Raises:
        ValueError: a missing column, unknown experiment/arm/metric/seed kind, a seed given for
            ``none`` or missing for another kind, or two values for one (experiment, arm, metric,
            seed_kind, seed).
    """
    df = path_or_df.copy() if isinstance(path_or_df, pd.DataFrame) else pd.read_csv(path_or_df)
    missing = [c for c in MEASUREMENT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"measurements lack column(s) {missing}; need {list(MEASUREMENT_COLUMNS)}")
    df = df[list(MEASUREMENT_COLUMNS)].copy()
    for col in ("experiment", "arm", "metric", "seed_kind"):
        df[col] = df[col].astype(str).str.strip()
    df["metric"] = df["metric"].str.lower()
    df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
    df["seed"] = pd.to_numeric(df["seed"], errors="raise")
    for _, r in df.iterrows():
        if r["experiment"] not in ARMS:
            raise ValueError(f"unknown experiment {r['experiment']!r}; allowed: {list(ARMS)}")
        if r["arm"] not in ARMS[r["experiment"]]:
            raise ValueError(
                f"unknown arm {r['arm']!r} of {r['experiment']}; allowed: {list(ARMS[r['experiment']])}"
            )
        if r["metric"] not in METRIC_DIRECTION:
            raise ValueError(f"unknown metric {r['metric']!r}; allowed: {list(METRIC_DIRECTION)}")
        if r["seed_kind"] not in SEED_KINDS:
            raise ValueError(f"unknown seed_kind {r['seed_kind']!r}; allowed: {list(SEED_KINDS)}")
        has_seed = not pd.isna(r["seed"])
        if has_seed == (r["seed_kind"] == "none"):
            raise ValueError(
                f"{r['experiment']}/{r['arm']}: seed_kind 'none' takes an empty seed, other kinds an integer one"
            )
    key = ["experiment", "arm", "metric", "seed_kind", "seed"]
    dup = df.duplicated(key, keep=False)
    if dup.any():
        raise ValueError(f"several values for {df.loc[dup, key].iloc[0].to_dict()}")
    return df


def read_per_image(
    sources: str | os.PathLike | pd.DataFrame | Sequence[str | os.PathLike | pd.DataFrame],
) -> pd.DataFrame:
    """Load, concatenate and check per-image CSVs (columns :data:`PER_IMAGE_COLUMNS`).

    Raises:
        ValueError: naming the file: a missing column, unknown experiment/arm/seed kind or
            cluster kind, a seed given for ``none`` or missing for another kind, an empty
            cluster, or one image twice for one (experiment, arm, seed_kind, seed).
    """
    items = [sources] if isinstance(sources, (str, os.PathLike, pd.DataFrame)) else list(sources)
    frames = []
    for item in items:
        where = "per-image frame" if isinstance(item, pd.DataFrame) else str(item)
        df = (
            item.copy()
            if isinstance(item, pd.DataFrame)
            else pd.read_csv(item, keep_default_na=False, na_values=["", "nan"])
        )
        missing = [c for c in PER_IMAGE_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{where}: lacks column(s) {missing}; need {list(PER_IMAGE_COLUMNS)}")
        df = df[list(PER_IMAGE_COLUMNS)].copy()
        for col in ("experiment", "arm", "seed_kind", "image", "cluster", "cluster_kind"):
            df[col] = df[col].astype(str).str.strip()
        df["seed"] = pd.to_numeric(df["seed"], errors="raise")
        for m in METRIC_DIRECTION:
            df[m] = pd.to_numeric(df[m], errors="raise").astype(float)
        for (exp, arm, kind), g in df.groupby(["experiment", "arm", "seed_kind"], sort=False):
            if exp not in ARMS or arm not in ARMS[exp]:
                raise ValueError(
                    f"{where}: unknown experiment/arm {exp}/{arm}; allowed: { {e: list(a) for e, a in ARMS.items()} }"
                )
            if kind not in SEED_KINDS:
                raise ValueError(f"{where}: unknown seed_kind {kind!r}; allowed: {list(SEED_KINDS)}")
            if g["seed"].notna().any() if kind == "none" else g["seed"].isna().any():
                raise ValueError(
                    f"{where}: {exp}/{arm}: seed_kind 'none' takes an empty seed, other kinds an integer one"
                )
        bad = ~df["cluster_kind"].isin(CLUSTER_KINDS) | df["cluster"].isin(["", "nan"])
        if bad.any():
            r = df[bad].iloc[0]
            raise ValueError(
                f"{where}: image {r['image']!r} has cluster {r['cluster']!r} of kind {r['cluster_kind']!r}; "
                f"kinds allowed: {list(CLUSTER_KINDS)}"
            )
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(PER_IMAGE_COLUMNS))
    key = ["experiment", "arm", "seed_kind", "seed", "image"]
    dup = df.duplicated(key, keep=False)
    if dup.any():
        raise ValueError(f"per-image values: image given twice for {df.loc[dup, key].iloc[0].to_dict()}")
    return df


def per_image_from_frame(
    frame: pd.DataFrame,
    experiment: str,
    arm: str,
    seed: int | None,
    seed_kind: str,
    clusters: Mapping[str, str],
    cluster_kind: str,
    by_bins: bool = False,
) -> pd.DataFrame:
    """Per-image rows for :func:`read_per_image` from an evaluation frame.

    Args:
        frame: ``harmonylib.evaluation.evaluate_predictions``'s per-image frame (``image``,
            ``fg_ratio``, metrics, ``missing``); missing predictions are left out, as the
            evaluator's means do.
        experiment, arm, seed, seed_kind: as in the measurements.
        clusters: composite name -> the photo it was cut from (or its real image).
        cluster_kind: ``source photo`` or ``real image`` (the photo is unknown).
        by_bins: split into Table 3's arms ``<arm>/<fg_bin>`` by foreground ratio.

    Returns:
        Columns :data:`PER_IMAGE_COLUMNS`.

    Raises:
        ValueError: an image has no cluster, or an unknown cluster kind.
    """
    if cluster_kind not in CLUSTER_KINDS:
        raise ValueError(f"unknown cluster_kind {cluster_kind!r}; allowed: {list(CLUSTER_KINDS)}")
    df = frame[~frame["missing"].astype(bool)] if "missing" in frame else frame
    unknown = sorted(set(df["image"]) - set(clusters))
    if unknown:
        raise ValueError(
            f"{experiment}/{arm}: no photo known for {len(unknown)} image(s), e.g. {unknown[:3]}"
        )
    out = pd.DataFrame(
        {
            "experiment": experiment,
            "arm": arm,
            "seed_kind": seed_kind,
            "seed": seed,
            "image": df["image"].to_numpy(),
            "cluster": [clusters[n] for n in df["image"]],
            "cluster_kind": cluster_kind,
            **{m: df[m].to_numpy(np.float64) for m in METRIC_DIRECTION},
        },
        columns=list(PER_IMAGE_COLUMNS),
    )
    if by_bins:
        labels = np.asarray(FG_BIN_LABELS)[fg_bin_index(df["fg_ratio"].to_numpy(np.float64))]
        out["arm"] = [f"{arm}/{b}" for b in labels]
    return out


def measurements_from_summary(
    summary: pd.DataFrame,
    experiment: str,
    arm: str,
    seed: int | None,
    seed_kind: str,
    metrics: Sequence[str] = ("psnr", "mse", "fmse"),
    subset: str = "All",
) -> pd.DataFrame:
    """Measurement rows from an evaluation summary, ready to concatenate into the CSV.

    Args:
        summary: ``harmonylib.evaluation.aggregate(df)`` (rows per subset), or
            ``aggregate_by_fg_bins(df)`` (rows per subset and ``fg_bin``; each bin becomes the
            arm ``<arm>/<fg_bin>``, as Table 3's arms are named).
        experiment, arm: as in :data:`ARMS` (``arm`` without the bin for a binned summary).
        seed, seed_kind: the seed and its kind (``None`` with ``"none"``).
        metrics: summary columns to keep.
        subset: the summary row to use (``All``: the whole test set).

    Returns:
        Columns :data:`MEASUREMENT_COLUMNS`.
    """
    rows = summary[summary["subset"] == subset]
    out = []
    for _, r in rows.iterrows():
        name = f"{arm}/{r['fg_bin']}" if "fg_bin" in summary.columns else arm
        for m in metrics:
            out.append(
                {
                    "experiment": experiment,
                    "arm": name,
                    "metric": m,
                    "seed_kind": seed_kind,
                    "seed": seed,
                    "value": float(r[m]),
                }
            )
    return pd.DataFrame(out, columns=list(MEASUREMENT_COLUMNS))

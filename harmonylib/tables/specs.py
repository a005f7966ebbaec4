"""The paper's tables as data: each table's keys and layout, and its reported cells (``reported/*.csv``)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harmonylib.paths import package_path

REPORTED_DIR = package_path("reported")  # shipped as package data (reported/*.csv)
METRICS = ("PSNR", "MSE", "fMSE", "N_samples")
STATUSES = ("reported", "missing", "nan", "derived")
NOT_IN_PAPER = "not in paper"  # reported_status of a measured row the paper does not have
STAND_IN = "stand_in"  # optional measured column: the method that measured a cell in the paper's place
STAND_IN_MARK = "†"

_METRIC_ALIASES = {"psnr": "PSNR", "mse": "MSE", "fmse": "fMSE", "n": "N_samples", "n_samples": "N_samples"}
# Names as printed in the paper -> the names used in the data files.
_VALUE_ALIASES = {
    "subset": {"Average": "All", "HADobe5k": "HAdobe5k"},
    "model": {"Ours": "DiffHarmony++", "iS²AM": "iS2AM", "HDNet₅₁₂": "HDNet_512"},
}


@dataclass(frozen=True)
class TableSpec:
    """Keys of one table and how its human-readable pivot is laid out."""

    keys: tuple[str, ...]  # columns that, with ``metric``, identify a cell
    rows: tuple[str, ...]  # pivot row keys (may include "metric")
    cols: tuple[str, ...]  # pivot column keys (may include "metric")
    caption: str  # the paper's caption, shortened


SPECS: dict[int, TableSpec] = {
    1: TableSpec(
        keys=("subset", "model"),
        rows=("subset", "metric"),
        cols=("model",),
        caption="Quantitative comparison across four sub-datasets of iHarmony4 and in general "
        "(All = the entire test set). PSNR higher is better; MSE and fMSE lower is better.",
    ),
    2: TableSpec(
        keys=("subset", "setting"),
        rows=("subset", "metric"),
        cols=("setting",),
        caption="Data augmentation with the inverse harmonization model: training on the original "
        "subset (base) or on the augmented one (augmented).",
    ),
    3: TableSpec(
        keys=("dataset", "fg_bin", "model"),
        rows=("dataset", "model", "metric"),
        cols=("fg_bin",),
        caption="HDNet trained at 512px versus DiffHarmony++ on iHarmony4 and Human Harmony, by "
        "foreground proportion; N_samples is the number of test pairs in each range.",
    ),
    4: TableSpec(
        keys=("setting",),
        rows=("setting",),
        cols=("metric",),
        caption="Ablation of Harmony-VAE at inference resolutions R_inf 512px and 1024px; the "
        "'+refine' rows (grey in the paper) add the refinement module of DiffHarmony.",
    ),
    5: TableSpec(
        keys=("params", "init"),
        rows=("params", "metric"),
        cols=("init",),
        caption="Ablation of the zero-init strategy and of the finetuned parameters "
        "(E_c: conditional encoder only; E_c+D: encoder and decoder).",
    ),
}


def _spec(table: int) -> TableSpec:
    try:
        return SPECS[int(table)]
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"unknown table {table!r}; the paper's tables are {sorted(SPECS)}") from None


def key_columns(table: int) -> tuple[str, ...]:
    """The key columns of ``table`` (besides ``metric``) that measured data must carry."""
    return _spec(table).keys


# --------------------------------------------------------------------------------------------
# 1. The paper's reported values
# --------------------------------------------------------------------------------------------


def reported(table: int) -> pd.DataFrame:
    """The paper's Table ``table`` in tidy long format, one row per printed cell, paper order.

    Columns: ``table``, the key columns (``key_columns(table)``), ``metric``, ``value`` (float;
    NaN when missing or NaN), ``printed`` (the text as printed: "-", "NaN", "470.846"),
    ``status`` (reported / missing / nan / derived) and ``note``.
    """
    spec = _spec(table)
    ref = REPORTED_DIR / f"table{int(table)}.csv"
    raw = pd.read_csv(ref, dtype=str, keep_default_na=False)
    expected = ["table", *spec.keys, "metric", "value", "status", "note"]
    if list(raw.columns) != expected:
        raise ValueError(f"{ref}: columns {list(raw.columns)}, expected {expected}")
    bad = raw[~raw["status"].isin(STATUSES)]
    if len(bad):
        raise ValueError(f"{ref}: unknown status {bad['status'].iloc[0]!r}")
    # "-" and "NaN" must say so in ``status``, so that a typo never turns a number into a gap.
    if (
        not ((raw["value"] == "-") == (raw["status"] == "missing")).all()
        or not ((raw["value"] == "NaN") == (raw["status"] == "nan")).all()
    ):
        raise ValueError(f"{ref}: '-' must have status 'missing' and 'NaN' status 'nan'")
    out = raw.rename(columns={"value": "printed"})
    out["table"] = out["table"].astype(int)
    out["value"] = pd.to_numeric(out["printed"].where(~out["status"].isin(["missing", "nan"])))
    out["value"] = out["value"].astype(float)
    return out[["table", *spec.keys, "metric", "value", "printed", "status", "note"]]

"""Measured values beside the paper's reported ones: one tidy row per cell, with the delta."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harmonylib.tables.specs import (
    _METRIC_ALIASES,
    _VALUE_ALIASES,
    METRICS,
    NOT_IN_PAPER,
    STAND_IN,
    TableSpec,
    _spec,
    reported,
)


def _tidy_measured(measured: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Measured values as ``[*keys, metric, value]``; wide input (one column per metric) is melted."""
    df = measured.copy()
    if "value" not in df.columns or "metric" not in df.columns:
        wide = [c for c in df.columns if str(c).lower() in _METRIC_ALIASES]
        if not wide:
            raise ValueError(
                "measured needs 'metric' and 'value' columns, or one column per metric "
                f"({', '.join(METRICS)}); got {list(df.columns)}"
            )
        df = df.melt(
            id_vars=[c for c in df.columns if c not in wide],
            value_vars=wide,
            var_name="metric",
            value_name="value",
        )
    missing = [c for c in (*spec.keys, "metric", "value") if c not in df.columns]
    if missing:
        raise ValueError(
            f"measured lacks column(s) {missing}; a table needs {[*spec.keys, 'metric', 'value']}"
        )
    extra = [STAND_IN] if STAND_IN in df.columns else []
    df = df[[*spec.keys, "metric", "value", *extra]].copy()
    df[STAND_IN] = df[STAND_IN].fillna("").astype(str) if extra else ""
    for col in (*spec.keys, "metric"):
        df[col] = df[col].astype(str)
        if col in _VALUE_ALIASES:
            df[col] = df[col].replace(_VALUE_ALIASES[col])
    df["metric"] = df["metric"].map(lambda m: _METRIC_ALIASES.get(m.lower(), m))
    unknown = sorted(set(df["metric"]) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; allowed: {list(METRICS)}")
    df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
    dup = df.duplicated([*spec.keys, "metric"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise ValueError(f"measured has several values for {dict(first[[*spec.keys, 'metric']])}")
    return df


def render_table(measured: pd.DataFrame | None, table: int) -> pd.DataFrame:
    """Put measured values beside the paper's reported values of Table ``table``.

    Args:
        measured: tidy ``[*key_columns(table), metric, value]`` (extra columns are ignored), or
            wide with one column per metric (``PSNR``/``psnr``, ...). Paper spellings such as
            subset "Average" or model "Ours" are mapped to the data's names ("All",
            "DiffHarmony++"). An optional ``stand_in`` column names the method that measured a
            cell in place of the paper's (e.g. ``PixelHarmonizer`` for ``HDNet_512``).
            ``None`` renders the paper's values alone.
        table: 1-5.

    Returns:
        ``[table, *keys, metric, measured, reported, delta, reported_status, reported_printed,
        note, stand_in]``, one row per cell: the paper's cells in paper order (not measured: ``measured``
        NaN, shown as reported), then measured cells the paper lacks (``reported_status``
        "not in paper", ``reported`` NaN). ``delta = measured - reported``, NaN where either is.
        ``stand_in`` is "" unless the measured cell named one.
    """
    spec = _spec(table)
    rep = reported(table)
    keys = [*spec.keys, "metric"]
    if measured is None:
        meas = pd.DataFrame(
            {c: pd.Series(dtype=str) for c in (*keys, STAND_IN)} | {"value": pd.Series(dtype=float)}
        )
    else:
        meas = _tidy_measured(measured, spec)
    merged = rep.merge(
        meas.rename(columns={"value": "measured"}), on=keys, how="outer", sort=False, indicator=True
    )
    # Paper order first, then measured-only rows in the order they were given.
    order = {k: i for i, k in enumerate(map(tuple, rep[keys].to_numpy()))}
    extra = {k: len(order) + i for i, k in enumerate(map(tuple, meas[keys].to_numpy()))}
    merged["_order"] = [order.get(k, extra.get(k)) for k in map(tuple, merged[keys].to_numpy())]
    merged = merged.sort_values("_order", kind="stable").reset_index(drop=True)
    only_measured = merged["_merge"] == "right_only"
    out = pd.DataFrame({"table": int(table)}, index=merged.index)
    for col in keys:
        out[col] = merged[col].astype(str)
    out["measured"] = merged["measured"].astype(float)
    out["reported"] = merged["value"].astype(float)
    out["delta"] = out["measured"] - out["reported"]
    out["reported_status"] = merged["status"].where(~only_measured, NOT_IN_PAPER).astype(str)
    out["reported_printed"] = merged["printed"].where(~only_measured, "").astype(str)
    out["note"] = merged["note"].where(~only_measured, "").astype(str)
    out[STAND_IN] = merged[STAND_IN].fillna("").astype(str)
    return out


def measured_from_summary(
    summary: pd.DataFrame, metrics: tuple[str, ...] = ("psnr", "mse", "fmse"), **keys: Any
) -> pd.DataFrame:
    """Tidy measured cells from an evaluation summary (``harmonylib.evaluation.aggregate``).

    Args:
        summary: one row per ``subset`` (the four subsets and ``All``), lower-case metric columns.
        metrics: which summary columns become cells.
        keys: the table's other key columns, constant for this summary (e.g. ``model="Composite"``).

    Returns:
        Columns ``subset``, ``*keys``, ``metric`` (the paper's spelling), ``value``.
    """
    rows = [
        {"subset": row["subset"], **keys, "metric": _METRIC_ALIASES[m], "value": float(row[m])}
        for _, row in summary.iterrows()
        for m in metrics
    ]
    return pd.DataFrame(rows)

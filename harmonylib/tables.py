"""The paper's tables: reported values as data, measured values beside them, rendered to files.

The reported values of Tables 1-5 of DiffHarmony++ live in ``harmonylib/reported/tableN.csv``,
one tidy row per printed cell, transcribed exactly as printed (``value`` is the printed text,
``status`` says how to read it):

* ``reported`` - a number printed by the paper;
* ``missing``  - printed as "-" (the paper has no value);
* ``nan``      - printed as "NaN" (the paper reports a NaN, e.g. a diverged run in Table 5);
* ``derived``  - not printed, computed from numbers the paper gives (see the ``note``).

``reported(n)`` loads one table. ``render_table(measured, n)`` merges measured values with it
(``delta = measured - reported``), and ``write_table`` writes ``tableN.csv`` (tidy,
machine-readable), ``tableN.md`` and ``tableN.tex`` (the paper's layout, each cell
"measured (paper)"), and ``tableN.provenance.json``, all atomically. ``read_table`` re-loads a
written csv.

Stand-ins. A measured cell may carry a ``stand_in``: the method that measured it in place of the
paper's, when the paper's is not available (Table 3's ``HDNet_512`` row is measured with
``PixelHarmonizer``: HDNet_512's code and weights are not public). The column is written to the
csv (empty for cells measured with the paper's own method, or not measured), and the Markdown and
LaTeX cells of such a row carry a dagger explained in the legend, so that no file shows a
stand-in's number under the paper's name alone.

Example::

    from harmonylib import tables
    from harmonylib.paths import results_dir

    measured = pd.DataFrame({"subset": ["All"] * 3, "model": ["DiffHarmony++"] * 3,
                             "metric": ["PSNR", "MSE", "fMSE"], "value": [41.2, 15.1, 160.3]})
    df = tables.render_table(measured, 1)
    tables.write_table(df, 1, results_dir("mini", "tables"), config=cfg_dict,
                       seeds={"seed": 0}, files={"test_list": "data/.../test.txt"})
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmonylib import provenance as _prov
from harmonylib.io import atomic_write_json, atomic_write_text
from harmonylib.paths import package_path
from harmonylib.provenance import sha256_file

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


# --------------------------------------------------------------------------------------------
# 2. Measured beside reported
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# 3. Formatting
# --------------------------------------------------------------------------------------------


def _is_nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def format_value(value: float, metric: str) -> str:
    """2 decimals for PSNR / MSE / fMSE, an integer for N_samples, "–" for a missing value."""
    if _is_nan(value):
        return "–"
    if metric == "N_samples":
        return str(int(round(value)))
    return f"{value:.2f}"


def format_reported(row: pd.Series) -> str:
    """The paper's cell as printed: "–" for "-" or not in the paper, "NaN", derived with "*"."""
    status = row["reported_status"]
    if status in ("missing", NOT_IN_PAPER):
        return "–"
    if status == "nan":
        return "NaN"
    if status == "derived":
        return format_value(row["reported"], row["metric"]) + "*"
    return row["reported_printed"]  # exactly as printed (e.g. "470.846")


def format_cell(row: pd.Series, with_delta: bool = True) -> str:
    """``measured (paper)``, with the delta appended when both are numbers; a stand-in's
    measured value carries :data:`STAND_IN_MARK`."""
    mark = STAND_IN_MARK if row.get(STAND_IN, "") else ""
    text = f"{format_value(row['measured'], row['metric'])}{mark} ({format_reported(row)})"
    if with_delta and not _is_nan(row["delta"]):
        d = row["delta"]
        text += f" Δ{d:+.0f}" if row["metric"] == "N_samples" else f" Δ{d:+.2f}"
    return text


def _pivot(df: pd.DataFrame, spec: TableSpec, with_delta: bool) -> tuple[list[tuple], list[tuple], dict]:
    """Row labels, column labels (first-appearance order) and the cell texts."""
    rows: dict[tuple, None] = {}
    cols: dict[tuple, None] = {}
    cells: dict[tuple[tuple, tuple], str] = {}
    for _, r in df.iterrows():
        rk = tuple(r[c] for c in spec.rows)
        ck = tuple(r[c] for c in spec.cols)
        rows.setdefault(rk)
        cols.setdefault(ck)
        cells[rk, ck] = format_cell(r, with_delta)
    return list(rows), list(cols), cells


def _table_number(df: pd.DataFrame) -> int:
    nums = sorted(set(df["table"].astype(int)))
    if len(nums) != 1:
        raise ValueError(f"a rendered table holds exactly one paper table; got tables {nums}")
    return nums[0]


def _legend(df: pd.DataFrame) -> list[str]:
    lines = ["Each cell: measured (paper) Δ measured−paper. – : not measured / not reported by the paper."]
    if (df["reported_status"] == "nan").any():
        lines.append("NaN: reported as NaN by the paper.")
    if (df["reported_status"] == "derived").any():
        notes = sorted(set(df.loc[df["reported_status"] == "derived", "note"]))
        lines.append("*: " + "; ".join(notes) + ".")
    if STAND_IN in df.columns and (df[STAND_IN] != "").any():
        sub = df[df[STAND_IN] != ""]
        who = sorted({f"{_row_name(r)} was measured with {r[STAND_IN]}" for _, r in sub.iterrows()})
        lines.append(f"{STAND_IN_MARK}: a stand-in's number, not the paper's method: " + "; ".join(who) + ".")
    return lines


def _row_name(row: pd.Series) -> str:
    """The name of the method a cell belongs to: its ``model`` or ``setting`` key."""
    for key in ("model", "setting"):
        if key in row.index:
            return str(row[key])
    return "this row"


def to_markdown(df: pd.DataFrame, caption: str | None = None) -> str:
    """The paper's layout as a Markdown pipe table, caption and legend on top."""
    n = _table_number(df)
    spec = _spec(n)
    rows, cols, cells = _pivot(df, spec, with_delta=True)

    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    header = [*spec.rows, *(" / ".join(c) for c in cols)]
    lines = [f"**Table {n}.** {caption or spec.caption}", ""]
    lines += ["  \n".join(_legend(df)), ""]
    lines.append("| " + " | ".join(esc(h) for h in header) + " |")
    lines.append("|" + "|".join([":---"] * len(spec.rows) + ["---:"] * len(cols)) + "|")
    for rk in rows:
        vals = [cells.get((rk, ck), "–") for ck in cols]
        lines.append("| " + " | ".join(esc(v) for v in (*rk, *vals)) + " |")
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "–": "--",
    "Δ": r"$\Delta$",
    "−": "-",
    STAND_IN_MARK: r"$^\dagger$",
}


def _tex(s: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(s))


def to_latex(df: pd.DataFrame, caption: str | None = None) -> str:
    """The paper's layout as a booktabs ``table`` (needs ``\\usepackage{booktabs}``)."""
    n = _table_number(df)
    spec = _spec(n)
    rows, cols, cells = _pivot(df, spec, with_delta=False)
    legend = " ".join(_legend(df)).replace(" Δ measured−paper", "")
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_tex(caption or spec.caption)} {_tex(legend)}}}",
        rf"\label{{tab:table{n}}}",
        r"\small",
        r"\begin{tabular}{" + "l" * len(spec.rows) + "r" * len(cols) + "}",
        r"\toprule",
        " & ".join(_tex(h) for h in (*spec.rows, *(" / ".join(c) for c in cols))) + r" \\",
        r"\midrule",
    ]
    previous = None
    for rk in rows:
        if previous is not None and len(spec.rows) > 1 and rk[0] != previous:
            lines.append(r"\midrule")
        shown = [("" if (previous == rk[0] and i == 0) else v) for i, v in enumerate(rk)]
        vals = [cells.get((rk, ck), "–") for ck in cols]
        lines.append(" & ".join(_tex(v) for v in (*shown, *vals)) + r" \\")
        previous = rk[0]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# 4. Files
# --------------------------------------------------------------------------------------------

_CSV_NUMERIC = ("measured", "reported", "delta")


def table_stem(table: int | str) -> str:
    """``1`` or ``"1"`` -> ``table1``; any other string is used as the file stem as given."""
    if isinstance(table, (int, np.integer)) or str(table).isdigit():
        return f"table{int(table)}"
    return str(table)


def write_table(
    df: pd.DataFrame,
    table: int | str,
    out_dir: str | os.PathLike,
    *,
    caption: str | None = None,
    config: dict[str, Any] | None = None,
    seeds: dict[str, int] | None = None,
    files: dict[str, str | os.PathLike] | None = None,
    provenance: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Path]:
    """Write a rendered table as ``<stem>.csv``, ``.md``, ``.tex`` and ``.provenance.json``.

    Every file is written atomically; the provenance file is written last, so its presence
    means the table beside it is complete.

    Args:
        df: the output of ``render_table``.
        table: the table number (file stem ``tableN``) or a file stem (e.g. ``"table1_builtin"``).
        out_dir: usually ``harmonylib.paths.results_dir(profile, "tables")``.
        caption: shown above the Markdown table and in ``\\caption``; default: the paper's.
        config, seeds, files: passed to ``harmonylib.provenance.provenance`` (``files`` maps
            names to checkpoints, test lists, ... to hash).
        provenance: a record already built by ``harmonylib.provenance.provenance``, instead
            of ``config`` / ``seeds`` / ``files``.
        extra: more fields for the provenance record.

    Returns:
        ``{"csv": ..., "md": ..., "tex": ..., "provenance": ...}`` paths.
    """
    n = _table_number(df)
    spec = _spec(n)
    required = [
        "table", *spec.keys, "metric", *_CSV_NUMERIC, "reported_status", "reported_printed", "note", STAND_IN
    ]  # fmt: skip
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks column(s) {missing}; pass the output of render_table")
    if provenance is not None and (config is not None or seeds is not None or files is not None):
        raise ValueError("give either provenance or config/seeds/files, not both")
    out_dir = Path(out_dir)
    stem = table_stem(table)
    paths = {
        "csv": out_dir / f"{stem}.csv",
        "md": out_dir / f"{stem}.md",
        "tex": out_dir / f"{stem}.tex",
        "provenance": out_dir / f"{stem}.provenance.json",
    }
    caption = caption or spec.caption
    atomic_write_text(paths["csv"], df[required].to_csv(index=False, lineterminator="\n"))
    atomic_write_text(paths["md"], to_markdown(df, caption))
    atomic_write_text(paths["tex"], to_latex(df, caption))
    record = (
        dict(provenance)
        if provenance is not None
        else _prov.provenance(config=config, seeds=seeds, files=files)
    )
    record.update(extra)
    record.update(
        table=n,
        caption=caption,
        outputs={
            k: {"path": p.name, "sha256": sha256_file(p)} for k, p in paths.items() if k != "provenance"
        },
    )
    atomic_write_json(paths["provenance"], record)
    return paths


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Re-load a ``tableN.csv`` written by ``write_table`` with the dtypes ``render_table`` gives."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "table" not in df.columns or not set(_CSV_NUMERIC) <= set(df.columns):
        raise ValueError(f"{path}: not a table written by harmonylib.tables.write_table")
    df["table"] = df["table"].astype(int)
    for col in _CSV_NUMERIC:
        df[col] = pd.to_numeric(df[col].replace("", np.nan)).astype(float)
    return df


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

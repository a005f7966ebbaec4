"""Formatting a rendered table: cells "measured (paper)", the paper's pivot, Markdown and LaTeX."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harmonylib.tables.specs import NOT_IN_PAPER, STAND_IN, STAND_IN_MARK, TableSpec, _spec


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

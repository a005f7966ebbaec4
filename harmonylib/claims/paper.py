"""The paper's own effect for a claim, from its transcribed tables (``harmonylib/reported/``)."""

from __future__ import annotations

import math

from harmonylib import tables
from harmonylib.claims.schema import ARMS, PAPER_METRIC, Claim


def fmt(x: float | None, digits: int = 2) -> str:
    """``+1.23`` / ``-0.50``; ``NaN`` for a missing number."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NaN"
    return f"{x:+.{digits}f}"


def _label(claim: Claim, arm: str, keys: dict[str, str]) -> str:
    """How the paper's cell is named in the text: its model, setting or Table 5 cell."""
    if claim.experiment == "table3":
        where = "" if keys["dataset"] == "iHarmony4" else f"{keys['dataset']} "
        return f"{where}{keys['model']} {keys['fg_bin']}"
    if claim.experiment in ("table2", "table5"):
        return arm
    return keys.get("model", keys.get("setting", arm))


def paper_reference(claim: Claim) -> tuple[float, str]:
    """The paper's own ``d`` for a claim, from its reported tables, and a text with the inputs.

    Returns:
        ``(d, text)``; ``d`` is NaN when a cell is NaN in the paper (Table 5, E_c random init),
        and for a claim without terms (Figure 2), whose text is its ``paper_note``.
    """
    if not claim.terms:
        return float("nan"), claim.paper_note or "—"
    parts, total = [], 0.0
    for arm, coef in claim.terms:
        table, keys = ARMS[claim.experiment][arm]
        rep = tables.reported(table)
        sel = rep["metric"] == PAPER_METRIC[claim.metric]
        for k, v in keys.items():
            sel &= rep[k] == v
        row = rep[sel].iloc[0]
        shown = row["printed"] if row["status"] in ("reported", "nan") else f"{row['value']:g}"
        parts.append(f"{_label(claim, arm, keys)} {shown}")
        total += coef * float(row["value"])
    d = claim.direction * total
    return d, f"{fmt(d)} ({', '.join(parts)})"


def effect_ratio(ours: float, paper: float) -> float:
    """``ours / paper``: 1 is the paper's size; 0.04 a HOLDS on an effect 25x smaller; < 0 the other way.

    NaN when either is not finite or the paper's effect is 0.
    """
    if not (math.isfinite(ours) and math.isfinite(paper)) or paper == 0:
        return float("nan")
    return ours / paper

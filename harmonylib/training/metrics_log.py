"""``metrics.csv``: one row per logged optimizer step, written by the main process only.

Columns are fixed by the first row (``step``, ``epoch``, ``loss``, ``lr``, ``grad_norm``,
``wall_s`` and the objective's own logs). A resumed run first drops the rows after the step it
restored, so the file always describes the weights that exist.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from harmonylib.io import atomic_write_text


class MetricsLog:
    """Append-only CSV log of training metrics.

    Args:
        path: the CSV file.
        keep_until_step: rows with ``step`` greater than this are removed first (the resume point);
            ``None`` keeps every row, 0 starts a fresh file.
        enabled: False on non-main processes (every call is then a no-op).
    """

    def __init__(self, path: str | os.PathLike, keep_until_step: int | None = 0, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.columns: list[str] | None = None
        if not enabled:
            return
        if self.path.is_file() and keep_until_step is not None:
            rows = read_metrics_rows(self.path)
            kept = [r for r in rows if _step_of(r) <= keep_until_step]
            if kept:
                self.columns = list(rows[0].keys())
                _write_rows(self.path, self.columns, kept)
            else:
                self.path.unlink()
        elif self.path.is_file():
            self.columns = list(read_metrics_rows(self.path)[0].keys()) if self.path.stat().st_size else None

    def log(self, row: dict[str, Any]) -> None:
        """Append one row (floats written with full precision; NaN as ``nan``)."""
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = self.columns is None
        if new:
            self.columns = list(row.keys())
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: _fmt(row.get(k)) for k in self.columns})
            fh.flush()


def _step_of(row: dict[str, str]) -> float:
    """The row's step; a row cut short by a kill (unparsable) sorts after every real step."""
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return "" if v is None else v


def _write_rows(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def read_metrics_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """``metrics.csv`` as a DataFrame (empty when the file does not exist)."""
    p = Path(path)
    return pd.read_csv(p) if p.is_file() else pd.DataFrame()

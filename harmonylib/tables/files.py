"""Writing a rendered table to files (csv, Markdown, LaTeX, provenance; atomically) and reading it back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmonylib import provenance as _prov
from harmonylib.io import atomic_write_json, atomic_write_text
from harmonylib.provenance import sha256_file
from harmonylib.tables.formats import _table_number, to_latex, to_markdown
from harmonylib.tables.specs import STAND_IN, _spec

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

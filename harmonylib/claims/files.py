"""Where an experiment's claim measurements go, and how they become one CSV and ``claims.md``.

Each experiment (``harmonylib.experiments`` for Tables 1, 3-5; ``harmonylib.inverse_data`` for
Table 2) writes its own raw numbers, replacing its previous ones::

    <out>/claims/<experiment>.csv             measurements (MEASUREMENT_COLUMNS)
    <out>/claims/per_image/<experiment>.csv   per-image values (PER_IMAGE_COLUMNS), for the bootstrap

:func:`update_claims` merges the first into ``<out>/claims_measurements.csv`` and regenerates
``claims.md`` / ``claims.csv``; a claim whose experiment has not run yet reads NOT MEASURED.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harmonylib.claims.render import rebuild_claims
from harmonylib.claims.schema import MEASUREMENT_COLUMNS, PER_IMAGE_COLUMNS
from harmonylib.io import atomic_path

CLAIMS_DIR = "claims"
MEASUREMENTS_FILE = "claims_measurements.csv"


def write_measurements(
    out: str | os.PathLike,
    experiment: str,
    rows: Sequence[pd.DataFrame],
    per_image: Sequence[pd.DataFrame] = (),
) -> Path:
    """``<out>/claims/<experiment>.csv`` (replaced whole) and its per-image file; returns the first."""
    out = Path(out)
    df = pd.concat(list(rows), ignore_index=True) if rows else pd.DataFrame(columns=MEASUREMENT_COLUMNS)
    path = out / CLAIMS_DIR / f"{experiment}.csv"
    with atomic_path(path) as tmp:
        df[list(MEASUREMENT_COLUMNS)].to_csv(tmp, index=False, na_rep="nan")
    pim = (
        pd.concat(list(per_image), ignore_index=True)
        if per_image
        else pd.DataFrame(columns=PER_IMAGE_COLUMNS)
    )
    with atomic_path(out / CLAIMS_DIR / "per_image" / f"{experiment}.csv") as tmp:
        pim[list(PER_IMAGE_COLUMNS)].to_csv(tmp, index=False, na_rep="nan")
    return path


def update_claims(out: str | os.PathLike, title: str | None = None) -> dict[str, Path] | None:
    """Merge ``<out>/claims/*.csv`` into ``<out>/claims_measurements.csv``; regenerate ``claims.md``.

    The per-image values ``<out>/claims/per_image/*.csv`` are read where they are (not merged).
    Returns None (and writes nothing) when no experiment has written measurements yet.
    """
    out = Path(out)
    parts = sorted((out / CLAIMS_DIR).glob("*.csv"))
    if not parts:
        return None
    df = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    merged = out / MEASUREMENTS_FILE
    with atomic_path(merged) as tmp:
        df.to_csv(tmp, index=False, na_rep="nan")
    per_image = sorted((out / CLAIMS_DIR / "per_image").glob("*.csv"))
    return rebuild_claims(merged, out, title=title or f"Claims ({out.name})", per_image=per_image)

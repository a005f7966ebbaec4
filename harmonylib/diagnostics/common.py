"""What every diagnostic shares: the dataset's splits, a seeded choice of composites, mean ± SE.

Splits are read from the dataset's own list files (``IHD_<split>.txt`` or ``<split>.jsonl``), so a
new split (e.g. ``val``) is measured without a code change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harmonylib.reproducibility import numpy_rng

# Known splits come first, in this order; any other split found follows alphabetically.
SPLIT_ORDER = ("train", "val", "test")
_LIST_PATTERNS = (
    re.compile(r"^IHD_(?P<split>[A-Za-z0-9_-]+)\.txt$"),
    re.compile(r"^(?P<split>[A-Za-z0-9_-]+)\.jsonl$"),
)


def available_splits(root: str | os.PathLike) -> list[str]:
    """The splits that ``root`` holds a list for (``IHD_<split>.txt`` or ``<split>.jsonl``).

    Raises:
        FileNotFoundError: ``root`` is missing or holds no split list (the message names it).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder does not exist")
    found = set()
    for p in root.iterdir():
        for pat in _LIST_PATTERNS:
            m = pat.match(p.name)
            if m and p.is_file():
                found.add(m["split"])
    if not found:
        raise FileNotFoundError(f"{root}: no split list (IHD_<split>.txt or <split>.jsonl)")
    known = [s for s in SPLIT_ORDER if s in found]
    return known + sorted(found - set(known))


def check_splits(wanted: Iterable[str] | None, root: str | os.PathLike) -> list[str]:
    """``wanted`` (default: every split of ``root``), each checked to exist in ``root``."""
    have = available_splits(root)
    if not wanted:
        return have
    wanted = list(dict.fromkeys(wanted))
    missing = [s for s in wanted if s not in have]
    if missing:
        raise ValueError(f"{root}: no list for split(s) {missing}; the dataset has {have}")
    return wanted


def pick(samples: Sequence, n: int | None, seed: int, split: str) -> list:
    """``n`` samples of ``split`` chosen with a generator seeded by (seed, split); all if ``n`` is None.

    Kept in list order, so a larger ``n`` with the same seed is not a superset, but a rerun is identical.
    """
    samples = list(samples)
    if n is None or n >= len(samples):
        return samples
    if n < 1:
        raise ValueError(f"n must be a positive number of composites, got {n}")
    idx = numpy_rng(seed, "diagnostics", split).choice(len(samples), size=n, replace=False)
    return [samples[i] for i in sorted(int(i) for i in idx)]


def mean_se(values: Iterable[float]) -> tuple[int, float, float]:
    """(n, mean, standard error) over the finite values; SE = sample std / sqrt(n) (NaN for n < 2)."""
    x = np.asarray(list(values), dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return 0, float("nan"), float("nan")
    se = float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return n, float(x.mean()), se


def summarise(df: pd.DataFrame, by: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """One row per group of ``by``: ``n_<col>``, ``<col>`` (mean) and ``<col>_se`` for each column.

    Non-finite values (an empty foreground's NaN, a perfect image's infinite PSNR) are left out of
    the mean and SE; ``n_<col>`` counts the values used, ``n`` the rows.
    """
    rows = []
    for key, g in df.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        row["n"] = len(g)
        for c in columns:
            n, m, se = mean_se(g[c])
            row.update({c: m, f"{c}_se": se, f"n_{c}": n})
        rows.append(row)
    return pd.DataFrame(rows)

"""Aggregating per-image scores: per subset, over all images ("All"), and by foreground ratio.

Means over images; PSNR over finite values only (the infinite ones counted); fMSE / bMSE leave out
empty / full masks (counted); missing predictions are counted, never averaged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harmonylib.config import SUBSETS
from harmonylib.conventions import DEFAULT_CONVENTION, fg_bin_members
from harmonylib.evaluation.scoring import METRICS
from harmonylib.metrics import FG_BIN_LABELS

ALL = "All"


def _summarise(g: pd.DataFrame) -> dict[str, float | int]:
    scored = g[~g["missing"].astype(bool)] if "missing" in g else g
    psnr = scored["psnr"].to_numpy(np.float64)
    finite = np.isfinite(psnr)

    def mean(x: np.ndarray) -> float:
        return float(x.mean()) if x.size else float("nan")

    fmse = scored["fmse"].to_numpy(np.float64)
    bmse = scored["bmse"].to_numpy(np.float64)
    return {
        "n": len(scored),
        "mse": mean(scored["mse"].to_numpy(np.float64)),
        "psnr": mean(psnr[finite]),  # over finite PSNR only; the infinite ones are counted
        "fmse": mean(fmse[~np.isnan(fmse)]),
        "bmse": mean(bmse[~np.isnan(bmse)]),
        "n_missing": len(g) - len(scored),
        "n_psnr_inf": int(np.isinf(psnr).sum()),
        "n_fmse_nan": int(np.isnan(fmse).sum()),
        "n_bmse_nan": int(np.isnan(bmse).sum()),
    }


def _subset_order(df: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(df["subset"]))
    return [s for s in SUBSETS if s in present] + sorted(s for s in present if s not in SUBSETS)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Per-subset and overall means of a per-image frame from :func:`evaluate_predictions`.

    Args:
        df: per-image rows (columns ``subset``, ``mse``, ``psnr``, ``fmse``, ``bmse``,
            optionally ``missing``).

    Returns:
        One row per subset (paper order) and a last row ``"All"`` = the mean over all images,
        with columns ``subset``, ``n``, ``mse``, ``psnr``, ``fmse``, ``bmse``, ``n_missing``,
        ``n_psnr_inf``, ``n_fmse_nan``, ``n_bmse_nan``. ``psnr`` averages finite values only.
    """
    rows = [{"subset": s, **_summarise(df[df["subset"] == s])} for s in _subset_order(df)]
    rows.append({"subset": ALL, **_summarise(df)})
    return pd.DataFrame(rows)


def aggregate_by_fg_bins(df: pd.DataFrame, convention: str = DEFAULT_CONVENTION) -> pd.DataFrame:
    """Means per foreground-ratio bin, per subset and over all images.

    Args:
        df: per-image rows from :func:`evaluate_predictions`.
        convention: whose bin edges (``conventions.fg_bin_members``): the default's are
            [0, .05), [.05, .15), [.15, 1]; ``issam``/``pctnet`` close both ends (an edge ratio
            counts twice); ``hdnet``'s are (lo, hi].

    Returns:
        Rows (subset, bin) for each subset and ``"All"``, bins in order ``0-5%``, ``5-15%``,
        ``15-100%`` (empty bins kept with n = 0), columns ``subset``, ``fg_bin``, ``n``
        (N_samples), the metric means and NaN/inf counts as in :func:`aggregate`.
    """
    members = fg_bin_members(df["fg_ratio"].to_numpy(np.float64), convention)  # (N, 3)
    rows = []
    for s in [*_subset_order(df), ALL]:
        in_subset = np.ones(len(df), bool) if s == ALL else (df["subset"] == s).to_numpy()
        for b, label in enumerate(FG_BIN_LABELS):
            rows.append({"subset": s, "fg_bin": label, **_summarise(df[in_subset & members[:, b]])})
    return pd.DataFrame(rows)


def format_report(summary: pd.DataFrame, bins: pd.DataFrame | None = None) -> str:
    """Plain-text tables of :func:`aggregate` (and :func:`aggregate_by_fg_bins`) for a terminal."""
    fmt = {k: "{:.2f}".format for k in METRICS}
    text = summary.to_string(index=False, formatters=fmt)
    if bins is not None:
        text += "\n\nBy foreground ratio:\n" + bins.to_string(index=False, formatters=fmt)
    text += (
        "\n\nMeans over images; psnr over finite values (n_psnr_inf counted apart); fmse/bmse"
        " leave out empty/full masks (n_fmse_nan, n_bmse_nan); missing predictions not scored."
    )
    return text

"""Figure 2: the cumulative distribution of the foreground ratio per dataset, and its CSVs.

The share of images above 0.2 is annotated (paper §5.1.2: about 70% for Human Harmony, under 15%
for iHarmony4). :func:`read_fg_ratio_csv` reads the ratios back for re-rendering.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harmonylib.figures.output import _save
from harmonylib.io import atomic_path, atomic_write_json

FIGURE2_STEM = "figure2_fg_ratio_cdf"
FIGURE2_CAPTION = (
    "Cumulative distribution curves of the foreground area ratio (mask at 256x256, as the "
    "evaluator measures it); the annotation gives each dataset's share of images with a ratio "
    "above the threshold."
)
# Paper §5.1.2: "approximately 70% of the images in the Human Harmony dataset have foreground
# ratios above 0.2, whereas in iHarmony4 this is less than 15%". Text as printed, for labels.
PAPER_FIG2_SHARES = {"Human Harmony": "about 70%", "iHarmony4": "under 15%"}
PAPER_FIG2_THRESHOLD = 0.2


class FgRatioCdf(NamedTuple):
    """What :func:`plot_fg_ratio_cdf` returns: the figure, and dataset -> share above threshold."""

    figure: plt.Figure
    shares: dict[str, float]


def share_above(ratios: np.ndarray, threshold: float = PAPER_FIG2_THRESHOLD) -> float:
    """Fraction of ratios strictly above ``threshold`` (NaN for an empty array)."""
    r = np.asarray(ratios, dtype=np.float64)
    return float(np.mean(r > threshold)) if r.size else float("nan")


def fg_ratio_cdf_points(ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF at each sorted ratio: ``(x, F(x))`` with ``F(x) = #{r <= x} / n``.

    Tied ratios share the CDF value of the last of them, so each point is exactly ``P(r <= x)``.
    """
    x = np.sort(np.asarray(ratios, dtype=np.float64))  # (N,)
    f = np.searchsorted(x, x, side="right") / max(x.size, 1)  # (N,) P(r <= x)
    return x, f


def plot_fg_ratio_cdf(
    ratios: Mapping[str, np.ndarray],
    out: str | os.PathLike | None = None,
    annotate_threshold: float = PAPER_FIG2_THRESHOLD,
    title: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> FgRatioCdf:
    """Figure 2: cumulative distribution curves of the foreground ratio, one per dataset.

    Args:
        ratios: dataset name (e.g. ``"iHarmony4"``, ``"Human Harmony"``) -> (N,) ratios in [0, 1],
            e.g. from :func:`foreground_ratios`.
        out: path stem, usually ``results_dir(profile, "figures") / FIGURE2_STEM``; if given,
            ``out.png``, ``out.pdf``, ``out.csv`` (columns ``dataset``, ``fg_ratio``, ``cdf``:
            every ratio, sorted, with its CDF value) and ``out_shares.csv`` (``dataset``, ``n``,
            ``threshold``, ``share_above``, ``paper``) are written atomically, and
            ``out.provenance.json`` when ``provenance`` is given.
        annotate_threshold: the ratio whose exceedance share is annotated (paper: 0.2). The
            share counts ratios strictly above it.
        title: axes title (default: none; the caption is :data:`FIGURE2_CAPTION`).
        provenance: a record from ``harmonylib.provenance.provenance``.

    Returns:
        ``FgRatioCdf(figure, shares)``, shares = dataset -> share of ratios above the threshold.
    """
    if not ratios:
        raise ValueError("ratios: give at least one dataset")
    fig, ax = plt.subplots(figsize=(5, 3.6))
    shares: dict[str, float] = {}
    rows = []
    for name, r in ratios.items():
        x, f = fg_ratio_cdf_points(r)
        share = share_above(x, annotate_threshold)
        shares[name] = share
        rows += [(name, float(a), float(b)) for a, b in zip(x, f, strict=True)]
        # a step curve from (0, 0) to (1, 1): F is right-continuous
        xs = np.concatenate([[0.0], x, [1.0]])
        fs = np.concatenate([[0.0], f, [1.0]])
        paper = PAPER_FIG2_SHARES.get(name) if annotate_threshold == PAPER_FIG2_THRESHOLD else None
        label = f"{name} (n={x.size}): {share:.1%} > {annotate_threshold:g}"
        label += f" (paper: {paper})" if paper else ""
        (line,) = ax.step(xs, fs, where="post", linewidth=1.8, label=label)
        f_at = 1.0 - share  # F(threshold) = P(r <= t)
        ax.plot([annotate_threshold], [f_at], "o", color=line.get_color(), markersize=4)
        ax.hlines(f_at, 0.0, annotate_threshold, colors=line.get_color(), linestyles=":", linewidth=0.8)
    ax.axvline(annotate_threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("foreground ratio")
    ax.set_ylabel("cumulative fraction of images")
    if title:
        ax.set_title(title)
    # legend below the axes, where it never hides a curve
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.16), frameon=False)
    fig.tight_layout()
    if out is not None:
        out = Path(out)
        written = _save(fig, out, pdf=True)
        with atomic_path(out.with_suffix(".csv")) as tmp:
            pd.DataFrame(rows, columns=["dataset", "fg_ratio", "cdf"]).to_csv(tmp, index=False)
        shares_csv = out.with_name(out.name + "_shares.csv")
        with atomic_path(shares_csv) as tmp:
            pd.DataFrame(
                [
                    {
                        "dataset": name,
                        "n": len(np.asarray(ratios[name])),
                        "threshold": annotate_threshold,
                        "share_above": share,
                        "paper": PAPER_FIG2_SHARES.get(name, "")
                        if annotate_threshold == PAPER_FIG2_THRESHOLD
                        else "",
                    }
                    for name, share in shares.items()
                ]
            ).to_csv(tmp, index=False)
        if provenance is not None:
            files = [*written, out.with_suffix(".csv"), shares_csv]
            atomic_write_json(
                out.with_suffix(".provenance.json"),
                {
                    **provenance,
                    "figure": "Figure 2",
                    "caption": FIGURE2_CAPTION,
                    "outputs": [p.name for p in files],
                },
            )
    return FgRatioCdf(fig, shares)


def read_fg_ratio_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ratios of a CSV written by :func:`plot_fg_ratio_cdf` (or :func:`plot_fg_ratio_histogram`).

    Returns:
        dataset -> (N,) ratios, in the CSV's order of first appearance.
    """
    df = pd.read_csv(path)
    key = "dataset" if "dataset" in df.columns else "split"
    return {str(k): g["fg_ratio"].to_numpy(np.float64) for k, g in df.groupby(key, sort=False)}

"""Figures: dataset overviews, the paper's Figure 2, and qualitative grids (Figures 3-4).

Every figure is written as PNG (and PDF where asked) atomically, with the data it plots as CSV
beside it, so a figure can be re-rendered without recomputing:

* :func:`plot_fg_ratio_cdf` - Figure 2, cumulative distribution of the foreground ratio per
  dataset, with the share above 0.2 annotated (paper §5.1.2: about 70% for Human Harmony,
  under 15% for iHarmony4). :func:`read_fg_ratio_csv` reads its CSV back for re-rendering.
* :func:`plot_comparison_grid` - composite | mask | DiffHarmony | DiffHarmony++ | real, one row
  per example, in the layout of the paper's Figures 3 and 4. Given the evaluation protocol
  (``protocol=cfg.eval``) it shows every image as the scores see it (:func:`scored_view`: resized
  to the metric resolution, the ground-truth background pasted into each prediction).

Modules, one concern each: :mod:`~harmonylib.figures.datasets` (foreground ratios, histogram,
sample grids), :mod:`~harmonylib.figures.fg_ratio_cdf` (Figure 2),
:mod:`~harmonylib.figures.comparison` (Figures 3-4) and :mod:`~harmonylib.figures.output`
(writing PNG / PDF). Every name is importable from ``harmonylib.figures``; importing any of them
selects matplotlib's file-only backend first.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; notebooks display the returned figure themselves

from harmonylib.figures.comparison import (  # noqa: E402
    COMPARISON_COLUMNS,
    NOT_PREDICTIONS,
    plot_comparison_grid,
    readable_label,
    scored_view,
)
from harmonylib.figures.datasets import (  # noqa: E402
    FG_BIN_EDGES,
    foreground_ratios,
    plot_fg_ratio_histogram,
    plot_triplets,
)
from harmonylib.figures.fg_ratio_cdf import (  # noqa: E402
    FIGURE2_CAPTION,
    FIGURE2_STEM,
    PAPER_FIG2_SHARES,
    PAPER_FIG2_THRESHOLD,
    FgRatioCdf,
    fg_ratio_cdf_points,
    plot_fg_ratio_cdf,
    read_fg_ratio_csv,
    share_above,
)

__all__ = [
    "COMPARISON_COLUMNS",
    "FG_BIN_EDGES",
    "FIGURE2_CAPTION",
    "FIGURE2_STEM",
    "NOT_PREDICTIONS",
    "PAPER_FIG2_SHARES",
    "PAPER_FIG2_THRESHOLD",
    "FgRatioCdf",
    "fg_ratio_cdf_points",
    "foreground_ratios",
    "plot_comparison_grid",
    "plot_fg_ratio_cdf",
    "plot_fg_ratio_histogram",
    "plot_triplets",
    "read_fg_ratio_csv",
    "readable_label",
    "scored_view",
    "share_above",
]

"""Plots of written tables, measured beside the paper: Table 1's PSNR per subset, Table 3's fMSE per bin.

Each plot reads a table CSV written by :func:`harmonylib.tables.write_table` (``tables/tableN.csv``)
and nothing else, so it can be redrawn from committed results without recomputing:

* :func:`table1_psnr` - grouped bars per subset (the four subsets and All): for each model its
  measured PSNR (solid) beside the paper's (hatched);
* :func:`table3_fmse` - one panel per dataset, bars per foreground-ratio bin: measured fMSE
  beside the paper's. A row measured with a stand-in (the csv's ``stand_in`` column, e.g. the
  pixel baseline in HDNet_512's row) is labelled with the stand-in's name.

Both write ``<out>.png`` and ``<out>.csv`` (the plotted numbers) atomically when ``out`` is given.
:func:`data_title` gives the title part that says which data was measured (built-in or real).

Example::

    from harmonylib import plots
    fig = plots.table1_psnr("results/mini/tables/table1.csv", "results/mini/figures/04_table1_psnr",
                            title=plots.data_title(cfg))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; notebooks display the returned figure themselves

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harmonylib import tables  # noqa: E402
from harmonylib.io import atomic_path  # noqa: E402

TABLE1_MODELS = ("Composite", "DiffHarmony", "DiffHarmony++")
TABLE3_MODELS = ("DiffHarmony++", "HDNet_512")


def data_title(cfg: Any) -> str:
    """Which data a profile measures, for a plot title: "built-in data" unless it is iHarmony4."""
    if cfg.data.kind == "builtin":
        return f"{cfg.profile} profile, built-in data (not iHarmony4)"
    return f"{cfg.profile} profile, iHarmony4"


def _read(csv: str | os.PathLike, table: int) -> pd.DataFrame:
    df = tables.read_table(csv)
    if set(df["table"]) != {table}:
        raise ValueError(f"{csv}: holds table(s) {sorted(set(df['table']))}, expected Table {table}")
    if tables.STAND_IN not in df.columns:  # a csv written before the column existed
        df[tables.STAND_IN] = ""
    return df


def _label(df: pd.DataFrame, model: str) -> str:
    """The model's legend label; a stand-in's name is part of it (never the paper's name alone)."""
    who = sorted(set(df.loc[(df["model"] == model) & (df[tables.STAND_IN] != ""), tables.STAND_IN]))
    return f"{model} (stand-in: {', '.join(who)})" if who else model


def _bars(
    ax: plt.Axes, data: pd.DataFrame, groups: Sequence[str], models: Sequence[str], labels: dict
) -> None:
    """Grouped bars on ``ax``: per group, per model a measured (solid) and a paper (hatched) bar.

    ``data`` has one row per (group, model) with ``measured`` and ``reported`` (NaN: no bar).
    """
    x = np.arange(len(groups))  # (G,)
    width = 0.8 / (2 * len(models))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(models):
        d = data[data["model"] == model].set_index("group").reindex(groups)
        left = x - 0.4 + (2 * i + 0.5) * width
        colour = colours[i % len(colours)]
        ax.bar(left, d["measured"], width, color=colour, label=f"{labels[model]}: measured")
        ax.bar(left + width, d["reported"], width, color="white", edgecolor=colour, hatch="//",
               label=f"{model}: paper")  # fmt: skip
    ax.set_xticks(x)
    ax.set_xticklabels(groups, fontsize=8)


def _save(fig: plt.Figure, data: pd.DataFrame, out: str | os.PathLike | None) -> None:
    if out is None:
        return
    out = Path(out)
    with atomic_path(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    with atomic_path(out.with_suffix(".csv")) as tmp:
        data.to_csv(tmp, index=False)


def table1_psnr(
    csv: str | os.PathLike,
    out: str | os.PathLike | None = None,
    models: Sequence[str] = TABLE1_MODELS,
    metric: str = "PSNR",
    title: str = "",
) -> plt.Figure:
    """Table 1: ``metric`` per subset, measured beside the paper, for ``models``.

    Args:
        csv: a ``table1.csv`` written by ``write_table``.
        out: path stem; ``out.png`` and ``out.csv`` (subset, model, measured, reported) are written.
        models: the Table 1 columns to plot (those absent from the csv are skipped).
        metric: ``PSNR``, ``MSE`` or ``fMSE``.
        title: appended to the axes title (e.g. :func:`data_title`).

    Raises:
        ValueError: the csv is not Table 1, or holds none of ``models``.
    """
    df = _read(csv, 1)
    models = [m for m in models if m in set(df["model"])]
    if not models:
        raise ValueError(f"{csv}: none of the models to plot; it holds {sorted(set(df['model']))}")
    sel = df[(df["metric"] == metric) & df["model"].isin(models)].rename(columns={"subset": "group"})
    groups = list(dict.fromkeys(sel["group"]))  # paper order: four subsets, then All
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(groups), 3.4))
    _bars(ax, sel, groups, models, {m: _label(df, m) for m in models})
    ax.set_xlabel("iHarmony4 subset")
    ax.set_ylabel(f"{metric} (dB)" if metric == "PSNR" else metric)
    ax.set_title(f"Table 1, {metric}: measured vs paper" + (f" - {title}" if title else ""), fontsize=9)
    ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(0.0, -0.16), frameon=False)
    fig.tight_layout()
    _save(fig, sel[["group", "model", "measured", "reported"]].rename(columns={"group": "subset"}), out)
    return fig


def table3_fmse(
    csv: str | os.PathLike,
    out: str | os.PathLike | None = None,
    models: Sequence[str] = TABLE3_MODELS,
    metric: str = "fMSE",
    title: str = "",
) -> plt.Figure:
    """Table 3: ``metric`` per foreground-ratio bin, measured beside the paper, one panel per dataset.

    Args:
        csv: a ``table3.csv`` written by ``write_table``.
        out: path stem; ``out.png`` and ``out.csv`` (dataset, fg_bin, model, measured, reported).
        models: the Table 3 rows to plot; a row measured with a stand-in is labelled with it.
        metric: ``fMSE``, ``MSE`` or ``PSNR``.
        title: appended to the figure title (e.g. :func:`data_title`).

    Raises:
        ValueError: the csv is not Table 3, or holds none of ``models``.
    """
    df = _read(csv, 3)
    models = [m for m in models if m in set(df["model"])]
    if not models:
        raise ValueError(f"{csv}: none of the models to plot; it holds {sorted(set(df['model']))}")
    sel = df[(df["metric"] == metric) & df["model"].isin(models)].rename(columns={"fg_bin": "group"})
    datasets = list(dict.fromkeys(sel["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.4), squeeze=False)
    labels = {m: _label(df, m) for m in models}
    for ax, dataset in zip(axes[0], datasets, strict=True):
        d = sel[sel["dataset"] == dataset]
        _bars(ax, d, list(dict.fromkeys(d["group"])), models, labels)
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("foreground ratio")
        ax.set_ylabel(metric)
    axes[0][0].legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(0.0, -0.16), frameon=False)
    fig.suptitle(f"Table 3, {metric} by foreground ratio: measured vs paper" + (f" - {title}" if title else ""),
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    cols = ["dataset", "group", "model", "measured", "reported"]
    _save(fig, sel[cols].rename(columns={"group": "fg_bin"}), out)
    return fig

"""Dataset overviews: foreground ratios as the evaluator measures them, their histogram, sample grids."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harmonylib import metrics
from harmonylib.figures.output import _save
from harmonylib.io import atomic_path, load_mask_l, load_rgb

FG_BIN_EDGES = tuple(hi for _, hi in metrics.FG_BINS[:-1])  # (0.05, 0.15)


def foreground_ratios(samples: Sequence, resolution: int = 256, mask_mode: str = "dither") -> np.ndarray:
    """Foreground ratio of each sample's mask, measured as the evaluator measures it.

    Args:
        samples: objects with a ``.mask`` path (``harmonylib.data.iharmony4.Sample``).
        resolution: the evaluation resolution (256 in the protocol).
        mask_mode: ``"dither"`` (PIL ``convert("1")``, the authors') or ``"threshold"``.

    Returns:
        (N,) float array in [0, 1].
    """
    return np.array(
        [
            metrics.fg_ratio(metrics.evaluation_mask(load_mask_l(s.mask), resolution, mask_mode))
            for s in samples
        ]
    )


def plot_fg_ratio_histogram(
    ratios: Mapping[str, np.ndarray], out: str | os.PathLike | None = None, title: str = ""
) -> plt.Figure:
    """Histogram of foreground ratios per split, with the Table 3 bin edges and bin shares.

    Args:
        ratios: split name -> (N,) ratios.
        out: if given, ``out.png`` and ``out.csv`` (the ratios) are written.
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    edges = np.linspace(0, 1, 41)
    for name, r in ratios.items():
        r = np.asarray(r)
        share = np.histogram(np.clip(r, 0, 1), bins=[0, *FG_BIN_EDGES, 1.0 + 1e-9])[0] / max(len(r), 1)
        label = f"{name} (n={len(r)}; " + " / ".join(f"{s:.1%}" for s in share) + ")"
        ax.hist(r, bins=edges, histtype="step", linewidth=1.5, label=label, density=True)
    for e in FG_BIN_EDGES:
        ax.axvline(e, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("foreground ratio (mask at 256x256)")
    ax.set_ylabel("density")
    ax.set_title(title or "Foreground ratio; shares in bins 0-5% / 5-15% / 15-100%")
    ax.legend(fontsize=7)
    if out is not None:
        _save(fig, out)
        rows = [(name, float(v)) for name, r in ratios.items() for v in np.asarray(r)]
        with atomic_path(Path(out).with_suffix(".csv")) as tmp:
            pd.DataFrame(rows, columns=["split", "fg_ratio"]).to_csv(tmp, index=False)
    return fig


def plot_triplets(samples: Sequence, out: str | os.PathLike | None = None, size: int = 128) -> plt.Figure:
    """A grid of composite | mask | real, one row per sample.

    Args:
        samples: objects with ``.composite``, ``.mask``, ``.real`` paths and a ``.name``.
        out: if given, ``out.png`` is written.
        size: each image is shown squashed to ``size`` x ``size``.
    """
    n = len(samples)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    for row, s in zip(axes, samples, strict=True):
        images = (
            load_rgb(s.composite).resize((size, size)),
            load_mask_l(s.mask).resize((size, size)),
            load_rgb(s.real).resize((size, size)),
        )
        for ax, img, title in zip(row, images, ("composite", "mask", "real"), strict=True):
            ax.imshow(np.asarray(img), cmap="gray" if img.mode == "L" else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title}: {s.name}" if title == "composite" else title, fontsize=7)
    fig.tight_layout()
    if out is not None:
        _save(fig, out)
    return fig

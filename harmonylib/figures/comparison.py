"""Figures 3-4: qualitative comparison grids, composite | mask | DiffHarmony | DiffHarmony++ | real.

Given the evaluation protocol (``protocol=cfg.eval``) a grid shows every image as the scores see
it (:func:`scored_view`: resized to the metric resolution, the ground-truth background pasted into
each prediction).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from harmonylib import metrics
from harmonylib.figures.output import _save
from harmonylib.io import atomic_path, load_mask_l, load_rgb
from harmonylib.paths import relative_to_home

COMPARISON_COLUMNS = (
    ("composite", "Composite"),
    ("mask", "Mask"),
    ("diffharmony", "DiffHarmony"),
    ("diffharmony_pp", "DiffHarmony++"),
    ("real", "Real"),
)


NOT_PREDICTIONS = ("composite", "mask", "real")  # row keys that are inputs or ground truth


def _as_image(x: Image.Image | str | os.PathLike, mask: bool) -> Image.Image:
    if isinstance(x, Image.Image):
        return x.convert("L" if mask else "RGB")
    return load_mask_l(x) if mask else load_rgb(x)


def readable_label(subset: str, fg_ratio: float, photo: str = "", recolor: str = "") -> str:
    """A grid row label in words: subset, source photo and recolouring when known, foreground share.

    ``readable_label("HCOCO", 0.23, "lomiri_picosdeeuropa", "white_balance")`` ->
    ``"HCOCO: lomiri picosdeeuropa\nwhite balance, foreground 23%"``.
    """
    head = f"{subset}: {photo.replace('_', ' ')}" if photo else subset
    tail = f"{recolor.replace('_', ' ')}, " if recolor else ""
    return f"{head}\n{tail}foreground {fg_ratio:.0%}"


def scored_view(key: str, row: Mapping[str, Any], protocol: Any) -> Image.Image:
    """One image of a grid row as the evaluator scores it, with the evaluator's own code.

    Args:
        key: the row key: ``"composite"`` / ``"real"`` (resized as the protocol resizes),
            ``"mask"`` (the protocol's binarised mask), any other key a prediction, passed through
            :func:`harmonylib.metrics.prepare_protocol_arrays` with the row's ``real``, ``mask``
            and ``composite``, so its background is pasted exactly as scored.
        row: the grid row (PIL images or paths).
        protocol: an ``EvalConfig`` (``resolution``, ``background``, ``mask_mode``).

    Returns:
        A ``resolution`` x ``resolution`` RGB image ("L" for the mask).
    """
    r = int(protocol.resolution)
    if key == "mask":
        m = metrics.evaluation_mask(_as_image(row["mask"], mask=True), r, protocol.mask_mode)  # (r, r) bool
        return Image.fromarray(np.where(m, 255, 0).astype(np.uint8), "L")
    if key in ("composite", "real"):
        return Image.fromarray(metrics.resize_rgb(_as_image(row[key], mask=False), r))
    for need in ("real", "mask"):
        if need not in row:
            raise ValueError(f"row {row.get('name', '?')}: showing {key!r} as scored needs {need!r}")
    pred, _, _ = metrics.prepare_protocol_arrays(
        _as_image(row[key], mask=False),
        _as_image(row["real"], mask=False),
        _as_image(row["mask"], mask=True),
        _as_image(row["composite"], mask=False) if "composite" in row else None,
        resolution=r,
        background=protocol.background,
        mask_mode=protocol.mask_mode,
    )  # (r, r, 3) uint8, background pasted
    return Image.fromarray(pred)


def plot_comparison_grid(
    rows: Sequence[Mapping[str, Any]],
    out: str | os.PathLike | None = None,
    size: int = 256,
    columns: Sequence[tuple[str, str]] = COMPARISON_COLUMNS,
    protocol: Any = None,
    title: str = "",
) -> plt.Figure:
    """A qualitative grid in the layout of the paper's Figures 3-4, one row per example.

    Args:
        rows: dicts with ``name``, optionally ``label`` (the row's readable label; default the
            name) and, per column key (``composite``, ``mask``, ``diffharmony``,
            ``diffharmony_pp``, ``real``), a PIL image or a path. Every image of a row is shown at
            the composite's aspect ratio with its longer side ``size`` (predictions made at
            another resolution are resized, bilinear; masks nearest).
        out: path stem; if given, ``out.png``, ``out.pdf`` and ``out.csv`` (``name``, ``column``,
            ``source``: the path, or ``<image>`` for an in-memory image) are written atomically.
        size: longer side of each shown image, in pixels.
        columns: (row key, column title) pairs, in order.
        protocol: an ``EvalConfig``: show every image as the scores see it (:func:`scored_view`),
            square at the metric resolution, predictions with the background the evaluator pastes.
            None: the files as they are.
        title: the figure's title (say "built-in data" or "stand-in" where that applies).

    Returns:
        The figure.
    """
    if not rows:
        raise ValueError("rows: give at least one example")
    n, k = len(rows), len(columns)
    fig, axes = plt.subplots(n, k, figsize=(1.9 * k, 1.9 * n), squeeze=False)
    sources = []
    for r, (row, row_axes) in enumerate(zip(rows, axes, strict=True)):
        missing = [key for key, _ in columns if key not in row]
        if missing:
            raise ValueError(f"rows[{r}] ({row.get('name', '?')}) lacks {missing}")
        if protocol is not None:
            shape = (size, size)  # the protocol squashes every image to a square
        else:
            comp = _as_image(row[columns[0][0]], mask=False)
            scale = size / max(comp.size)
            shape = (max(1, round(comp.width * scale)), max(1, round(comp.height * scale)))
        for c, ((key, col_title), ax) in enumerate(zip(columns, row_axes, strict=True)):
            is_mask = key == "mask"
            img = (
                scored_view(key, row, protocol) if protocol is not None else _as_image(row[key], mask=is_mask)
            )
            if img.size != shape:
                img = img.resize(shape, Image.NEAREST if is_mask else Image.BILINEAR)
            ax.imshow(np.asarray(img), cmap="gray" if is_mask else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_title, fontsize=8)
            if c == 0:
                ax.set_ylabel(str(row.get("label", row.get("name", r))), fontsize=6)
            src = row[key]
            sources.append(
                (
                    str(row.get("name", r)),
                    key,
                    "<image>" if isinstance(src, Image.Image) else relative_to_home(src),
                )
            )
    if title:
        fig.suptitle(title, fontsize=8, wrap=True)
    fig.tight_layout()
    if out is not None:
        _save(fig, out, pdf=True)
        with atomic_path(Path(out).with_suffix(".csv")) as tmp:
            pd.DataFrame(sources, columns=["name", "column", "source"]).to_csv(tmp, index=False)
    return fig

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
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")  # files only; notebooks display the returned figure themselves

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from harmonylib import metrics  # noqa: E402
from harmonylib.io import atomic_path, atomic_write_json, load_mask_l, load_rgb  # noqa: E402
from harmonylib.paths import relative_to_home  # noqa: E402

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


def _save(fig: plt.Figure, out: str | os.PathLike, pdf: bool = False) -> list[Path]:
    out = Path(out)
    written = []
    for suffix in (".png", ".pdf") if pdf else (".png",):
        dest = out.with_suffix(suffix)
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150, bbox_inches="tight")
        written.append(dest)
    return written


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


# --------------------------------------------------------------------------------------------
# Figure 2: cumulative distribution of the foreground ratio
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Figures 3-4: qualitative comparison grids
# --------------------------------------------------------------------------------------------

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

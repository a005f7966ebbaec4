"""Figure 2 (foreground-ratio CDF), harmonizing one composite, and the qualitative grids (Figures 3-4).

The grids show the predictions the tables scored (R_inf '1024', the cached folders of
``predictions_for``), every image as the evaluator sees it (:func:`harmonylib.figures.scored_view`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmonylib.experiments import trained
from harmonylib.experiments.context import HUMAN_HARMONY, IHARMONY4, STEPS, Experiment, inference_sizes
from harmonylib.experiments.human_harmony import human_harmony_mask_sources, human_harmony_samples
from harmonylib.experiments.predictions import Arm, predictions_for
from harmonylib.experiments.scoring import provenance

FIGURE2_STEM = "figure2_fg_ratio_cdf"


def figure2(exp: Experiment, human_harmony_root: str | os.PathLike | None = None):
    """Figure 2: CDF of the foreground ratio, iHarmony4 (train + test) vs Human Harmony (all pairs).

    Writes ``<out>/figures/figure2_fg_ratio_cdf.{png,pdf,csv}``, ``..._shares.csv`` and the
    provenance; the share of ratios above 0.2 is annotated (paper: about 70% vs under 15%).
    """
    from harmonylib import figures
    from harmonylib.data.iharmony4 import read_split

    ih = [*read_split(exp.data_root, "train"), *exp.samples]
    ratios = {IHARMONY4: figures.foreground_ratios(ih, exp.cfg.eval.resolution, exp.cfg.eval.mask_mode)}
    hh = human_harmony_mask_sources(human_harmony_root)
    if hh:
        ratios[HUMAN_HARMONY] = figures.foreground_ratios(hh, exp.cfg.eval.resolution, exp.cfg.eval.mask_mode)
    title = (
        f"iHarmony4 here: the {exp.cfg.profile} profile's built-in data"
        + (", Human Harmony: built from a generated stand-in of iMaterialist" if hh else "")
        + " (both built to a target foreground mix)"
        if exp.cfg.data.kind == "builtin"
        else ""
    )
    return figures.plot_fg_ratio_cdf(
        ratios,
        exp.figures_dir / FIGURE2_STEM,
        title=title,
        provenance=provenance(exp, [exp.cfg.seed], notebook="09_figure2",
                              human_harmony_root=str(human_harmony_root or "")),
    )  # fmt: skip


def harmonize(
    exp: Experiment,
    composite: str | os.PathLike,
    mask: str | os.PathLike,
    seed: int | None = None,
    level: str = "high",
) -> dict[str, Any]:
    """Harmonize one composite with DiffHarmony and DiffHarmony++ (square squash, 5 steps), at its own size.

    Returns:
        ``{"diffharmony": PIL, "diffharmony_pp": PIL}``, background pasted back (the user's view).
    """
    from harmonylib.reproducibility import make_generator

    seed = exp.cfg.seed if seed is None else seed
    size = inference_sizes(exp.cfg)[level]
    hvae = trained.harmony_vae_run(exp, seed).load_model(ema=True)
    out = {}
    for key, vae in (("diffharmony", None), ("diffharmony_pp", hvae)):
        pipe = trained.make_pipeline(exp, vae=vae)
        out[key] = pipe(
            composite, mask, num_inference_steps=STEPS, generator=make_generator(seed),
            size_mode="square", size=size, resize_to_input=True, keep_background=True,
        ).images[0]  # fmt: skip
    return out


def comparison_rows(
    exp: Experiment, samples: Sequence, dataset: str = IHARMONY4, seed: int | None = None
) -> list[dict[str, Any]]:
    """Rows for ``figures.plot_comparison_grid``: composite | mask | DiffHarmony | DiffHarmony++ | real.

    The two predictions are the table's cached ones (R_inf '1024', 256 output) when present.
    """
    seed = exp.cfg.seed if seed is None else seed
    plain = predictions_for(exp, Arm("diffharmony", "high", seed), samples, dataset)
    plus = predictions_for(exp, Arm("diffharmony++", "high", seed), samples, dataset)
    labels = sample_labels(exp, samples)
    return [
        {"name": s.name, "label": labels[s.name], "composite": s.composite, "mask": s.mask,
         "diffharmony": Path(plain) / f"{s.name}.png", "diffharmony_pp": Path(plus) / f"{s.name}.png", "real": s.real}
        for s in samples
    ]  # fmt: skip


def sample_labels(exp: Experiment, samples: Sequence) -> dict[str, str]:
    """Composite name -> a row label in words (``figures.readable_label``), not the file's id.

    The built-in data names each composite's source photo and recolouring in ``composites.csv``;
    elsewhere the label is the subset and the foreground share the evaluator measures.
    """
    from harmonylib import figures
    from harmonylib.data.builtin import COMPOSITES_FILE

    info: dict[str, dict[str, str]] = {}
    for root in {Path(s.composite).parents[2] for s in samples}:  # <root>/<subset>/composite_images/x
        table = root / COMPOSITES_FILE
        if table.is_file():
            df = pd.read_csv(table, usecols=["name", "photo", "recolor"], dtype=str, keep_default_na=False)
            info.update(df.drop_duplicates("name").set_index("name").to_dict("index"))
    ratios = figures.foreground_ratios(samples, exp.cfg.eval.resolution, exp.cfg.eval.mask_mode)
    return {
        s.name: figures.readable_label(s.subset, float(r), **info.get(s.name, {}))
        for s, r in zip(samples, ratios, strict=True)
    }


def grid_title(exp: Experiment, dataset: str, seed: int) -> str:
    """A grid's title: which data (built-in or a stand-in where so), seed, and the scored view."""
    builtin = exp.cfg.data.kind == "builtin"
    if dataset == HUMAN_HARMONY:
        what = "Figure 4 analogue: Human Harmony test" + (
            " (built from a generated stand-in of iMaterialist, not the paper's)" if builtin else ""
        )
    else:
        what = (
            f"Figure 3 analogue: the {exp.cfg.profile} profile's built-in data (composites from real "
            "photographs), not iHarmony4"
            if builtin
            else "Figure 3: iHarmony4 test"
        )
    bg = {"gt": "the ground-truth background pasted", "composite": "the composite's background pasted",
          "none": "no background pasted"}[exp.cfg.eval.background]  # fmt: skip
    return (
        f"{what}. Seed {seed}, R_inf '1024'; every image at {exp.cfg.eval.resolution} px as scored "
        f"({bg} into the predictions)."
    )


def pick_samples(samples: Sequence, n: int, seed: int = 0, largest_fg: bool = False) -> list:
    """``n`` samples, seeded; ``largest_fg`` prefers large foregrounds (where decoding distortion shows)."""
    from harmonylib import figures
    from harmonylib.reproducibility import numpy_rng

    samples = list(samples)
    if not samples:
        return []
    n = min(n, len(samples))
    if largest_fg:
        r = figures.foreground_ratios(samples)
        order = np.argsort(-r, kind="stable")[: max(n, min(len(samples), 4 * n))]
        picks = numpy_rng(seed, "pick").choice(order, size=n, replace=False)
    else:
        picks = numpy_rng(seed, "pick").choice(len(samples), size=n, replace=False)
    return [samples[i] for i in sorted(int(i) for i in picks)]


def figures_3_4(
    exp: Experiment,
    n_rows: int = 4,
    human_harmony_root: str | os.PathLike | None = None,
    seed: int | None = None,
) -> dict[str, Path]:
    """Qualitative grids in the style of Figures 3 (iHarmony4) and 4 (Human Harmony).

    Writes ``<out>/figures/figure3_grid.{png,pdf,csv}`` and, when Human Harmony is built,
    ``figure4_grid.*``; returns the PNG paths. Every image is shown as the scores see it: at the
    metric resolution, the background pasted by the evaluator's own code
    (:func:`harmonylib.figures.scored_view`); rows are labelled in words (:func:`sample_labels`).
    """
    import matplotlib.pyplot as plt

    from harmonylib import figures

    seed = exp.cfg.seed if seed is None else seed
    written = {}
    sets = {"figure3_grid": (IHARMONY4, exp.samples)}
    hh = human_harmony_samples(human_harmony_root)
    if hh:
        sets["figure4_grid"] = (HUMAN_HARMONY, hh)
    for stem, (dataset, samples) in sets.items():
        picks = pick_samples(samples, n_rows, seed, largest_fg=True)
        # shown as scored: the evaluator's own resize, mask and background paste (figures.scored_view)
        fig = figures.plot_comparison_grid(
            comparison_rows(exp, picks, dataset, seed), exp.figures_dir / stem,
            protocol=exp.cfg.eval, title=grid_title(exp, dataset, seed),
        )  # fmt: skip
        plt.close(fig)
        written[stem] = exp.figures_dir / f"{stem}.png"
    return written

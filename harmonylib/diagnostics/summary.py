"""The short Markdown summary of a diagnostics run: one small table per measure, and what was skipped."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def _fmt(mean: float, se: float, digits: int) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if math.isfinite(se) else f"{mean:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def x0_lines(df: pd.DataFrame) -> list[str]:
    rows = [
        [
            str(r.split),
            str(r.size),
            f"{r.timestep:g}",
            f"{r.sigma:.3g}",
            str(r.n_unet_x0_mse),
            _fmt(r.unet_x0_mse, r.unet_x0_mse_se, 4),
            _fmt(r.copy_mse, r.copy_mse_se, 4),
            f"{r.unet_beats_copy:.0%}" if math.isfinite(r.unet_beats_copy) else "–",
        ]  # fmt: skip
        for r in df.itertuples()
    ]
    header = ["split", "size", "t", "σ", "n", "UNet x0 fg MSE", "copy fg MSE", "UNet < copy"]
    return [
        "## UNet x0 error (foreground latents, mean ± SE over composites)",
        "",
        "x0 = x_t − σ·ε̂ from the real image's latent noised to each inference level; the copy "
        "baseline is x0 = the composite's latent.",
        "",
        *_table(header, rows),
    ]


def trajectory_lines(df: pd.DataFrame) -> list[str]:
    rows = [
        [
            str(r.split),
            str(r.size),
            str(r.step),
            "–" if r.timestep < 0 else f"{r.timestep:g}",
            str(r.n_fg_mse),
            _fmt(r.fg_mse, r.fg_mse_se, 4),
            _fmt(r.bg_mse, r.bg_mse_se, 4),
            _fmt(r.copy_fg_mse, r.copy_fg_mse_se, 4),
            f"{r.beats_copy:.0%}" if math.isfinite(r.beats_copy) else "–",
        ]  # fmt: skip
        for r in df.itertuples()
    ]
    header = ["split", "size", "step", "t", "n", "x0 fg MSE", "x0 bg MSE", "copy fg MSE", "x0 < copy"]
    return [
        "## x0 along the sampler's own trajectory (latent MSE, mean ± SE over composites)",
        "",
        "The pipeline's seeded Euler-ancestral run; at each step the scheduler's x0 estimate, then the "
        "sampled latents ('final'), against the real image's latent. The background is held exactly by "
        "the condition; the copy baseline is x0 = the composite's latent.",
        "",
        *_table(header, rows),
    ]


def score_lines(df: pd.DataFrame, title: str) -> list[str]:
    rows = [
        [
            str(r.split),
            str(r.row),
            "–" if pd.isna(r.size) else str(int(r.size)),
            str(r.n),
            _fmt(r.psnr, r.psnr_se, 2),
            _fmt(r.mse, r.mse_se, 1),
            _fmt(r.fmse, r.fmse_se, 1),
        ]  # fmt: skip
        for r in df.itertuples()
    ]
    return [
        f"## {title} (mean ± SE over composites)",
        "",
        *_table(["split", "row", "size", "n", "PSNR", "MSE", "fMSE"], rows),
    ]


def render_summary(res: Any, meta: dict[str, Any]) -> str:
    """``diagnostics.md``: settings, the three measures (those measured) and the skip reasons."""
    st = meta["settings"]
    lines = [
        f"# Diagnostics ({meta['profile']})",
        "",
        f"Composites per split: {', '.join(f'{k} {v}' for k, v in meta['splits'].items())} "
        f"(seeded choice, seed {st['seed']}); x0 at {st['x0_sizes']} px over the noise levels of "
        f"{st['steps']} Euler-ancestral steps; ceilings at {st['sizes']} px; scored at the evaluation "
        "protocol (256 px, ground-truth background).",
        "",
    ]
    titles = {
        "ceilings": "Autoencoder ceilings at each inference size",
        "pixel_baseline": "Pixel baseline vs composite",
    }
    for name, df in res.summaries.items():
        if name == "unet_x0_error":
            lines += x0_lines(df) + [""]
        elif name == "trajectory":
            lines += trajectory_lines(df) + [""]
        else:
            lines += score_lines(df, titles[name]) + [""]
    if res.skipped:
        lines += ["## Skipped", ""] + [f"- {k}: {v}" for k, v in res.skipped.items()] + [""]
    return "\n".join(lines)

"""``results/<profile>/RESULTS.md``: every measured cell beside the paper, generated, never typed in.

The README shows the headline (:mod:`harmonylib.readme`); this page shows the rest, read from the
same files:

1. every measured cell of every ``tables/tableN.csv`` (:func:`harmonylib.tables.write_table`)
   beside the paper's value and the difference;
2. the claims with their seeds and mean ± SE (``claims.csv``, :mod:`harmonylib.claims`);
3. how Table 2's generated composites differ from the dataset's own
   (``tables/table2_candidates.csv``, ``inverse_data.write_candidate_fidelity``);
4. the map paper artefact -> notebook -> output file -> command (:data:`ARTEFACTS`).

``python -m harmonylib.readme`` writes it together with the README's block.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from harmonylib import tables
from harmonylib.paths import results_dir
from harmonylib.readme_figure import GRID_STEM

PAGE = "RESULTS.md"  # under results/<profile>/

# (paper artefact, notebook, output files under results/<profile>/, command; "" = papermill the notebook)
ARTEFACTS: tuple[tuple[str, str, str, str], ...] = (
    ("Dataset overview", "00_data", "figures/00_data_fg_ratio.png, figures/00_data_samples.png", ""),
    ("Harmony-VAE training (§3.2, §5.2)", "01_train_harmony_vae", "runs/harmony_vae-forward-ecd_zero/", ""),
    ("Inverse harmonization model (§4.1)", "02_train_inverse_model", "runs/unet-inverse/", ""),
    ("Harmony classifier (§4.2)", "03_train_classifier", "runs/classifier/", ""),
    ("Table 1 (iHarmony4 comparison)", "04_table1", "tables/table1.{csv,md,tex}, tables/per_image/table1_*.csv", ""),
    ("Table 2 (data augmentation)", "05_table2", "tables/table2.{csv,md,tex}", ""),
    ("Table 3 (by foreground ratio)", "06_table3", "tables/table3.{csv,md,tex}, tables/per_image/table3_*.csv", ""),
    ("Table 4 (inference resolution, refinement)", "07_table4", "tables/table4.{csv,md,tex}", ""),
    ("Table 5 (zero init, finetuned parameters)", "08_table5", "tables/table5.{csv,md,tex}", ""),
    ("Figure 2 (foreground-ratio CDF)", "09_figure2", "figures/figure2_fg_ratio_cdf.{png,pdf,csv}", ""),
    ("Figures 3-4 (qualitative) and your own composite", "10_inference",
     "figures/figure3_grid.png, figures/figure4_grid.png", ""),
    ("Human Harmony dataset (§4.2, §5.1.2)", "11_build_human_harmony", "data/HumanHarmony/", ""),
    ("Claims, tested over seeds", "04-08 (all)", "claims.md, claims.csv, claims_measurements.csv",
     "`make reproduce PROFILE={profile}`"),
    ("The README's figure", "04_table1, then the command", f"figures/{GRID_STEM}.{{png,csv}}",
     "`python -m harmonylib.readme_figure --profile {profile}`"),
)  # fmt: skip


def number(x: float, metric: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return str(int(round(x))) if metric == "N_samples" else f"{x:.2f}"


def reported_cell(row: pd.Series) -> str:
    status = row["reported_status"]
    if status == "nan":
        return "NaN"
    if status in ("missing", tables.NOT_IN_PAPER):
        return "–"
    return number(float(row["reported"]), row["metric"]) + ("*" if status == "derived" else "")


def stand_in_note(row: pd.Series) -> str:
    """`` (measured with X)`` where another method measured the paper's row, else ``""``.

    Tables written with a ``stand_in`` column name it; older Table 3 files did not, and their
    HDNet_512 row is the pixel baseline (``experiments.table3``).
    """
    s = row.get("stand_in", "")
    if isinstance(s, str) and s:
        return f" (measured with {s})"
    if int(row["table"]) == 3 and row.get("model") == "HDNet_512":
        return " (measured with PixelHarmonizer)"
    return ""


def headline_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows the results page shows of one written table: every measured row (Table 1: all subsets)."""
    df = tables.read_table(path)
    n = int(df["table"].iloc[0])
    keys = list(tables.key_columns(n))
    df = df[df["measured"].notna() | ((n == 5) & (df["reported_status"] == "nan"))]
    out = []
    for _, r in df.iterrows():
        delta = (
            ""
            if pd.isna(r["delta"])
            else (f"{r['delta']:+.0f}" if r["metric"] == "N_samples" else f"{r['delta']:+.2f}")
        )
        out.append(
            {
                "table": f"Table {n}",
                "row": " / ".join(str(r[k]) for k in keys) + stand_in_note(r),
                "metric": r["metric"],
                "measured": number(float(r["measured"]), r["metric"]),
                "paper": reported_cell(r),
                "delta": delta,
            }
        )  # fmt: skip
    return out


def candidate_lines(path: Path) -> list[str]:
    """Table 2's candidate fidelity (original vs generated composites), or nothing if not written."""
    if not path.is_file():
        return []
    df = pd.read_csv(path)
    lines = [
        "",
        "## Table 2's composites: original against generated",
        "",
        f"From `tables/{path.name}`, per pair, the foreground against the real image: fMSE, mean "
        "colour shift, and the fMSE left after the best per-channel affine colour map, i.e. what is "
        "not a change of colour.",
        "",
        "| subset | composites | n | fMSE | colour shift | residual fMSE |",
        "|:---|:---|---:|---:|---:|---:|",
    ]
    for r in df.itertuples():
        lines.append(
            f"| {r.subset} | {r.source} | {r.n} | {r.fmse:.0f} | {r.colour_shift:.1f} | {r.residual_fmse:.0f} |"
        )
    return lines


def results_page(profile: str, results: str | os.PathLike | None = None) -> str:
    """``results/<profile>/RESULTS.md``: every measured cell, the claims' seeds, candidate fidelity, the map."""
    res = Path(results) if results else results_dir(profile)
    paths = sorted(res.glob("tables/table[0-9].csv"))
    lines = [
        f"# Results: profile {profile}",
        "",
        "Generated by `python -m harmonylib.readme` from `tables/table*.csv` and `claims.csv` in this "
        "folder; do not edit. The README shows the headline; this page shows every measured cell.",
        "",
        "## Every measured cell beside the paper",
        "",
    ]
    if paths:
        lines += [
            "Δ = measured − paper. Each table's caption (`tables/tableN.md`) says what was measured, on "
            "which data and at which scale; on the built-in data (smoke, mini) the deltas compare "
            "different data and model scales. * : derived from the paper's numbers; – : not measured or "
            "not in the paper.",
            "",
            "| table | row | metric | measured | paper | Δ |",
            "|:---|:---|:---|---:|---:|---:|",
        ]
        for p in paths:
            lines += [
                f"| {r['table']} | {r['row']} | {r['metric']} | {r['measured']} | {r['paper']} | {r['delta']} |"
                for r in headline_rows(p)
            ]
    else:
        lines += [f"No tables yet: run `make reproduce PROFILE={profile}`."]
    claims_csv = res / "claims.csv"
    if claims_csv.is_file():
        c = pd.read_csv(claims_csv)
        lines += [
            "",
            "## Claims over seeds",
            "",
            "The declared rule, the bounds and each seed's value: `claims.md`.",
            "",
            "| claim | statement | seeds | mean ± SE | verdict |",
            "|:---|:---|---:|---:|:---|",
        ]
        for r in c.itertuples():
            se = "NaN" if pd.isna(r.se) else f"{r.se:.2f}"
            mean = "NaN" if pd.isna(r.mean) else f"{r.mean:+.2f}"
            lines.append(f"| {r.claim} | {r.statement} | {r.n_seeds} | {mean} ± {se} | {r.verdict} |")
    lines += candidate_lines(res / "tables" / "table2_candidates.csv")
    lines += [
        "",
        "## Paper artefact → notebook → output",
        "",
        "Outputs under this folder; executed notebooks in `notebooks/`.",
        "",
        "| paper artefact | notebook | output | command |",
        "|:---|:---|:---|:---|",
    ]
    for artefact, nb, out, cmd in ARTEFACTS:
        cmd = (
            cmd.format(profile=profile) or f"`papermill notebooks/{nb}.ipynb out.ipynb -p profile {profile}`"
        )
        lines.append(f"| {artefact} | `{nb}` | `{out}` | {cmd} |")
    return "\n".join(lines) + "\n"

"""The README's results block, generated from result files and never typed in.

``python -m harmonylib.readme --profile mini`` replaces the text between the README's
``<!-- results:start ... -->`` and ``<!-- results:end -->`` markers with:

1. the headline results, measured beside the paper, read from ``results/<profile>/tables/table*.csv``
   (written by :func:`harmonylib.tables.write_table`; Table 1: the "All" rows only, the other
   tables: every measured cell);
2. the claims' verdicts from ``results/<profile>/claims.csv`` (:mod:`harmonylib.claims`);
3. the map paper artefact -> notebook -> output file -> command (:data:`ARTEFACTS`).

Only the block between the markers changes; the rest of the README is left byte for byte.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path

import pandas as pd

from harmonylib import tables
from harmonylib.io import atomic_write_text
from harmonylib.paths import project_root, results_dir

START = re.compile(r"^<!-- results:start.*-->\s*$", re.M)
END = "<!-- results:end -->"

# (paper artefact, notebook, output files under results/<profile>/)
ARTEFACTS: tuple[tuple[str, str, str], ...] = (
    ("Dataset overview", "00_data", "figures/00_data_fg_ratio.png, figures/00_data_samples.png"),
    ("Harmony-VAE training (§3.2, §5.2)", "01_train_harmony_vae", "runs/harmony_vae-forward-ecd_zero/"),
    ("Inverse harmonization model (§4.1)", "02_train_inverse_model", "runs/unet-inverse/"),
    ("Harmony classifier (§4.2)", "03_train_classifier", "runs/classifier/"),
    (
        "Table 1 (iHarmony4 comparison)",
        "04_table1",
        "tables/table1.{csv,md,tex}, tables/per_image/table1_*.csv",
    ),
    ("Table 2 (data augmentation)", "05_table2", "tables/table2.{csv,md,tex}"),
    (
        "Table 3 (by foreground ratio)",
        "06_table3",
        "tables/table3.{csv,md,tex}, tables/per_image/table3_*.csv",
    ),
    ("Table 4 (inference resolution, refinement)", "07_table4", "tables/table4.{csv,md,tex}"),
    ("Table 5 (zero init, finetuned parameters)", "08_table5", "tables/table5.{csv,md,tex}"),
    ("Figure 2 (foreground-ratio CDF)", "09_figure2", "figures/figure2_fg_ratio_cdf.{png,pdf,csv}"),
    (
        "Figures 3-4 (qualitative) and your own composite",
        "10_inference",
        "figures/figure3_grid.png, figures/figure4_grid.png",
    ),
    ("Human Harmony dataset (§4.2, §5.1.2)", "11_build_human_harmony", "data/HumanHarmony/"),
    ("Claims, tested over seeds", "04-08 (all)", "claims.md, claims.csv, claims_measurements.csv"),
)


def _num(x: float, metric: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return str(int(round(x))) if metric == "N_samples" else f"{x:.2f}"


def _reported(row: pd.Series) -> str:
    status = row["reported_status"]
    if status == "nan":
        return "NaN"
    if status in ("missing", tables.NOT_IN_PAPER):
        return "–"
    return _num(float(row["reported"]), row["metric"]) + ("*" if status == "derived" else "")


def headline_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows a README shows of one written table: Table 1's "All" rows, every measured row elsewhere."""
    df = tables.read_table(path)
    n = int(df["table"].iloc[0])
    keys = list(tables.key_columns(n))
    if n == 1:
        df = df[df["subset"] == "All"]
    df = df[df["measured"].notna() | ((n == 5) & (df["reported_status"] == "nan"))]
    out = []
    for _, r in df.iterrows():
        label = " / ".join(str(r[k]) for k in keys if not (n == 1 and k == "subset"))
        if n == 3 and r["model"] == "HDNet_512":
            label += " (stand-in: pixel baseline)"  # HDNet_512 is not public (experiments.table3)
        delta = (
            ""
            if pd.isna(r["delta"])
            else (f"{r['delta']:+.0f}" if r["metric"] == "N_samples" else f"{r['delta']:+.2f}")
        )
        out.append(
            {
                "table": f"Table {n}",
                "row": label,
                "metric": r["metric"],
                "measured": _num(float(r["measured"]), r["metric"]),
                "paper": _reported(r),
                "delta": delta,
            }
        )
    return out


def results_block(profile: str, results: str | os.PathLike | None = None) -> str:
    """The Markdown between the markers for ``profile`` (from ``results`` or ``results/<profile>``)."""
    res = Path(results) if results else results_dir(profile)
    try:
        shown = res.relative_to(project_root())
    except ValueError:
        shown = res
    paths = sorted(res.glob("tables/table[0-9].csv"))
    lines = [
        f"Profile **{profile}**, generated from `{shown}/tables/table*.csv` by `python -m harmonylib.readme`."
    ]
    if paths:
        lines += [
            "Measured beside the paper's reported values (Δ = measured − paper). Each table's caption "
            f"(`{shown}/tables/tableN.md`) says what was measured, on which data and at which scale; on "
            "the built-in data (smoke, mini) the deltas compare different data and model scales.",
            "",
            "| table | row | metric | measured | paper | Δ |",
            "|:---|:---|:---|---:|---:|---:|",
        ]
        for p in paths:
            for r in headline_rows(p):
                lines.append(
                    f"| {r['table']} | {r['row']} | {r['metric']} | {r['measured']} | {r['paper']} | {r['delta']} |"
                )
    else:
        lines += ["", f"No tables yet: run `make reproduce PROFILE={profile}`."]
    claims_csv = res / "claims.csv"
    if claims_csv.is_file():
        c = pd.read_csv(claims_csv)
        lines += [
            "",
            f"Claims (`{shown}/claims.md`: the declared rule, per-seed values):",
            "",
            "| claim | statement | seeds | mean ± SE | verdict |",
            "|:---|:---|---:|---:|:---|",
        ]
        for r in c.itertuples():
            se = "NaN" if pd.isna(r.se) else f"{r.se:.2f}"
            mean = "NaN" if pd.isna(r.mean) else f"{r.mean:+.2f}"
            lines.append(f"| {r.claim} | {r.statement} | {r.n_seeds} | {mean} ± {se} | {r.verdict} |")
    lines += [
        "",
        "Paper artefact → notebook → output (under `results/<profile>/`; executed notebooks in "
        "`results/<profile>/notebooks/`):",
        "",
        "| paper artefact | notebook | output | command |",
        "|:---|:---|:---|:---|",
    ]
    for artefact, nb, out in ARTEFACTS:
        cmd = (
            "`make reproduce PROFILE=mini`"
            if "-" in nb.split("_")[0]
            else f"`papermill notebooks/{nb}.ipynb out.ipynb -p profile mini`"
        )
        lines.append(f"| {artefact} | `{nb}` | `{out}` | {cmd} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: str | os.PathLike, block: str) -> bool:
    """Replace the text between the markers of ``readme`` with ``block``; True if the file changed.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    readme = Path(readme)
    text = readme.read_text()
    m = START.search(text)
    end = text.find(END, m.end()) if m else -1
    if m is None or end < 0:
        raise ValueError(f"{readme}: needs a '<!-- results:start ... -->' line followed by '{END}'")
    new = text[: m.end()] + "\n" + block + text[end:]
    if new == text:
        return False
    atomic_write_text(readme, new)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m harmonylib.readme --profile mini``: regenerate the README's results block."""
    ap = argparse.ArgumentParser(prog="python -m harmonylib.readme", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--results", default=None, help="results root (default results/<profile>)")
    ap.add_argument("--readme", default=str(project_root() / "README.md"))
    ap.add_argument("--check", action="store_true", help="exit 1 if the README is not up to date")
    args = ap.parse_args(argv)
    block = results_block(args.profile, args.results)
    if args.check:
        text = Path(args.readme).read_text()
        m = START.search(text)
        current = text[m.end() + 1 : text.find(END, m.end())] if m else None
        ok = current == block
        print(
            "README results block is up to date" if ok else "README results block is stale", file=sys.stderr
        )
        return 0 if ok else 1
    changed = update_readme(args.readme, block)
    print(f"{args.readme}: {'updated' if changed else 'unchanged'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

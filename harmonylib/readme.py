"""The README's results at a glance, and the full results page, generated from result files.

``python -m harmonylib.readme --profile mini`` writes two things, never typed in:

* the README's block between ``<!-- results:start ... -->`` and ``<!-- results:end -->``:

  1. Table 1 compact: one row per measured method, "All" only, PSNR / MSE / fMSE measured beside
     the paper (``results/<profile>/tables/table1.csv``, :func:`harmonylib.tables.write_table`);
  2. the claims' verdicts, one line per claim: the paper's effect, ours, their ratio and the
     verdict (``results/<profile>/claims.csv``, :mod:`harmonylib.claims`);
  3. one figure, ``figures/readme_grid.png`` (:mod:`harmonylib.readme_figure`), when it exists;
  4. links to the full tables, to ``claims.md`` and to the results page;

* ``results/<profile>/RESULTS.md``, the results page: every measured cell of every table beside
  the paper, the claims with their seeds and mean ± SE, Table 2's candidate fidelity, and the map
  paper artefact -> notebook -> output -> command (:data:`ARTEFACTS`).

A file that is missing is said so, with the command that makes it. Only the block between the
markers changes; the rest of the README is left byte for byte.
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
from harmonylib.cli_format import Parser
from harmonylib.config import load_config
from harmonylib.io import atomic_write_text
from harmonylib.paths import project_root, results_dir
from harmonylib.readme_figure import GRID_STEM
from harmonylib.results_page import PAGE, number, reported_cell, results_page, stand_in_note

START = re.compile(r"^<!-- results:start.*-->\s*$", re.M)
END = "<!-- results:end -->"
METRICS = (("PSNR", "↑"), ("MSE", "↓"), ("fMSE", "↓"))
# verdicts for which no statistics ran (harmonylib.claims.schema): no "ours" to show
NO_STATS = ("NOT MEASURED", "BY CONSTRUCTION (no verdict)")


def table1_lines(path: Path, builtin: bool) -> list[str]:
    """Table 1 compact: one row per measured method, "All" only, each metric measured beside the paper."""
    df = tables.read_table(path)
    df = df[(df["subset"] == "All") & df["measured"].notna()]
    lines = [
        "| method | " + " | ".join(f"{m} {arrow} | paper" for m, arrow in METRICS) + " |",
        "|:---|" + "---:|---:|" * len(METRICS),
    ]
    for model in dict.fromkeys(df["model"]):
        rows = df[df["model"] == model]
        cells = []
        for metric, _ in METRICS:
            r = rows[rows["metric"] == metric]
            cells += (
                ["–", "–"]
                if r.empty
                else [number(float(r["measured"].iloc[0]), metric), reported_cell(r.iloc[0])]
            )
        lines.append(f"| {model}{stand_in_note(rows.iloc[0])} | " + " | ".join(cells) + " |")
    notes = []
    if builtin and (df["model"] == "Composite").any():
        notes.append(
            "Composite is the unedited input. On the built-in data its row sits near the paper's by "
            "construction: the recolouring strengths were fitted to the paper's Composite row, so its "
            "difference from the paper is not a finding."
        )
    if df["model"].str.contains("ceiling").any():
        notes.append(
            "The ceilings (not in the paper) encode and decode the real image: what DiffHarmony and "
            "DiffHarmony++ would score with perfect latents."
        )
    return lines + [line for note in notes for line in ("", note)]  # one paragraph per note


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _signed(x: object) -> str:
    return f"{x:+.2f}" if _finite(x) else "—"


def claim_lines(path: Path) -> list[str]:
    """One line per claim: the paper's effect, ours, ours / paper and the verdict; then the tally.

    Effects are ``d`` of :mod:`harmonylib.claims` (> 0: the paper's direction). Claims files written
    before the effect columns existed show ``mean`` as ours and ``paper`` as the paper's.
    """
    c = pd.read_csv(path)
    lines = [
        "| claim | statement | paper's effect | ours | ours / paper | verdict |",
        "|:---|:---|---:|---:|---:|:---|",
    ]
    for r in c.to_dict("records"):
        ours = r.get("effect", r.get("mean"))
        paper = r.get("paper_effect", r.get("paper"))
        paper_cell = _signed(paper) if _finite(paper) else str(r.get("paper_text") or "—")
        ratio = r.get(
            "effect_ratio", ours / paper if _finite(ours) and _finite(paper) and paper else math.nan
        )
        stats = r["verdict"] not in NO_STATS
        ratio_cell = (
            "—"
            if not (stats and _finite(ratio))
            else (f"×{ratio:.2g}" if abs(ratio) < 10 else f"×{ratio:.0f}")
        )
        cells = [
            r["claim"],
            r["statement"],
            paper_cell,
            _signed(ours) if stats else "—",
            ratio_cell,
            f"**{r['verdict']}**",
        ]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in cells) + " |")  # fmt: skip
    tally = c["verdict"].value_counts()
    lines += [
        "",
        f"{len(c)} claim{'s' if len(c) != 1 else ''}: "
        + ", ".join(f"{k} {v}" for k, v in tally.items())
        + ".",
    ]
    return lines


def _shown(res: Path) -> str:
    """``res`` as the README links it: relative to the clone's root when it lies inside."""
    try:
        return res.relative_to(project_root()).as_posix()
    except ValueError:
        return res.as_posix()


def _figure_lines(res: Path, shown: str, profile: str) -> list[str]:
    png = res / "figures" / f"{GRID_STEM}.png"
    cmd = f"`python -m harmonylib.readme_figure --profile {profile}`"
    if not png.is_file():
        return [f"No figure yet: {cmd} makes `{shown}/figures/{GRID_STEM}.png` from Table 1's predictions."]
    rec = res / "figures" / f"{GRID_STEM}.csv"
    n = pd.read_csv(rec)["image"].nunique() if rec.is_file() else "a few"
    return [
        f"![Composite, DiffHarmony, DiffHarmony++ and real on {n} test images]({shown}/figures/{GRID_STEM}.png)",
        "",
        f"Composite, DiffHarmony, DiffHarmony++ and the real image on {n} test images with large "
        "foregrounds, each shown as scored: resized to the metric resolution, the real background "
        "pasted into each prediction. Each row gives the three PSNRs (dB). Made by "
        f"{cmd}; the files shown and their scores are in `{shown}/figures/{GRID_STEM}.csv`.",
    ]


def results_block(profile: str, results: str | os.PathLike | None = None) -> str:
    """The README's block for ``profile`` (from ``results`` or ``results/<profile>``): results at a glance."""
    res = Path(results) if results else results_dir(profile)
    shown = _shown(res)
    builtin = load_config(profile).data.kind == "builtin"
    lines = [f"Profile **{profile}**, generated by `python -m harmonylib.readme` from `{shown}/`.", ""]
    t1 = res / "tables" / "table1.csv"
    lines += ["### Table 1: all test images, measured beside the paper", ""]
    if t1.is_file():
        lines += [
            f"What was measured, on which data and over which seeds: the caption in [`{shown}/tables/table1.md`]"
            f"({shown}/tables/table1.md).",
            "",
        ] + table1_lines(t1, builtin)
    else:
        lines += [f"No Table 1 yet: run `make table1 PROFILE={profile}`."]
    lines += ["", "### The paper's claims", ""]
    claims_csv = res / "claims.csv"
    if claims_csv.is_file():
        lines += [
            "Effects are in the paper's direction (> 0: as the paper says) and in the claim's metric (dB "
            "for PSNR); 'ours / paper' shows the size. The declared rule, the statistics and each "
            f"seed's value: [`{shown}/claims.md`]({shown}/claims.md).",
            "",
        ] + claim_lines(claims_csv)
    else:
        lines += [f"No claims yet: `make reproduce PROFILE={profile}` measures them (`{shown}/claims.csv`)."]
    lines += ["", "### What the outputs look like", ""] + _figure_lines(res, shown, profile)
    written = sorted(res.glob("tables/table[0-9].md"))
    links = ", ".join(f"[Table {p.stem[5:]}]({shown}/tables/{p.name})" for p in written) or "none written yet"
    lines += [
        "",
        "### Full results",
        "",
        f"- Tables with their captions: {links}.",
        f"- Every measured cell beside the paper, the claims' seeds, and which notebook makes which "
        f"file: [`{shown}/{PAGE}`]({shown}/{PAGE}).",
    ]
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


def _add_block_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--profile", default="mini", help="whose results the block shows")
    ap.add_argument(
        "--results", default=None, help="results root (default: results/<profile> under the home)"
    )
    ap.add_argument("--readme", default=None, help="README to update (default: README.md under the home)")
    ap.add_argument(
        "--check",
        action="store_true",
        help=f"change nothing; exit 1 if the README block or {PAGE} is not up to date",
    )


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.readme") -> int:
    """``python -m harmonylib.readme --profile mini``: regenerate the README's block and RESULTS.md."""
    ap = Parser(prog=prog, description=__doc__.splitlines()[0])
    _add_block_arguments(ap)
    return _readme_block(ap.parse_args(argv))


def tables_main(argv: list[str] | None = None, prog: str = "harmonylib tables") -> int:
    """``harmonylib tables``: merge the claims measurements, then regenerate the README block.

    The notebooks write the tables themselves; this is the step ``make reproduce`` runs last, for
    the claims measured by notebooks that finished side by side.
    """
    ap = Parser(
        prog=prog, description="Merge a profile's claims measurements, then regenerate the README block."
    )
    _add_block_arguments(ap)
    ap.add_argument("--no-claims", action="store_true", help="leave claims.md and claims.csv as they are")
    args = ap.parse_args(argv)
    if not args.no_claims and not args.check:
        from harmonylib.experiments import update_claims

        res = Path(args.results) if args.results else results_dir(args.profile)
        written = update_claims(res)
        print(f"{res}: claims {'merged' if written else 'none measured yet'}", file=sys.stderr)
    return _readme_block(args)


def _readme_block(args: argparse.Namespace) -> int:
    args.readme = args.readme or str(project_root() / "README.md")
    res = Path(args.results) if args.results else results_dir(args.profile)
    block, page = results_block(args.profile, res), results_page(args.profile, res)
    page_path = res / PAGE
    if args.check:
        text = Path(args.readme).read_text()
        m = START.search(text)
        current = text[m.end() + 1 : text.find(END, m.end())] if m else None
        stale = [n for n, ok in ((args.readme, current == block),
                                 (str(page_path), page_path.is_file() and page_path.read_text() == page)) if not ok]  # fmt: skip
        print(
            f"stale: {', '.join(stale)}" if stale else "README block and results page are up to date",
            file=sys.stderr,
        )
        return 1 if stale else 0
    changed = update_readme(args.readme, block)
    print(f"{args.readme}: {'updated' if changed else 'unchanged'}", file=sys.stderr)
    if not (page_path.is_file() and page_path.read_text() == page):
        atomic_write_text(page_path, page)
        print(f"{page_path}: written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The README's one figure: composite | DiffHarmony | DiffHarmony++ | real, shown as they were scored.

``python -m harmonylib.readme_figure --profile mini`` writes ``results/<profile>/figures/readme_grid.png``
(and ``readme_grid.csv``: every shown file with its per-image scores) from what Table 1 already
made; it runs no model. The prediction folders are the ones Table 1 scored, named in the
``predictions`` column of its per-image CSVs (``tables/per_image/table1_iHarmony4_*.csv``,
written by ``experiments.score``), at one seed.

Every image is shown as the evaluator sees it (:func:`harmonylib.metrics.prepare_protocol_arrays`
with the profile's ``eval`` settings): resized to the metric resolution, and each prediction with
the ground-truth background pasted through the dithered mask. So a difference between two
columns is a difference the scores count, and nothing outside the foreground differs from the
real image. The grid itself is :func:`harmonylib.figures.plot_comparison_grid`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from harmonylib.cli_format import Parser
from harmonylib.config import PAPER_VARIANT, load_config
from harmonylib.io import atomic_path, load_mask_l, load_rgb
from harmonylib.paths import relative_to_home, resolve, results_dir

# harmonylib.readme imports GRID_STEM from here, and the README block must not pull in torch:
# the modules that do (metrics via imageproc, reproducibility) are imported where they are used.

GRID_STEM = "readme_grid"  # <results>/figures/readme_grid.{png,csv}
COLUMNS = (
    ("composite", "Composite"),
    ("diffharmony", "DiffHarmony"),
    ("diffharmony_pp", "DiffHarmony++"),
    ("real", "Real"),
)
SHORT = {"composite": "comp", "diffharmony": "DH", "diffharmony_pp": "DH++"}


def per_image_files(results: Path, seed: int) -> dict[str, Path]:
    """Table 1's per-image CSVs of the composite and the two methods at ``seed`` (the arm labels of
    ``experiments.Arm.label``: R_inf "1024", the paper's Harmony-VAE variant)."""
    d = results / "tables" / "per_image"
    return {
        "composite": d / "table1_iHarmony4_Composite_composite.csv",
        "diffharmony": d / f"table1_iHarmony4_DiffHarmony_diffharmony_high_seed{seed}.csv",
        "diffharmony_pp": d
        / f"table1_iHarmony4_DiffHarmony++_diffharmonypp_high_{PAPER_VARIANT}_seed{seed}.csv",
    }


def missing_inputs(results: str | os.PathLike, seed: int = 0) -> list[Path]:
    """The per-image CSVs the grid needs that do not exist (empty: the grid can be made)."""
    return [p for p in per_image_files(Path(results), seed).values() if not p.is_file()]


def read_scores(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    need = {"image", "subset", "fg_ratio", "psnr", "fmse", "missing", "predictions"}
    if not need <= set(df.columns):
        raise ValueError(
            f"{path}: not a per-image CSV of experiments.score; lacks {sorted(need - set(df.columns))}"
        )
    return df[~df["missing"].astype(bool)].set_index("image")


def pick_images(scores: dict[str, pd.DataFrame], n: int, seed: int = 0) -> list[str]:
    """``n`` images every CSV scored: seeded among the 4n largest foregrounds, where what a decoder
    does to the foreground shows (a 2 % foreground is a few pixels at 256 px). Sorted by name."""
    from harmonylib.reproducibility import numpy_rng

    common = sorted(set.intersection(*(set(df.index) for df in scores.values())))
    if not common:
        raise ValueError("the per-image CSVs share no scored image")
    fg = scores["composite"].loc[common, "fg_ratio"].to_numpy(float)
    order = np.argsort(-fg, kind="stable")[: 4 * n]
    picks = numpy_rng(seed, "readme-grid").choice(order, size=min(n, len(order)), replace=False)
    return sorted(common[int(i)] for i in picks)


def _folder(scores: pd.DataFrame, key: str, csv: Path) -> Path:
    folders = scores["predictions"].unique()
    if len(folders) != 1 or folders[0] == "<composites>":
        raise ValueError(f"{csv}: expected one predictions folder for {key}, found {list(folders)}")
    return resolve(folders[0])


def grid_rows(samples: Sequence[Any], scores: dict[str, pd.DataFrame], names: Sequence[str], csvs: dict[str, Path],
              protocol: Any) -> tuple[list[dict[str, Any]], pd.DataFrame]:  # fmt: skip
    """The rows for ``plot_comparison_grid`` (PIL images as scored) and a record of every shown file.

    Args:
        samples: the test split's samples (``name``, ``composite``, ``mask``, ``real`` paths).
        scores: key -> per-image frame (index ``image``) of ``composite`` and the two methods.
        names: the images to show.
        csvs: key -> the per-image CSV each frame came from (for error messages).
        protocol: an ``EvalConfig`` (``resolution``, ``background``, ``mask_mode``).
    """
    from harmonylib.metrics import prepare_protocol_arrays

    by_name = {s.name: s for s in samples}
    folders = {k: _folder(scores[k], k, csvs[k]) for k in ("diffharmony", "diffharmony_pp")}
    rows, record = [], []
    for name in names:
        if name not in by_name:
            raise ValueError(f"{name}: scored in {csvs['composite']} but not in the test split given")
        s = by_name[name]
        files = {"composite": Path(s.composite), "real": Path(s.real)}
        files |= {k: folders[k] / f"{name}.png" for k in folders}
        for k, f in files.items():
            if not f.is_file():
                raise FileNotFoundError(f"{f}: the {k} image of {name} is missing")
        real, mask = load_rgb(s.real), load_mask_l(s.mask)
        composite = load_rgb(s.composite)
        row: dict[str, Any] = {}
        for key, _ in COLUMNS:
            # (R, R, 3) uint8: the prediction with the background pasted, and the real image, as scored
            pred, real_view, _ = prepare_protocol_arrays(
                composite if key in ("composite", "real") else load_rgb(files[key]),
                real,
                mask,
                composite,
                resolution=int(protocol.resolution),
                background=protocol.background,
                mask_mode=protocol.mask_mode,
            )
            row[key] = Image.fromarray(real_view if key == "real" else pred)
            score = scores[key].loc[name] if key in scores else None
            record.append(
                {
                    "image": name,
                    "column": key,
                    "source": relative_to_home(files[key]),
                    "psnr": np.nan if score is None else float(score["psnr"]),
                    "fmse": np.nan if score is None else float(score["fmse"]),
                }
            )
        sc = scores["composite"].loc[name]
        psnr = ", ".join(f"{SHORT[k]} {scores[k].loc[name, 'psnr']:.1f}" for k in SHORT)
        # plot_comparison_grid labels a row with "label" where it knows it, else with "name"
        label = f"{sc['subset']}, fg {sc['fg_ratio']:.0%}\nPSNR {psnr}"
        rows.append({"name": label, "label": label, **row})
    return rows, pd.DataFrame(record)


def make_readme_grid(
    profile: str = "mini",
    results: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    n: int = 4,
    seed: int = 0,
) -> Path:
    """Write ``<results>/figures/readme_grid.{png,csv}`` from Table 1's predictions; return the PNG path.

    Args:
        profile: whose evaluation protocol and data are used.
        results: the results root (default ``results/<profile>``).
        data_root: the dataset root (default: the profile's, built when it is the built-in data).
        n: how many test images (rows).
        seed: the training seed whose predictions are shown; also seeds the choice of images.

    Raises:
        FileNotFoundError: Table 1's per-image CSVs, or a prediction file they name, are missing.
    """
    import matplotlib.pyplot as plt

    from harmonylib import figures
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.data.iharmony4 import read_split

    cfg = load_config(profile)
    res = Path(results) if results else results_dir(cfg.profile)
    missing = missing_inputs(res, seed)
    if missing:
        raise FileNotFoundError(
            f"{missing[0]}: missing; Table 1 has not been scored at seed {seed} (run `make table1`)"
        )
    csvs = per_image_files(res, seed)
    scores = {k: read_scores(p) for k, p in csvs.items()}
    root = Path(data_root) if data_root else ensure_dataset(cfg, progress=False)
    names = pick_images(scores, n, seed)
    rows, record = grid_rows(read_split(root, "test"), scores, names, csvs, cfg.eval)
    fig = figures.plot_comparison_grid(rows, None, size=int(cfg.eval.resolution), columns=COLUMNS)
    data = "built-in data" if cfg.data.kind == "builtin" else "test split"
    fig.suptitle(
        f"Profile {cfg.profile}, {data}, seed {seed}: every image as scored "
        f"({cfg.eval.resolution} px, ground-truth background pasted)",
        fontsize=7,
    )
    fig.tight_layout()
    out = res / "figures" / f"{GRID_STEM}.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    with atomic_path(out.with_suffix(".csv")) as tmp:
        record.to_csv(tmp, index=False)
    return out


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.readme_figure") -> int:
    """``python -m harmonylib.readme_figure --profile mini``: the README's figure from Table 1's predictions."""
    ap = Parser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini", help="whose protocol, data and results")
    ap.add_argument(
        "--results", default=None, help="results root (default: results/<profile> under the home)"
    )
    ap.add_argument("--data-root", default=None, help="dataset root (default: the profile's)")
    ap.add_argument("--n", type=int, default=4, help="test images shown, one per row")
    ap.add_argument("--seed", type=int, default=0, help="training seed whose predictions are shown")
    args: argparse.Namespace = ap.parse_args(argv)
    try:
        out = make_readme_grid(args.profile, args.results, args.data_root, args.n, args.seed)
    except (FileNotFoundError, ValueError) as exc:
        ap.exit(2, f"{ap.prog}: {exc}\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

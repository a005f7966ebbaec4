"""Table 2, the table's parts: the composites' floor, its caption, files and findings.

The cells themselves (the mean over training seeds of each seed's subset mean, beside the paper's)
are made by :func:`harmonylib.experiments.table2` with the runner's functions.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from harmonylib.claim_rule import default_seeds
from harmonylib.config import Config, to_dict
from harmonylib.inverse_data.common import _subset_samples, results_root
from harmonylib.inverse_data.table2_data import AugmentedData
from harmonylib.inverse_data.table2_runs import RunKey, Table2Run, runs_frame, table2_inference_settings


def composite_scores(cfg: Config, subsets: Iterable[str] | None = None) -> pd.DataFrame:
    """Per-subset means of the unharmonized composites of the test split (the floor to beat)."""
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.evaluation import aggregate, evaluate_predictions

    main_root = ensure_dataset(cfg)
    out = []
    for s in subsets or cfg.augment.table2_subsets:
        test = _subset_samples(main_root, "test", s)
        df = evaluate_predictions(test, [t.composite for t in test], cfg.eval, progress=False)
        out.append(aggregate(df).query("subset == @s"))
    return pd.concat(out, ignore_index=True)


def table2_caption(cfg: Config, runs: Mapping[RunKey, Table2Run], data: AugmentedData) -> str:
    """The paper's caption plus what was measured, on which data, with which schedule."""
    from harmonylib.tables import SPECS

    parts = []
    for s, m in data.subsets.items():
        r = next(run for (rs, setting, _), run in runs.items() if (rs, setting) == (s, "base"))
        parts.append(
            f"{s}: N1={m.n_pairs} pairs, N2={m.n_composites} composites, +{m.per_pair} generated per pair "
            f"(K={m.k}), {r.steps} steps x batch {r.batch_size} for both settings"
        )
    data_note = (
        "the built-in dataset (photographs shipped in installed packages), so deltas compare different data"
        if cfg.data.kind == "builtin"
        else "iHarmony4"
    )
    size = cfg.augment.table2_inference_size
    return (
        f"{SPECS[2].caption} Measured on the {cfg.profile} profile, {data_note}; gamma={data.gamma}; "
        + "; ".join(parts)
        + ". "
        + table2_training_note(cfg, sorted({seed for _, _, seed in runs}))
        + f" Inference at {size} px (square), 5 steps, plain VAE decode, resized to 256 and scored with the"
        " authors' protocol on the subset's original test split."
    )


def table2_training_note(cfg: Config, seeds: Sequence[int] | None = None) -> str:
    """The caption sentence on how Table 2's UNets were trained, read from the config: the start
    weights (``train.unet.init``), the step count (``augment.table2_steps``) and the training
    seeds (``seeds``, default ``claim_rule.default_seeds``)."""
    init = cfg.train.unet.init
    start = f"from {init} (train.unet.init)" if init else f"from random {cfg.train.unet.arch} weights"
    steps = cfg.augment.table2_steps
    if steps is not None:
        length = f"{steps} optimizer steps each (augment.table2_steps)"
    elif cfg.train.unet.loop.max_steps is not None:
        length = f"{cfg.train.unet.loop.max_steps} optimizer steps each (train.unet.loop.max_steps)"
    else:
        length = f"{cfg.train.unet.loop.epochs} epochs of the base list each (train.unet.loop.epochs)"
    seeds = default_seeds(cfg, seeds)
    if len(seeds) == 1:
        seed_text = (
            f"one training seed ({seeds[0]}): each UNet is trained once with it and its test predictions "
            "are sampled with it, so a cell is one run, not a mean over seeds."
        )
    else:
        seed_text = (
            f"{len(seeds)} training seeds ({', '.join(map(str, seeds))}): each UNet is retrained with every "
            "seed (initial noise draws, data order) and its test predictions are sampled with that seed; "
            "a cell is the mean over seeds. The generated data (inverse model, candidates) are the base "
            f"seed's ({cfg.seed})."
        )
    return (
        f"Both UNets of a subset are trained {start}, never from the adopted harmonization UNet, for "
        f"{length}; " + seed_text
    )


def write_table2(
    cfg: Config,
    table: pd.DataFrame,
    runs: Mapping[RunKey, Table2Run],
    data: AugmentedData,
    out_dir: str | os.PathLike | None = None,
    *,
    composite: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``tables/table2.{csv,md,tex,provenance.json}`` with the runs, the mix and the settings."""
    from harmonylib.tables import write_table

    root_out = results_root(cfg, out_dir)
    files = {"test_list": data.main_root / "IHD_test.txt", "augmented_list": data.gen_root / "IHD_train.txt"}
    return write_table(
        table,
        2,
        root_out / "tables",
        caption=table2_caption(cfg, runs, data),
        config=to_dict(cfg),
        seeds={"seeds": sorted({seed for _, _, seed in runs}), "generation_seed": cfg.seed},
        files=files,
        runs=runs_frame(runs).to_dict(orient="records"),
        mix={s: dataclasses.asdict(m) for s, m in data.subsets.items()},
        generation={**data.generation, "gen_root": str(data.gen_root)},
        inference={
            k: dataclasses.asdict(table2_inference_settings(cfg, r)) for k, r in _by_name(runs).items()
        },
        composite=None if composite is None else composite.to_dict(orient="records"),
        per_image={
            k: f"per_image/table2_{r.subset}_{r.setting}_seed{r.seed}.csv" for k, r in _by_name(runs).items()
        },
    )


def _by_name(runs: Mapping[RunKey, Table2Run]) -> dict[str, Table2Run]:
    return {f"{s}-{setting}-seed{seed}": r for (s, setting, seed), r in runs.items()}


def table2_findings(table: pd.DataFrame) -> pd.DataFrame:
    """Per subset and metric: base, augmented, the change, and whether it goes the paper's way."""
    rows = []
    for (subset, metric), g in table.groupby(["subset", "metric"], sort=False):
        v = g.set_index("setting")
        if not {"base", "augmented"} <= set(v.index):
            continue
        base, aug = float(v.loc["base", "measured"]), float(v.loc["augmented", "measured"])
        pb, pa = float(v.loc["base", "reported"]), float(v.loc["augmented", "reported"])
        better = (aug > base) if metric == "PSNR" else (aug < base)
        rows.append(
            {
                "subset": subset, "metric": metric, "base": base, "augmented": aug, "change": aug - base,
                "augmented_better": bool(better), "paper_base": pb, "paper_augmented": pa,
                "paper_change": pa - pb,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)

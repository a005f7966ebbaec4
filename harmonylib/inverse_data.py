"""Data made by the inverse model: Table 2's augmented training sets and the Human Harmony dataset.

The two experiments of paper §4 that use the inverse harmonization model (real image + mask in,
composite out), as steps that the notebooks ``05_table2`` and ``11_build_human_harmony`` call one
by one. The building blocks live in :mod:`harmonylib.augment` (generation, γ-mixing, classifier
selection) and :mod:`harmonylib.data.human_harmony` (the builder); this module decides where
things go, which models are used and how the runs are configured.

Table 2 (§5.3.2), per subset S in ``augment.table2_subsets`` (Hday2night, HFlickr):

1. The inverse pipeline (inverse UNet + inverse Harmony-VAE, trained on the whole training split
   as in §4.1) generates K candidates per (real, mask) pair of S's training split
   (:func:`generate_table2_data`); K = ``augment.table2_k``, raised to ⌈γ·N2/N1⌉ when smaller.
2. ``augment.mix_training_list`` adds ⌈γ·N2/N1⌉ of them per pair (γ = 1) to S's training list.
3. Two DiffHarmony UNets are trained on S's training split only (``data.subsets = (S,)``): *base*
   on the original list, *augmented* on original + generated (``data.extra_roots = {"gen": ...}``).
   Same hyper-parameters, same seed (so the same initial weights) and **the same number of
   optimizer steps and batch size**, hence the same number of training samples drawn: the
   augmented run sees more distinct data, not more steps ("train with the same total amount of
   data", §5.3.2). The step count is ``augment.table2_steps``, else the unet loop's ``max_steps``,
   else its ``epochs`` over the *base* list (:func:`table2_schedule`).
4. Each model predicts S's original test split at ``augment.table2_inference_size`` (paper: 512 px;
   the mini/smoke analogue is 64 px, the UNet's training resolution), squashed square, 5 steps,
   resized to 256, decoded with the plain VAE the UNet trained on (no Harmony-VAE, no refinement):
   §5.3.2 says optimal inference is not needed to see the effect of the data, so Table 2 uses the
   cheapest faithful setting. The authors' evaluator scores them (per-image CSVs kept).

Initial UNet weights: the unet recipe's ``init`` (SD-inpainting in the paper profile, the
paper's starting point for training DiffHarmony; the mini profile's SD-inpainting stand-in,
pretrained on photos only). The adopted harmonization UNet (``train.unet.adopt``) is never a
starting point: it was trained on the whole training split (:func:`table2_run_config`).

Human Harmony (§4.2, §5.1.2): :func:`imaterialist_source` (the real release for the paper
profile, a generated stand-in in the release's format for smoke/mini), then the builder's stages
prepare → generate (inverse pipeline, K = ``augment.human_harmony_k``) → select (harmony
classifier, ``ensure_trained(cfg, "classifier")``), then :func:`write_fg_ratio_stats`. The result
lies at :func:`human_harmony_root` (``<results>/data/HumanHarmony``), an iHarmony4-layout root that
``read_split`` reads unchanged; :func:`ensure_human_harmony` builds it once for other notebooks.

Layout under the results root (``results/<profile>`` or a notebook's ``out_dir``)::

    runs/table2-<S>-{base,augmented}/                  ensure_trained run folders
    table2/generated-<key>/                            candidates, manifest, IHD_train.txt (added entries), MIX.json
    table2/predictions/<S>-<setting>-<hash>/<stem>.png predictions (INFERENCE.json, DONE)
    tables/table2.{csv,md,tex,provenance.json}         the table
    tables/per_image/table2_<S>_<setting>.csv          per-image scores
    data/imaterialist-fixture/                         the stand-in release (smoke, mini)
    data/HumanHarmony/                                 the Human Harmony root
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harmonylib import metrics
from harmonylib.config import Config, to_dict
from harmonylib.io import atomic_path, atomic_write_json
from harmonylib.paths import resolve, results_dir

SETTINGS = ("base", "augmented")  # Table 2's columns
GEN_ROOT_NAME = "gen"  # the generated root's name in data.extra_roots (``@gen/...`` list entries)
HUMAN_HARMONY_DONE = "BUILD_DONE.json"
FG_RATIO_STATS_FILE = "human_harmony_fg_ratio_stats.csv"
FG_RATIOS_FILE = "human_harmony_fg_ratios.csv"


def results_root(cfg: Config, out_dir: str | os.PathLike | None = None) -> Path:
    """``out_dir`` (resolved) when given, else ``results/<profile>``."""
    return resolve(out_dir) if out_dir else results_dir(cfg.profile)


def _key(obj: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ================================================================================================
# Table 2
# ================================================================================================


@dataclass(frozen=True)
class SubsetMix:
    """One subset's share of the augmented data (paper §4.1 notation)."""

    subset: str
    n_pairs: int  # N1: (real, mask) pairs in the training split
    n_composites: int  # N2: composites in the training split
    per_pair: int  # ⌈γ·N2/N1⌉ generated composites added per pair
    k: int  # candidates generated per pair (>= per_pair)
    added: int  # N1 · per_pair


@dataclass
class AugmentedData:
    """The generated root of Table 2 and what it adds per subset."""

    main_root: Path
    gen_root: Path
    gamma: float
    subsets: dict[str, SubsetMix]
    generation: dict[str, Any]  # candidates generated now, seconds, candidates per second

    def counts_frame(self) -> pd.DataFrame:
        """One row per subset: N1, N2, per pair, K, added, and the augmented list's size."""
        rows = [
            {**dataclasses.asdict(m), "augmented_total": m.n_composites + m.added}
            for m in self.subsets.values()
        ]
        return pd.DataFrame(rows)


def _subset_samples(root: Path, split: str, subset: str) -> list:
    from harmonylib.data.iharmony4 import read_split

    samples = read_split(root, split, subsets=[subset])
    if not samples:
        raise ValueError(f"{root}: the {split} split has no {subset} samples")
    return samples


def _check_inverse(pipeline: Any) -> None:
    direction = getattr(getattr(pipeline, "config", None), "direction", "inverse")
    if direction != "inverse":
        raise ValueError(
            f"the pipeline was built for direction={direction!r}; candidates come from the inverse model "
            '(assemble_pipeline(cfg, "inverse"))'
        )


def generate_table2_data(
    cfg: Config,
    pipeline: Any,
    out_dir: str | os.PathLike | None = None,
    *,
    subsets: Iterable[str] | None = None,
    progress: bool = True,
) -> AugmentedData:
    """Steps 1-2 of Table 2: K candidates per training pair with the inverse pipeline, then γ-mixing.

    Args:
        cfg: the resolved config (``augment`` section: gamma, table2_k, generation settings).
        pipeline: the inverse ``DiffHarmonyPipeline`` (``assemble_pipeline(cfg, "inverse")``).
        out_dir: the results root (default ``results/<profile>``).
        subsets: default ``cfg.augment.table2_subsets``.
        progress: progress bars.

    Returns:
        An :class:`AugmentedData`. The generated root's name carries a key of the inverse model's
        weights, K, γ, the seed and the generation settings, so the augmented runs (whose config
        holds that path) are retrained whenever the generated data would differ.
    """
    from harmonylib.augment import (
        generate_candidates,
        mix_training_list,
        mixing_count,
        model_hashes,
        pairs_from_samples,
        read_manifest,
    )
    from harmonylib.data.builtin import ensure_dataset

    _check_inverse(pipeline)
    a = cfg.augment
    subsets = tuple(subsets or a.table2_subsets)
    main_root = ensure_dataset(cfg)
    plan: dict[str, tuple[list, int, int, int, int]] = {}
    for s in subsets:
        train = _subset_samples(main_root, "train", s)
        pairs = pairs_from_samples(train)
        m = mixing_count(a.gamma, len(pairs), len(train))
        plan[s] = (pairs, len(pairs), len(train), m, max(a.table2_k, m))
    key = _key(
        {
            "models": model_hashes(pipeline),
            "k": {s: p[4] for s, p in plan.items()},
            "gamma": a.gamma,  # the mixed list lives in the same root: a new γ must change the path
            "seed": cfg.seed,
            "steps": a.generation_steps,
            "main_root": str(main_root),
        }
    )
    gen_root = results_root(cfg, out_dir) / "table2" / f"generated-{key}"
    before = len(read_manifest(gen_root)) if (gen_root / "manifest.jsonl").is_file() else 0
    t0 = time.perf_counter()
    for pairs, _, _, _, k in plan.values():
        generate_candidates(
            pipeline, pairs, gen_root, k=k, seed=cfg.seed, batch_size=a.generation_batch_size,
            num_inference_steps=a.generation_steps, rank=0, world_size=1, progress=progress,
        )  # fmt: skip
    seconds = time.perf_counter() - t0
    made = len(read_manifest(gen_root)) - before
    mix = mix_training_list(
        main_root, gen_root, a.gamma, cfg.seed, subsets=subsets, gen_root_name=GEN_ROOT_NAME
    )
    mixes = {
        s: SubsetMix(s, c["n_pairs"], c["n_composites"], c["per_pair"], plan[s][4], c["added"])
        for s in subsets
        for c in [mix.counts[s]]
    }
    generation = {
        "generated": made,
        "seconds": seconds,
        "candidates_per_second": made / seconds if made and seconds > 0 else None,
        "torch_threads": torch.get_num_threads(),
    }
    return AugmentedData(main_root, gen_root, a.gamma, mixes, generation)


def table2_schedule(cfg: Config, n_base: int) -> tuple[int, int]:
    """(optimizer steps, batch size) shared by the base and augmented runs of one subset.

    Steps: ``augment.table2_steps``, else the unet loop's ``max_steps``, else its ``epochs`` over
    the base list (incomplete global batches dropped, as the loop counts them). The batch size is
    the unet loop's, cut to the base list's size when larger (smoke's two-image Hday2night), so
    that an epoch of the base list holds at least one batch.
    """
    from harmonylib.training.data_order import steps_per_epoch

    loop = cfg.train.unet.loop
    accum = loop.gradient_accumulation_steps
    batch = max(1, min(loop.batch_size, n_base // accum))
    if cfg.augment.table2_steps is not None:
        steps = cfg.augment.table2_steps
    elif loop.max_steps is not None:
        steps = loop.max_steps
    else:
        steps = loop.epochs * steps_per_epoch(n_base, batch, 1, accum)
    return int(steps), int(batch)


def table2_run_config(
    cfg: Config,
    subset: str,
    setting: str,
    *,
    steps: int,
    batch_size: int,
    gen_root: str | os.PathLike | None = None,
) -> Config:
    """The config of one Table 2 run: ``cfg`` with S's data only, forward UNet, the shared schedule.

    Args:
        subset: the one subset trained on (``data.subsets``).
        setting: ``"base"`` or ``"augmented"`` (``data.extra_roots = {"gen": gen_root}``).
        steps, batch_size: from :func:`table2_schedule` (the same for both settings).
        gen_root: the generated root (augmented only).
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {list(SETTINGS)}, got {setting!r}")
    if setting == "augmented" and gen_root is None:
        raise ValueError("the augmented run needs gen_root (generate_table2_data(...).gen_root)")
    extra = dict(cfg.data.extra_roots)
    if setting == "augmented":
        extra[GEN_ROOT_NAME] = str(resolve(gen_root))
    data = dataclasses.replace(cfg.data, subsets=(subset,), extra_roots=extra)
    rc = cfg.train.unet
    loop = dataclasses.replace(rc.loop, max_steps=int(steps), batch_size=int(batch_size))
    # init: SD-inpainting (paper) or its mini stand-in, never the adopted harmonization UNet
    unet = dataclasses.replace(rc, direction="forward", init=rc.init, adopt=None, loop=loop)
    return dataclasses.replace(cfg, data=data, train=dataclasses.replace(cfg.train, unet=unet))


@dataclass
class Table2Run:
    """One trained Table 2 model and the numbers that make the comparison fair."""

    subset: str
    setting: str
    cfg: Config
    run: Any  # harmonylib.training.runs.TrainedRun
    n_train: int  # composites in its training list
    steps: int
    batch_size: int
    seconds: float = float("nan")

    @property
    def samples_seen(self) -> int:
        """Training samples drawn: steps x batch x accumulation (one process)."""
        return self.steps * self.batch_size * self.cfg.train.unet.loop.gradient_accumulation_steps

    def summary(self) -> dict[str, Any]:
        return {
            "subset": self.subset,
            "setting": self.setting,
            "run_dir": str(self.run.run_dir),
            "config_hash": self.run.config_hash,
            "status": self.run.status,
            "n_train": self.n_train,
            "steps": self.run.steps,
            "batch_size": self.batch_size,
            "samples_seen": self.samples_seen,
            "epochs_of_list": self.samples_seen / self.n_train,
            "final_loss": self.run.final_loss,
            "seconds": self.seconds,
        }


def train_table2(
    cfg: Config,
    data: AugmentedData,
    out_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    cpu: bool = False,
) -> dict[tuple[str, str], Table2Run]:
    """Step 3: the base and augmented UNet of every subset (reused when already trained).

    Returns:
        ``{(subset, setting): Table2Run}``.

    Raises:
        RuntimeError: the two runs of a subset did not take the same number of steps.
    """
    from harmonylib.assemble import runs_root
    from harmonylib.training.recipes import train_samples
    from harmonylib.training.runs import ensure_trained

    out: dict[tuple[str, str], Table2Run] = {}
    for s, mix in data.subsets.items():
        steps, batch = table2_schedule(cfg, mix.n_composites)
        for setting in SETTINGS:
            rcfg = table2_run_config(
                cfg, s, setting, steps=steps, batch_size=batch,
                gen_root=data.gen_root if setting == "augmented" else None,
            )  # fmt: skip
            n_train = len(train_samples(rcfg))
            t0 = time.perf_counter()
            run = ensure_trained(
                rcfg,
                "unet",
                run_dir=runs_root(cfg, out_dir) / f"table2-{s}-{setting}",
                progress=progress,
                cpu=cpu,
            )
            out[(s, setting)] = Table2Run(
                s, setting, rcfg, run, n_train, steps, batch, time.perf_counter() - t0
            )
        if out[(s, "base")].run.steps != out[(s, "augmented")].run.steps:
            raise RuntimeError(f"{s}: base and augmented runs took different numbers of steps")
    return out


def runs_frame(runs: Mapping[tuple[str, str], Table2Run]) -> pd.DataFrame:
    """One row per run: list size, steps, batch, samples seen, epochs of its list, loss, time."""
    return pd.DataFrame([r.summary() for r in runs.values()])


def table2_pipeline(run: Table2Run):
    """A forward ``DiffHarmonyPipeline`` of one run: its EMA UNet, decoded by the plain base VAE."""
    from harmonylib.assemble import base_vae, unet_prompt_embeds
    from harmonylib.models.scheduler import make_scheduler
    from harmonylib.models.unet import EmptyPromptEmbedding
    from harmonylib.pipeline import DiffHarmonyPipeline

    pipe = DiffHarmonyPipeline(
        vae=base_vae(run.cfg, "unet").eval(),  # the VAE the UNet trained on; plain decode (§5.3.2)
        unet=run.run.load_model(ema=True).eval(),
        scheduler=make_scheduler(prediction_type=run.cfg.train.unet.prediction_type),
        empty_prompt_embedding=EmptyPromptEmbedding.from_tensor(unet_prompt_embeds(run.cfg)),
        direction="forward",
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def inference_settings(cfg: Config, run: Table2Run):
    """Table 2's inference: ``table2_inference_size`` px, square, 5 steps, resized to 256."""
    from harmonylib.inference import InferenceSettings

    return InferenceSettings(
        size=cfg.augment.table2_inference_size,
        size_mode="square",
        steps=5,  # §5.2
        output_resolution=256,
        seed=cfg.seed,
        model=f"table2:{run.subset}:{run.setting}:{run.run.config_hash}",
    )


def evaluate_table2(
    cfg: Config,
    runs: Mapping[tuple[str, str], Table2Run],
    out_dir: str | os.PathLike | None = None,
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """Step 4: predict each subset's original test split with its two models, score, keep CSVs.

    Returns:
        Per-image scores of every run (``evaluate_predictions`` columns plus ``setting`` and
        ``run``), also written to ``tables/per_image/table2_<S>_<setting>.csv``.
    """
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.evaluation import GroundTruthCache, evaluate_predictions
    from harmonylib.inference import predict_split

    root_out = results_root(cfg, out_dir)
    main_root = ensure_dataset(cfg)
    cache = GroundTruthCache(cache_dir=root_out / "cache")
    frames = []
    for (s, setting), run in runs.items():
        test = _subset_samples(main_root, "test", s)
        settings = inference_settings(cfg, run)
        preds = root_out / "table2" / "predictions" / f"{s}-{setting}-{settings.hash()}"
        predict_split(
            table2_pipeline(run),
            test,
            preds,
            settings,
            batch_size=batch_size,
            rank=0,
            world_size=1,
            progress=progress,
        )
        df = evaluate_predictions(test, preds, cfg.eval, cache=cache, progress=progress)
        df.insert(0, "setting", setting)
        df.insert(0, "run", f"table2-{s}-{setting}")
        with atomic_path(root_out / "tables" / "per_image" / f"table2_{s}_{setting}.csv") as tmp:
            df.to_csv(tmp, index=False)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def candidate_fidelity(data: AugmentedData, progress: bool = False) -> pd.DataFrame:
    """Original training composites against the generated ones mixed in, per subset.

    One row per (subset, source): the means of :func:`harmonylib.augment.foreground_difference`
    (fMSE, colour shift, and the residual fMSE that no per-channel affine colour map explains).
    The paper reads Table 2 as evidence that the inverse model makes good composites; this says
    whether the candidates differ from their reals the way the dataset's composites do (colour and
    light) or also in other ways (blur, artefacts) that a harmonizer would then learn to undo.
    """
    from harmonylib.augment import FIDELITY_COLUMNS
    from harmonylib.augment import candidate_fidelity as per_image
    from harmonylib.data.iharmony4 import read_split

    samples = read_split(
        {"main": data.main_root, GEN_ROOT_NAME: data.gen_root}, "train", subsets=list(data.subsets)
    )
    df = per_image(samples, progress=progress)
    df["source"] = np.where(df["root_name"] == GEN_ROOT_NAME, "generated", "original")
    out = df.groupby(["subset", "source"], sort=False)[list(FIDELITY_COLUMNS)].mean().reset_index()
    out.insert(2, "n", df.groupby(["subset", "source"], sort=False).size().to_numpy())
    return out


def write_candidate_fidelity(cfg: Config, data: AugmentedData, out_dir: str | os.PathLike | None = None,
                             progress: bool = False) -> tuple[pd.DataFrame, Path]:  # fmt: skip
    """:func:`candidate_fidelity` to ``<results>/tables/table2_candidates.csv`` (atomic)."""
    from harmonylib.io import atomic_write_text

    df = candidate_fidelity(data, progress=progress)
    path = results_root(cfg, out_dir) / "tables" / "table2_candidates.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, df.to_csv(index=False, float_format="%.4f"))
    return df, path


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


def measured_table2(per_image: pd.DataFrame) -> pd.DataFrame:
    """Tidy measured cells (``subset``, ``setting``, ``metric``, ``value``) from per-image scores."""
    from harmonylib.evaluation import aggregate
    from harmonylib.tables import measured_from_summary

    parts = []
    for (setting, subset), g in per_image.groupby(["setting", "subset"], sort=False):
        summary = aggregate(g)
        parts.append(measured_from_summary(summary[summary["subset"] == subset], setting=setting))
    return pd.concat(parts, ignore_index=True)


def render_table2(per_image: pd.DataFrame) -> pd.DataFrame:
    """Table 2: measured beside reported (``tables.render_table(..., 2)``)."""
    from harmonylib.tables import render_table

    return render_table(measured_table2(per_image), 2)


def table2_caption(cfg: Config, runs: Mapping[tuple[str, str], Table2Run], data: AugmentedData) -> str:
    """The paper's caption plus what was measured, on which data, with which schedule."""
    from harmonylib.tables import SPECS

    parts = []
    for s, m in data.subsets.items():
        r = runs[(s, "base")]
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
        + table2_training_note(cfg)
        + f" Inference at {size} px (square), 5 steps, plain VAE decode, resized to 256 and scored with the"
        " authors' protocol on the subset's original test split."
    )


def table2_training_note(cfg: Config) -> str:
    """The caption sentence on how Table 2's UNets were trained, read from the config: the start
    weights (``train.unet.init``), the step count (``augment.table2_steps``) and the seeds."""
    init = cfg.train.unet.init
    start = f"from {init} (train.unet.init)" if init else f"from random {cfg.train.unet.arch} weights"
    steps = cfg.augment.table2_steps
    if steps is not None:
        length = f"{steps} optimizer steps each (augment.table2_steps)"
    elif cfg.train.unet.loop.max_steps is not None:
        length = f"{cfg.train.unet.loop.max_steps} optimizer steps each (train.unet.loop.max_steps)"
    else:
        length = f"{cfg.train.unet.loop.epochs} epochs of the base list each (train.unet.loop.epochs)"
    return (
        f"Both UNets of a subset are trained {start}, never from the adopted harmonization UNet, for "
        f"{length}; one training seed ({cfg.seed}): each UNet is trained once with it and its test "
        "predictions are sampled with it, so a cell is one run, not a mean over seeds."
    )


def write_table2(
    cfg: Config,
    table: pd.DataFrame,
    runs: Mapping[tuple[str, str], Table2Run],
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
        seeds={"seed": cfg.seed},
        files=files,
        runs=runs_frame(runs).to_dict(orient="records"),
        mix={s: dataclasses.asdict(m) for s, m in data.subsets.items()},
        generation={**data.generation, "gen_root": str(data.gen_root)},
        inference={k: dataclasses.asdict(inference_settings(cfg, r)) for k, r in _by_name(runs).items()},
        composite=None if composite is None else composite.to_dict(orient="records"),
        per_image={k: f"per_image/table2_{r.subset}_{r.setting}.csv" for k, r in _by_name(runs).items()},
    )


def _by_name(runs: Mapping[tuple[str, str], Table2Run]) -> dict[str, Table2Run]:
    return {f"{s}-{setting}": r for (s, setting), r in runs.items()}


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


# ================================================================================================
# Human Harmony
# ================================================================================================


def human_harmony_root(cfg: Config, out_dir: str | os.PathLike | None = None) -> Path:
    """Where the Human Harmony dataset of ``cfg`` lies: ``<results root>/data/HumanHarmony``.

    ``read_split(human_harmony_root(cfg, out_dir), "test")`` reads it (notebooks 06 and 09);
    :func:`ensure_human_harmony` builds it when absent.
    """
    return results_root(cfg, out_dir) / "data" / "HumanHarmony"


def imaterialist_source(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    imaterialist_root: str | os.PathLike | None = None,
) -> Path:
    """The iMaterialist-Fashion-2020 release to build from.

    Args:
        imaterialist_root: the unpacked release (``train.csv``, ``label_descriptions.json``,
            ``train/``). Required for profiles on real data (``data.kind != "builtin"``).

    Returns:
        ``imaterialist_root``, or (smoke, mini) the generated stand-in at
        ``<results root>/data/imaterialist-fixture`` (``augment.human_harmony_fixture_images``
        images), written when absent or made with other settings.

    Raises:
        FileNotFoundError: no release given on a real-data profile, or it lacks ``train.csv``.
    """
    from harmonylib.data.imaterialist_fixture import build_imaterialist_fixture

    if imaterialist_root:
        src = resolve(imaterialist_root)
        if not (src / "train.csv").is_file():
            raise FileNotFoundError(
                f"{src}: no train.csv; unpack imaterialist-fashion-2020-fgvc7 "
                "(https://www.kaggle.com/c/imaterialist-fashion-2020-fgvc7/data) and pass its folder"
            )
        return src
    if cfg.data.kind != "builtin":
        raise FileNotFoundError(
            f"profile {cfg.profile!r} builds Human Harmony from the real imaterialist-fashion-2020-fgvc7 "
            "release: download it and pass imaterialist_root (e.g. `-p imaterialist_root /path/to/it`)"
        )
    a = cfg.augment
    args = {
        "n_images": a.human_harmony_fixture_images,
        "seed": cfg.seed,
        "image_size": a.human_harmony_fixture_size,
    }
    src = results_root(cfg, out_dir) / "data" / "imaterialist-fixture"
    marker = src / "FIXTURE.json"
    if not (marker.is_file() and json.loads(marker.read_text()).get("args") == args):
        info = build_imaterialist_fixture(src, **args)
        atomic_write_json(
            marker, {"args": args, "info": {k: v for k, v in info.items() if not k.endswith("_ids")}}
        )
    return src


def describe_filter(summary: Mapping[str, Any]) -> str:
    """The product-only rule and its effect, from a ``prepare_human_harmony`` summary."""
    rule = summary["rule"]
    return (
        f"rule: keep an image whose segments cover >= {rule['min_body_regions']} body regions of "
        f"{list(rule['body_supercategories'])}\n"
        f"kept {summary['n_kept']} of {summary['n_images']} images; dropped {summary['n_dropped_product_only']} "
        f"product-only images (e.g. {summary['dropped_product_only'][:3]})\n"
        f"split: train {summary['split']['train']}, test {summary['split']['test']} "
        f"(paper: {summary['paper']['train']} / {summary['paper']['test']})"
    )


def generate_human_harmony_candidates(
    cfg: Config, root: str | os.PathLike, pipeline: Any, *, progress: bool = True
) -> dict[str, Any]:
    """Stage 2 with ``augment.human_harmony_k`` candidates per pair, timed.

    Returns:
        ``{"k", "pairs", "generated", "seconds", "candidates_per_second", "torch_threads"}``
        (``generated`` counts candidates made by this call; a resumed build makes fewer).
    """
    from harmonylib.augment import read_manifest
    from harmonylib.data.human_harmony import CANDIDATES_DIR, read_pairs
    from harmonylib.human_harmony_build import generate_human_harmony

    _check_inverse(pipeline)
    root = Path(root)
    cand = root / CANDIDATES_DIR
    before = len(read_manifest(cand)) if (cand / "manifest.jsonl").is_file() else 0
    a = cfg.augment
    t0 = time.perf_counter()
    generate_human_harmony(
        root, pipeline, k=a.human_harmony_k, seed=cfg.seed, batch_size=a.generation_batch_size,
        num_inference_steps=a.generation_steps, rank=0, world_size=1, progress=progress,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    made = len(read_manifest(cand)) - before
    return {
        "k": a.human_harmony_k,
        "pairs": len(read_pairs(root)),
        "generated": made,
        "seconds": seconds,
        "candidates_per_second": made / seconds if made and seconds > 0 else None,
        "torch_threads": torch.get_num_threads(),
    }


def harmony_classifier(cfg: Config, out_dir: str | os.PathLike | None = None, *, progress: bool = True):
    """The harmony classifier (``ensure_trained(cfg, "classifier")``) in ``eval()`` mode, and its run."""
    from harmonylib.assemble import run_dir_for
    from harmonylib.training.runs import ensure_trained

    run = ensure_trained(
        cfg,
        "classifier",
        run_dir=run_dir_for(cfg, "classifier", out_dir) if out_dir else None,
        progress=progress,
    )
    return run.load_model(ema=True).eval(), run


def write_fg_ratio_stats(root: str | os.PathLike) -> dict[str, Path]:
    """The foreground-ratio mix of a built Human Harmony root, over ``metrics.FG_BINS``.

    Writes ``human_harmony_fg_ratio_stats.csv`` (per split and bin: ``n``, ``fraction``, and for the
    test split the paper's Table 3 ``N_samples`` 26 / 323 / 2,597 with their fractions) and
    ``human_harmony_fg_ratios.csv`` (one row per pair: ``dataset``, ``split``, ``image``,
    ``fg_ratio``, readable by ``figures.read_fg_ratio_csv``). Ratios are the evaluator's (dither,
    256²), from ``human_harmony_pairs.csv``.
    """
    from harmonylib.data.human_harmony import PAPER_TEST_FG_MIX, read_pairs

    root = Path(root)
    pairs = read_pairs(root)
    rows = []
    paper_total = sum(PAPER_TEST_FG_MIX)
    for split in ("train", "test", "all"):
        sel = pairs if split == "all" else pairs[pairs["split"] == split]
        total = len(sel)
        for b, label in enumerate(metrics.FG_BIN_LABELS):
            n = int((sel["fg_bin"] == b).sum())
            rows.append(
                {
                    "split": split,
                    "fg_bin": label,
                    "n": n,
                    "fraction": n / total if total else float("nan"),
                    "paper_n": PAPER_TEST_FG_MIX[b] if split == "test" else None,
                    "paper_fraction": PAPER_TEST_FG_MIX[b] / paper_total if split == "test" else None,
                }
            )
    stats = pd.DataFrame(rows)
    ratios = pd.DataFrame(
        {
            "dataset": "Human Harmony",
            "split": pairs["split"],
            "image": pairs["image_id"],
            "fg_ratio": pairs["fg_ratio"].astype(np.float64),
        }
    )
    paths = {"stats": root / FG_RATIO_STATS_FILE, "ratios": root / FG_RATIOS_FILE}
    with atomic_path(paths["stats"]) as tmp:
        stats.to_csv(tmp, index=False)
    with atomic_path(paths["ratios"]) as tmp:
        ratios.to_csv(tmp, index=False)
    return paths


def read_fg_ratio_stats(root: str | os.PathLike) -> pd.DataFrame:
    """``human_harmony_fg_ratio_stats.csv`` of a built root."""
    return pd.read_csv(Path(root) / FG_RATIO_STATS_FILE)


def _build_key(cfg: Config, source: Path) -> dict[str, Any]:
    return {"profile": cfg.profile, "seed": cfg.seed, "k": cfg.augment.human_harmony_k, "source": str(source)}


def mark_human_harmony_done(cfg: Config, root: str | os.PathLike, source: Path, **record: Any) -> Path:
    """Write ``BUILD_DONE.json`` (last): what the build used, so :func:`ensure_human_harmony` can reuse it."""
    return _build_cache(cfg, root, source).mark_done(record)


def is_human_harmony_built(cfg: Config, root: str | os.PathLike, source: Path) -> bool:
    """Whether ``root`` holds a finished build of this profile, seed, K and source."""
    return _build_cache(cfg, root, source).is_done()


def _build_cache(cfg: Config, root: str | os.PathLike, source: Path):
    """The built root as a :class:`~harmonylib.cache.CacheFolder`; ``BUILD_DONE.json`` holds the key.

    A root built with another key is rebuilt in place (stage 1 rewrites the pairs, stage 3 replaces
    stale composites), so its done marker is not a foreign-key refusal.
    """
    from harmonylib.cache import CacheFolder, Marker

    return CacheFolder(Path(root), _build_key(cfg, source), done=Marker(HUMAN_HARMONY_DONE, "key"),
                       what="a Human Harmony build")  # fmt: skip


def ensure_human_harmony(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    imaterialist_root: str | os.PathLike | None = None,
    *,
    progress: bool = False,
) -> Path:
    """The Human Harmony root of ``cfg``, built first when absent (notebook 11's steps in one call).

    Args:
        cfg: the resolved config.
        out_dir: the results root (default ``results/<profile>``).
        imaterialist_root: the real release (needed on real-data profiles).
        progress: progress bars.

    Returns:
        :func:`human_harmony_root`; ``read_split(it, "train" | "test")`` reads it.
    """
    from harmonylib.assemble import assemble_pipeline
    from harmonylib.data.human_harmony import prepare_human_harmony
    from harmonylib.human_harmony_build import select_human_harmony

    source = imaterialist_source(cfg, out_dir, imaterialist_root)
    root = human_harmony_root(cfg, out_dir)
    if is_human_harmony_built(cfg, root, source):
        return root
    summary = prepare_human_harmony(source, root, seed=cfg.seed, progress=progress)
    inverse = assemble_pipeline(cfg, "inverse", harmony_vae=True, out_dir=out_dir, progress=progress)
    gen = generate_human_harmony_candidates(cfg, root, inverse, progress=progress)
    classifier, clf_run = harmony_classifier(cfg, out_dir, progress=progress)
    selected = select_human_harmony(root, classifier, progress=progress)
    write_fg_ratio_stats(root)
    mark_human_harmony_done(
        cfg, root, source, n_kept=summary["n_kept"], selection=selected["selection"], generation=gen,
        classifier={"run_dir": str(clf_run.run_dir), "config_hash": clf_run.config_hash},
        inverse=getattr(inverse, "assembly_sources", {}),
    )  # fmt: skip
    return root


__all__ = [
    "SETTINGS",
    "AugmentedData",
    "SubsetMix",
    "Table2Run",
    "composite_scores",
    "describe_filter",
    "ensure_human_harmony",
    "evaluate_table2",
    "generate_human_harmony_candidates",
    "generate_table2_data",
    "harmony_classifier",
    "human_harmony_root",
    "imaterialist_source",
    "is_human_harmony_built",
    "mark_human_harmony_done",
    "measured_table2",
    "read_fg_ratio_stats",
    "render_table2",
    "results_root",
    "runs_frame",
    "table2_caption",
    "table2_findings",
    "table2_pipeline",
    "table2_run_config",
    "table2_schedule",
    "table2_training_note",
    "train_table2",
    "write_fg_ratio_stats",
    "write_table2",
]

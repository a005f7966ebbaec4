"""The paper's experiments, one function per table or figure; the notebooks only call these.

Each function trains what it needs (``ensure_trained``: a finished run is reused), makes the
predictions it scores (``predict_split``: cached by the settings hash, so finished inference is
skipped; sharded under ``accelerate launch``), writes one per-image metric CSV per (method,
dataset, seed) under ``<out>/tables/per_image/`` (so every table can be re-aggregated without
re-running inference), writes the table with :func:`harmonylib.tables.write_table` (measured
beside reported, delta, provenance), and writes its claim measurements to
``<out>/claims/<experiment>.csv`` (and their per-image values, with each composite's source photo,
to ``<out>/claims/per_image/<experiment>.csv``, for the claims' photo bootstrap);
:func:`update_claims` merges the measurements into ``<out>/claims_measurements.csv`` and
regenerates ``<out>/claims.md``.

Inference settings (paper §5.2, §5.3.3, §5.4; one place, :func:`inference_settings`):

* square squash to R_inf, 5 Euler-ancestral steps, outputs resized to 256, background not pasted
  (the evaluator pastes the ground-truth background, as the authors);
* R_inf: Table 1 / Table 3 / Table 4 "1024" use the *high* size, Table 4 "512" and Table 5 the
  *low* size: the ``r_inf_low`` / ``r_inf_high`` rungs of the profile's resolution ladder
  (``cfg.ladder``, :mod:`harmonylib.ladder`; paper 512 / 1024, mini 64 / 128 through an f4 VAE, the
  same latent values per content value) -- see :func:`size_note`, quoted in every caption;
* Table 1 "Ours" = Table 4 "1024 ✓" and Table 5 E_c+D/zero = Table 4 "512 ✓": the same settings
  hash, so the same prediction folder is scored once per table, never re-made.

Seeds. ``seeds`` are *training* seeds: for each seed ``s`` the Harmony-VAE (every Table 5
variant) and the pixel baseline are trained with ``cfg.seed = s``, and the test predictions of
that arm are sampled with seed ``s``. The DiffHarmony UNet is the profile's (adopted, or trained
once at the base seed): the paper adopts it (§5.2). The plain-VAE arms (DiffHarmony) are sampled
with the same seed ``s``, so each (plain, Harmony-VAE) pair shares its latents and differs only in
the decoder; in the claims CSV they are recorded under training seed ``s`` as the measurement
paired with that seed. A table cell is the mean over seeds; the per-seed values are in the claims
CSV and the per-image CSVs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmonylib import claims as _claims
from harmonylib.claim_rule import default_seeds  # noqa: F401  (notebooks call experiments.default_seeds)
from harmonylib import tables
from harmonylib.config import PAPER_VARIANT, Config, load_config, to_dict, with_seed  # noqa: F401
from harmonylib.evaluation import GroundTruthCache, aggregate, aggregate_by_fg_bins, evaluate_predictions
from harmonylib.inference import InferenceSettings, is_complete, predict_split
from harmonylib.io import atomic_path, atomic_save_image, atomic_write_json
from harmonylib.paths import relative_to_home, resolve, results_dir

STEPS = 5  # paper §5.2: 5 Euler-ancestral steps
IHARMONY4 = "iHarmony4"
HUMAN_HARMONY = "Human Harmony"
PIXEL_ARM = "PixelHarmonizer"  # the claims' name of the pixel baseline (harmonylib.claims.ARMS)
CLAIMS_DIR = _claims.CLAIMS_DIR
MEASUREMENTS_FILE = _claims.MEASUREMENTS_FILE
# Table 5 cell -> Harmony-VAE variant (HarmonyVAETrainConfig.variant)
TABLE5_CELLS = {
    ("E_c", "zero"): "ec_zero",
    ("E_c", "random"): "ec_random",
    ("E_c+D", "zero"): "ecd_zero",
    ("E_c+D", "random"): "ecd_random",
}


# --------------------------------------------------------------------------------------------
# 1. Setup: config, output folder, data
# --------------------------------------------------------------------------------------------


@dataclass
class Experiment:
    """What every experiment function needs: the config, where outputs go, the test split."""

    cfg: Config
    out: Path  # results root (results/<profile> by default)
    data_root: Path
    samples: list  # the iHarmony4-layout test split
    cache: GroundTruthCache
    progress: bool = True
    _components: dict[str, Any] | None = field(default=None, repr=False)
    _unet_key: str | None = field(default=None, repr=False)
    _vae_key: str | None = field(default=None, repr=False)
    _clusters: tuple[dict[str, str], str] | None = field(default=None, repr=False)
    split: str = "test"  # the split scored (validation while settings are chosen)

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def tables_dir(self) -> Path:
        return self.out / "tables"

    @property
    def per_image_dir(self) -> Path:
        return self.out / "tables" / "per_image"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    @property
    def predictions_dir(self) -> Path:
        return self.out / "predictions"


def setup(
    profile: str = "mini",
    data_root: str = "",
    out_dir: str = "",
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    split: str = "test",
    progress: bool = True,
) -> Experiment:
    """Load the profile, build (built-in) or check the data, read the test split.

    Args:
        profile: ``smoke``, ``mini``, ``paper`` or a YAML path.
        data_root: the dataset root; empty: the profile's ``data.root``.
        out_dir: the results root; empty: ``results/<profile>``.
        seed: the base seed (``cfg.seed``): the UNet and refinement runs, and sampling by default.
        overrides: more config overrides (dotted keys).
        split: the split scored.
        progress: progress bars.
    """
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.data.iharmony4 import read_split

    ov = {"seed": seed, **({"data.root": data_root} if data_root else {}), **dict(overrides or {})}
    cfg = load_config(profile, ov)
    out = resolve(out_dir) if out_dir else results_dir(cfg.profile)
    root = ensure_dataset(cfg, progress=progress)
    samples = read_split(root, split)
    return Experiment(
        cfg, out, root, samples, GroundTruthCache(cache_dir=out / "cache"), progress, split=split
    )


def inference_sizes(cfg: Config) -> dict[str, int]:
    """``{"low": R_inf 512's rung, "high": R_inf 1024's rung}`` of the profile's ladder (paper: 512, 1024)."""
    return {"low": int(cfg.ladder.r_inf_low), "high": int(cfg.ladder.r_inf_high)}


def size_note(cfg: Config) -> str:
    """The caption sentence that states the profile's resolution ladder (:mod:`harmonylib.ladder`)."""
    from harmonylib.ladder import ladder_note

    return ladder_note(cfg)


def data_note(exp: Experiment) -> str:
    if exp.cfg.data.kind == "builtin":
        return (
            f"Measured on the {exp.cfg.profile} profile's built-in {exp.split} split ({len(exp.samples)} "
            "composites made from real photographs held out from training), so deltas compare different data "
            "and model scales. The built-in data's recolouring strengths were calibrated so that its Composite "
            "row matches the paper's: the Composite delta is by construction, not a finding."
        )
    return f"Measured on the iHarmony4 {exp.split} split ({len(exp.samples)} composites)."


# --------------------------------------------------------------------------------------------
# 2. Trained models
# --------------------------------------------------------------------------------------------


def _run_dir(exp: Experiment, cfg: Config, recipe: str) -> Path:
    """``<out>/runs/<run name>``, with ``-seed<k>`` for seeds other than the base seed."""
    from harmonylib.training.runs import run_name

    name = run_name(cfg, recipe)
    return exp.runs / (name if cfg.seed == exp.cfg.seed else f"{name}-seed{cfg.seed}")


def harmony_vae_run(exp: Experiment, seed: int, variant: str = PAPER_VARIANT):
    """The finished Harmony-VAE run of ``variant`` trained with ``seed`` (trained if missing)."""
    from harmonylib.release import install_released
    from harmonylib.training.runs import ensure_trained

    cfg = with_seed(exp.cfg, seed, variant)
    run_dir = _run_dir(exp, cfg, "harmony_vae")
    # a released checkpoint of exactly this run (same run hash) is used as it is, as users use the
    # authors' released weights; `make retrain` re-makes it and checks its hash
    install_released(cfg, run_dir)
    return ensure_trained(cfg, "harmony_vae", run_dir=run_dir, progress=exp.progress)


def pixel_baseline_run(exp: Experiment, seed: int):
    """The finished pixel-baseline run (Table 3's stand-in for HDNet_512) trained with ``seed``."""
    from harmonylib.training.runs import ensure_trained

    cfg = with_seed(exp.cfg, seed)
    return ensure_trained(
        cfg, "pixel_baseline", run_dir=_run_dir(exp, cfg, "pixel_baseline"), progress=exp.progress
    )


def base_components(exp: Experiment) -> dict[str, Any]:
    """DiffHarmony's components (UNet, base VAE, scheduler, empty prompt), assembled once per experiment."""
    if exp._components is None:
        from harmonylib.assemble import assemble_components

        asm = assemble_components(
            exp.cfg, "forward", harmony_vae=False, out_dir=exp.out, progress=exp.progress
        )
        exp._components = asm.components
        exp._unet_key = _short_hash(asm.sources.get("unet"))
        exp._vae_key = _short_hash(asm.sources.get("vae"))
    return exp._components


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def unet_key(exp: Experiment) -> str:
    base_components(exp)
    return str(exp._unet_key)


def make_pipeline(exp: Experiment, vae: Any = None, refinement_unet: Any = None):
    """A DiffHarmonyPipeline on the profile's UNet: ``vae`` None = the base VAE (DiffHarmony)."""
    from harmonylib.pipeline import DiffHarmonyPipeline

    comp = dict(base_components(exp))
    if vae is not None:
        comp["vae"] = vae.eval()
    pipe = DiffHarmonyPipeline(**comp, refinement_unet=refinement_unet, direction="forward")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stage1_callable(pipe: Any, steps: int = STEPS):
    """``stage1(composite, mask, generators)`` for the refinement cache: the plain pipeline, no paste.

    composite (B, 3, S, S) in [-1, 1], mask (B, 1, S, S) in {0, 1}; returns (B, 3, S, S) in [-1, 1].
    """

    def stage1(composite, mask, generators):
        size = int(composite.shape[-1])
        images = ((composite.float() + 1.0) / 2.0).clamp(0, 1)  # (B, 3, S, S) in [0, 1]
        out = pipe(
            images,
            mask.float(),
            num_inference_steps=steps,
            generator=list(generators),
            size_mode="square",
            size=size,
            keep_background=False,
            resize_to_input=False,
            refine=False,
            output_type="pt",
        ).images  # (B, 3, S, S) in [0, 1]
        return out * 2.0 - 1.0

    return stage1


def refinement_run(exp: Experiment):
    """The refinement UNet trained on plain DiffHarmony outputs at the low size (Table 4, grey rows)."""
    from harmonylib.assemble import run_dir_for
    from harmonylib.training.runs import ensure_trained

    rc = exp.cfg.train.refinement
    key = f"diffharmony-{unet_key(exp)}-{rc.stage1_resolution}px-{STEPS}steps"
    return ensure_trained(
        exp.cfg,
        "refinement",
        run_dir=run_dir_for(exp.cfg, "refinement", exp.out),
        stage1=stage1_callable(make_pipeline(exp)),
        stage1_key=key,
        progress=exp.progress,
    )


# --------------------------------------------------------------------------------------------
# 3. Predictions (cached) and scores (per-image CSVs)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One method to predict with.

    Attributes:
        method: ``"diffharmony"`` (plain VAE), ``"diffharmony++"`` (Harmony-VAE), ``"pixel"``
            (the pixel baseline), ``"composite"`` (the composites themselves), ``"folder"``, or
            ``"ceiling"`` / ``"ceiling++"`` (the real image through the plain VAE / the
            Harmony-VAE: what a perfect latent would score, :mod:`harmonylib.ceiling`).
        level: ``"low"`` or ``"high"`` inference size (see :func:`inference_sizes`).
        seed: training seed of the Harmony-VAE / pixel baseline, and the sampling seed.
        variant: the Harmony-VAE variant (Table 5).
        refine: apply the refinement UNet after decoding (Table 4 grey rows).
        folder: the predictions folder (``method="folder"``).
    """

    method: str
    level: str = "high"
    seed: int = 0
    variant: str = PAPER_VARIANT
    refine: bool = False
    folder: str = ""

    def label(self) -> str:
        if self.method == "composite":
            return "composite"
        if self.method == "folder":
            return "folder-" + _short_hash(str(self.folder))[:8]
        parts = [self.method.replace("+", "p"), self.level]
        if self.method in ("diffharmony++", "ceiling++"):
            parts.append(self.variant)
        if self.refine:
            parts.append("refine")
        parts.append(f"seed{self.seed}")
        return "_".join(parts)


class DivergedRun(RuntimeError):
    """The Harmony-VAE run of an arm diverged (a non-finite loss was logged): no predictions."""


def inference_settings(exp: Experiment, arm: Arm, model: str) -> InferenceSettings:
    """The paper's settings for ``arm`` (square squash, 5 steps, 256 output), ``model`` in the hash."""
    return InferenceSettings(
        size=inference_sizes(exp.cfg)[arm.level],
        size_mode="square",
        steps=STEPS,
        output_resolution=exp.cfg.eval.resolution,
        keep_background=False,
        refine=arm.refine,
        seed=int(arm.seed),
        direction="forward",
        model=model,
    )


def predictions_for(exp: Experiment, arm: Arm, samples: Sequence | None = None, dataset: str = IHARMONY4):
    """The predictions of ``arm`` on ``samples``: a folder of ``<stem>.png``, or a list of paths.

    Trains what the arm needs, then predicts only what is missing (``predict_split``); a complete
    folder made with the same settings is returned without building a pipeline.

    Raises:
        DivergedRun: the arm's Harmony-VAE run diverged.
    """
    samples = exp.samples if samples is None else samples
    if arm.method == "composite":
        return [s.composite for s in samples]
    if arm.method == "folder":
        return resolve(arm.folder)
    ds = dataset.replace(" ", "")
    if arm.method == "pixel":
        run = pixel_baseline_run(exp, arm.seed)
        size = inference_sizes(exp.cfg)[arm.level]
        key = {"run": run.config_hash, "size": size, "out": exp.cfg.eval.resolution, "n": len(samples)}
        folder = exp.predictions_dir / f"{ds}-{arm.label()}-{_short_hash(key)}"
        return write_pixel_predictions(run, samples, folder, size, exp.cfg.eval.resolution, key, exp.progress)

    if arm.method in CEILINGS:
        return ceiling_predictions(exp, arm, samples, ds)

    parts = {"unet": unet_key(exp)}
    hvae = ref = None
    if arm.method == "diffharmony++":
        run = harmony_vae_run(exp, arm.seed, arm.variant)
        if run.diverged:
            raise DivergedRun(f"{run.run_dir}: the Harmony-VAE run diverged")
        parts["harmony_vae"] = run.config_hash
        hvae = run
    elif arm.method != "diffharmony":
        raise ValueError(
            f"unknown method {arm.method!r}; allowed: diffharmony, diffharmony++, pixel, composite, folder, "
            + ", ".join(CEILINGS)
        )
    if arm.refine:
        ref = refinement_run(exp)
        parts["refinement"] = ref.config_hash
    settings = inference_settings(exp, arm, json.dumps(parts, sort_keys=True))
    folder = exp.predictions_dir / f"{ds}-{arm.label()}-{settings.hash()}"
    if is_complete(folder, settings):
        return folder
    pipe = make_pipeline(
        exp,
        vae=hvae.load_model(ema=True) if hvae is not None else None,
        refinement_unet=ref.load_model(ema=True).eval() if ref is not None else None,
    )
    return predict_split(pipe, samples, folder, settings, progress=exp.progress)


CEILINGS = {"ceiling": "VAE ceiling", "ceiling++": "Harmony-VAE ceiling"}  # Arm method -> row name


def ceiling_predictions(exp: Experiment, arm: Arm, samples: Sequence, ds: str) -> Path:
    """The autoencoder ceiling of ``arm`` (``ceiling``: base VAE; ``ceiling++``: + Harmony-VAE).

    Raises:
        DivergedRun: the Harmony-VAE run of a ``ceiling++`` arm diverged.
    """
    from harmonylib.ceiling import write_ceiling_predictions

    vae = base_components(exp)["vae"]
    size = inference_sizes(exp.cfg)[arm.level]
    key: dict[str, Any] = {
        "vae": exp._vae_key,
        "size": size,
        "out": exp.cfg.eval.resolution,
        "n": len(samples),
    }
    hvae = None
    if arm.method == "ceiling++":
        run = harmony_vae_run(exp, arm.seed, arm.variant)
        if run.diverged:
            raise DivergedRun(f"{run.run_dir}: the Harmony-VAE run diverged")
        key["harmony_vae"] = run.config_hash
        hvae = run.load_model(ema=True).eval()
    folder = exp.predictions_dir / f"{ds}-{arm.label()}-{_short_hash(key)}"
    return write_ceiling_predictions(
        samples, folder, vae, size, exp.cfg.eval.resolution, key, harmony_vae=hvae, progress=exp.progress
    )


def write_pixel_predictions(
    run: Any,
    samples: Sequence,
    folder: Path,
    size: int,
    out_res: int | None,
    key: Mapping,
    progress: bool = False,
) -> Path:
    """``<folder>/<stem>.png`` of the pixel baseline at a square ``size``, resized to ``out_res``; resumable."""
    from PIL import Image

    from harmonylib.cache import CacheFolder
    from harmonylib.models.pixel_baseline import PixelHarmonizer, harmonize_pixel

    cache = CacheFolder(folder, dict(key), what="pixel-baseline predictions")
    if cache.is_done():
        return folder
    cache.open()
    model = PixelHarmonizer.from_pretrained(run.weights_dir(ema=True)).eval()
    todo = [s for s in samples if not (folder / f"{s.name}.png").is_file()]
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(todo), 16), desc=f"predict {folder.name}", disable=not progress):
        batch = todo[start : start + 16]
        outs = harmonize_pixel(model, [s.composite for s in batch], [s.mask for s in batch], size)
        for s, img in zip(batch, outs, strict=True):
            if out_res is not None:
                img = img.resize((out_res, out_res), Image.BILINEAR)
            atomic_save_image(folder / f"{s.name}.png", img)
    cache.mark_done()
    return folder


def score(
    exp: Experiment,
    arm: Arm,
    table: str,
    name: str,
    samples: Sequence | None = None,
    dataset: str = IHARMONY4,
) -> pd.DataFrame:
    """Per-image metrics of ``arm`` (predictions made if missing), also written as a CSV.

    The CSV is ``<out>/tables/per_image/<table>_<dataset>_<name>_<arm label>.csv`` (columns of
    :func:`harmonylib.evaluation.evaluate_predictions` plus ``predictions``).
    """
    samples = exp.samples if samples is None else samples
    preds = predictions_for(exp, arm, samples, dataset)
    df = evaluate_predictions(samples, preds, exp.cfg.eval, cache=exp.cache, progress=exp.progress)
    # relative to the home: the committed CSV must not depend on where the clone lies
    df["predictions"] = relative_to_home(preds) if isinstance(preds, (str, os.PathLike)) else "<composites>"
    slug = f"{table}_{dataset.replace(' ', '')}_{name}_{arm.label()}".replace(" ", "_").replace("/", "-")
    with atomic_path(exp.per_image_dir / f"{slug}.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df


def mean_summary(frames: Sequence[pd.DataFrame], by_bins: bool = False) -> pd.DataFrame:
    """Mean over seeds of the per-seed aggregates (``aggregate`` or ``aggregate_by_fg_bins``)."""
    aggs = [aggregate_by_fg_bins(f) if by_bins else aggregate(f) for f in frames]
    keys = ["subset", "fg_bin"] if by_bins else ["subset"]
    cat = pd.concat(aggs, ignore_index=True)
    out = cat.groupby(keys, sort=False, as_index=False)[["n", "mse", "psnr", "fmse"]].mean()
    return out


def _measurements(
    summary: pd.DataFrame, experiment: str, arm: str, seed: int | None, kind: str, subset="All"
):
    return _claims.measurements_from_summary(summary, experiment, arm, seed, kind, subset=subset)


def photo_clusters(exp: Experiment) -> tuple[dict[str, str], str]:
    """Composite name -> the photo it was cut from, and that cluster's kind, for the claims' bootstrap.

    The built-in data knows each composite's source photo (``composite_photos``); elsewhere
    (iHarmony4) the photo is unknown and the real image (``Sample.real_id``) stands in for it.
    """
    from harmonylib.data.builtin import composite_photos

    if exp._clusters is None:
        photos = composite_photos(exp.data_root)
        exp._clusters = (
            (photos, "source photo")
            if photos is not None
            else ({s.name: s.real_id for s in exp.samples}, "real image")
        )
    return exp._clusters


def _per_image(
    exp: Experiment,
    df: pd.DataFrame,
    experiment: str,
    arm: str,
    seed: int | None,
    kind: str,
    by_bins=False,
    clusters: tuple[dict[str, str], str] | None = None,
) -> pd.DataFrame:
    """Per-image rows for the claims; ``clusters`` (name -> photo, kind) default: :func:`photo_clusters`."""
    clusters, cluster_kind = clusters or photo_clusters(exp)
    return _claims.per_image_from_frame(df, experiment, arm, seed, kind, clusters, cluster_kind, by_bins)


def write_measurements(
    exp: Experiment,
    experiment: str,
    rows: Sequence[pd.DataFrame],
    per_image: Sequence[pd.DataFrame] = (),
) -> Path:
    """``<out>/claims/<experiment>.csv``: this experiment's raw per-seed numbers (replaced whole).

    ``per_image`` rows (:func:`harmonylib.claims.per_image_from_frame`) go to
    ``<out>/claims/per_image/<experiment>.csv`` (replaced whole), for the claims' bootstrap
    (:func:`harmonylib.claims.files.write_measurements`).
    """
    return _claims.write_measurements(exp.out, experiment, rows, per_image)


def update_claims(out: str | os.PathLike, title: str | None = None) -> dict[str, Path] | None:
    """Merge ``<out>/claims/*.csv`` into ``<out>/claims_measurements.csv``; regenerate ``claims.md``."""
    return _claims.update_claims(out, title)


def _provenance(exp: Experiment, seeds: Sequence[int], **extra: Any) -> dict[str, Any]:
    from harmonylib import provenance as _prov

    test_list = exp.data_root / "IHD_test.txt"
    return _prov.provenance(
        config=to_dict(exp.cfg),
        seeds={"base_seed": exp.cfg.seed, "training_seeds": list(seeds)},
        files={"test_list": test_list} if test_list.is_file() else None,
        **extra,
    )


@dataclass
class TableResult:
    """What a table function returns: the rendered table, the files, and the key numbers."""

    table: pd.DataFrame
    paths: dict[str, Path]
    summary: dict[str, Any]
    measurements: Path | None = None
    caption: str = ""


def unet_note(cfg: Config) -> str:
    """What the forward UNet is: the same model for every training seed (read from the config)."""
    adopt = cfg.train.unet.adopt
    if adopt is not None:
        return (
            f"the forward UNet is the released one ({adopt}, train.unet.adopt), adopted as it is and "
            "the same for every seed"
        )
    start = cfg.train.unet.init or f"random {cfg.train.unet.arch} weights"
    return f"the forward UNet is trained once, at the base seed {cfg.seed} from {start}, and shared by every seed"


def _seed_text(seeds: Sequence[int], cfg: Config | None = None, retrained: str = "the Harmony-VAE is") -> str:
    """The seeds of a caption and, given ``cfg``, what varied with them: what was retrained per
    seed (``retrained``), and that the forward UNet did not (:func:`unet_note`)."""
    n = len(seeds)
    text = (
        f"mean over {n} training seeds ({', '.join(map(str, seeds))})"
        if n > 1
        else f"training seed {seeds[0]}"
    )
    if cfg is None:
        return text
    return (
        f"{text}; per seed, {retrained} retrained with that seed and the test predictions are sampled "
        f"with it, while {unet_note(cfg)}"
    )


# --------------------------------------------------------------------------------------------
# 4. Table 1: iHarmony4 comparison
# --------------------------------------------------------------------------------------------


def table1(
    exp: Experiment,
    seeds: Sequence[int] | None = None,
    extra_predictions: Mapping[str, str] | None = None,
    ceilings: bool = True,
) -> TableResult:
    """Table 1: Composite, DiffHarmony (plain VAE), DiffHarmony++ (Harmony-VAE), at the high size.

    Args:
        exp: from :func:`setup`.
        seeds: training seeds (default :func:`default_seeds`).
        extra_predictions: method name -> predictions folder (e.g. an external method); a paper
            name (``HDNet``, ``GIFT``...) fills that column, any other name adds a column.
        ceilings: add the autoencoder ceilings (not in the paper): the real image through the
            base VAE (``VAE ceiling``) and through the Harmony-VAE (``Harmony-VAE ceiling``, per
            training seed), what DiffHarmony and DiffHarmony++ would score with perfect latents.
    """
    seeds = default_seeds(exp.cfg, seeds)
    rows, meas, pim = [], [], []
    comp_df = score(exp, Arm("composite"), "table1", "Composite")
    comp = aggregate(comp_df)
    rows.append(tables.measured_from_summary(comp, model="Composite"))
    meas.append(_measurements(comp, "table1", "Composite", None, "none"))
    pim.append(_per_image(exp, comp_df, "table1", "Composite", None, "none"))
    per_seed: dict[str, list[pd.DataFrame]] = {"DiffHarmony": [], "DiffHarmony++": []}
    for s in seeds:
        for model, method in (("DiffHarmony", "diffharmony"), ("DiffHarmony++", "diffharmony++")):
            df = score(exp, Arm(method, "high", s), "table1", model)
            per_seed[model].append(df)
            meas.append(_measurements(aggregate(df), "table1", model, s, "training"))
            pim.append(_per_image(exp, df, "table1", model, s, "training"))
    summaries = {"Composite": comp}
    for model, frames in per_seed.items():
        summaries[model] = mean_summary(frames)
        rows.append(tables.measured_from_summary(summaries[model], model=model))
    for name, folder in (extra_predictions or {}).items():
        summaries[name] = aggregate(score(exp, Arm("folder", folder=str(folder)), "table1", name))
        rows.append(tables.measured_from_summary(summaries[name], model=name))
    if ceilings:
        for method, name in CEILINGS.items():
            use = seeds if method == "ceiling++" else [exp.cfg.seed]
            summaries[name] = mean_summary([score(exp, Arm(method, "high", s), "table1", name) for s in use])
            rows.append(tables.measured_from_summary(summaries[name], model=name))
    table = tables.render_table(pd.concat(rows, ignore_index=True), 1)
    caption = (
        tables.SPECS[1].caption
        + f" Measured: Composite, DiffHarmony (plain VAE decode) and DiffHarmony++ (Harmony-VAE), "
        f"{_seed_text(seeds, exp.cfg)} (so the DiffHarmony column varies with the sampling seed only), at R_inf '1024'"
        + (f", and {', '.join(extra_predictions)} (predictions folders)" if extra_predictions else "")
        + ". "
        + (
            "Columns 'VAE ceiling' and 'Harmony-VAE ceiling' (not in the paper): the real image encoded "
            "(posterior mode) and decoded by the base VAE, and by the Harmony-VAE with the composite as its "
            "condition, at the same size: what DiffHarmony and DiffHarmony++ would score with perfect latents "
            "(harmonylib.ceiling). "
            if ceilings
            else ""
        )
        + size_note(exp.cfg)
        + " "
        + data_note(exp)
        + " Other columns as reported by the paper."
    )
    paths = tables.write_table(
        table, 1, exp.tables_dir, caption=caption, provenance=_provenance(exp, seeds, notebook="04_table1")
    )
    m = write_measurements(exp, "table1", meas, pim)
    update_claims(exp.out)
    summary = {k: _all_row(v) for k, v in summaries.items()}
    return TableResult(table, paths, summary, m, caption)


def _all_row(summary: pd.DataFrame) -> dict[str, float]:
    row = summary[summary["subset"] == "All"].iloc[0]
    return {m: float(row[m]) for m in ("psnr", "mse", "fmse")}


# --------------------------------------------------------------------------------------------
# 5. Table 3: by foreground ratio, iHarmony4 and Human Harmony
# --------------------------------------------------------------------------------------------


def human_harmony_root(exp: Experiment, given: str | os.PathLike = "", build: bool = True) -> Path:
    """The Human Harmony root: ``given``, else notebook 11's (``inverse_data.human_harmony_root``),
    built first when ``build`` and it is not built yet (``inverse_data.ensure_human_harmony``: on
    smoke/mini from the imaterialist-format fixture, with the profile's inverse model and classifier).
    """
    if given:
        return resolve(given)
    from harmonylib import inverse_data

    if build:
        return inverse_data.ensure_human_harmony(exp.cfg, exp.out, progress=exp.progress)
    return inverse_data.human_harmony_root(exp.cfg, exp.out)


def human_harmony_samples(root: str | os.PathLike | None, split: str = "test") -> list:
    """The Human Harmony split of a built root (notebook 11's output), or [] if it is not built."""
    from harmonylib.data.iharmony4 import read_split

    if not root:
        return []
    root = resolve(root)
    if not (root / f"IHD_{split}.txt").is_file():
        return []
    return read_split(root, split)


def _bins_measured(
    bins: pd.DataFrame, dataset: str, model: str, with_n: bool = False, stand_in: str = ""
) -> pd.DataFrame:
    """Table 3 cells of one model; ``stand_in`` names the method that measured them in its place."""
    rows = []
    for _, r in bins[bins["subset"] == "All"].iterrows():
        if with_n:
            rows.append({"dataset": dataset, "fg_bin": r["fg_bin"], "model": "N_samples", "metric": "N_samples",
                         "value": float(r["n"])})  # fmt: skip
        for m in ("psnr", "mse", "fmse"):
            rows.append({"dataset": dataset, "fg_bin": r["fg_bin"], "model": model, "metric": m,
                         "value": float(r[m]), tables.STAND_IN: stand_in})  # fmt: skip
    return pd.DataFrame(rows)


def table3(
    exp: Experiment,
    seeds: Sequence[int] | None = None,
    human_harmony_root: str | os.PathLike | None = None,
    baseline_predictions: Mapping[str, str] | None = None,
    colour_transfer: bool = True,
) -> TableResult:
    """Table 3: DiffHarmony++ and a pixel-space baseline by foreground-ratio bin, on two datasets.

    Args:
        exp: from :func:`setup`.
        seeds: training seeds (Harmony-VAE and pixel baseline).
        human_harmony_root: the built Human Harmony root (notebook 11); scored with the
            iHarmony4-trained models. Missing: its rows stay unmeasured, and the caption says so.
        baseline_predictions: dataset name (``iHarmony4`` / ``Human Harmony``) -> a predictions
            folder that replaces the default pixel baseline in the HDNet_512 row.
        colour_transfer: add the colour-statistics transfer row (``colour_transfer``, not in the paper).
    """
    from harmonylib.baselines import COLOUR_TRANSFER_CAPTION, colour_transfer_predictions

    seeds = default_seeds(exp.cfg, seeds)
    baseline_predictions = dict(baseline_predictions or {})
    datasets = {IHARMONY4: exp.samples}
    hh = human_harmony_samples(human_harmony_root)
    if hh:
        datasets[HUMAN_HARMONY] = hh
    rows, meas, pim, summary = [], [], [], {}
    for dataset, samples in datasets.items():
        ours = [
            score(exp, Arm("diffharmony++", "high", s), "table3", "DiffHarmony++", samples, dataset)
            for s in seeds
        ]
        bins = mean_summary(ours, by_bins=True)
        rows.append(_bins_measured(bins, dataset, "DiffHarmony++", with_n=True))
        summary[dataset] = {"DiffHarmony++": bins}
        if dataset in baseline_predictions:
            base = score(
                exp,
                Arm("folder", folder=baseline_predictions[dataset]),
                "table3",
                "HDNet_512",
                samples,
                dataset,
            )
            pix = aggregate_by_fg_bins(base)
        else:
            frames = [
                score(exp, Arm("pixel", "high", s), "table3", PIXEL_ARM, samples, dataset) for s in seeds
            ]
            pix = mean_summary(frames, by_bins=True)
            # claims 4a-4c read iHarmony4's arms, 4d Human Harmony's ("Human Harmony/<model>/<bin>"),
            # whose pairs are one per real photo: the real image is the bootstrap's cluster
            prefix, clusters = "", None
            if dataset == HUMAN_HARMONY:
                prefix = f"{_claims.HUMAN_HARMONY_ARM}/"
                clusters = ({x.name: x.real_id for x in samples}, "real image")
            for s, f_ours, f_pix in zip(seeds, ours, frames, strict=True):
                for model, f in ((f"{prefix}DiffHarmony++", f_ours), (f"{prefix}{PIXEL_ARM}", f_pix)):
                    meas.append(_measurements(aggregate_by_fg_bins(f), "table3", model, s, "training"))
                    pim.append(_per_image(exp, f, "table3", model, s, "training", True, clusters))
        # the csv names the stand-in: the pixel baseline's numbers sit in the paper's HDNet_512 row
        rows.append(_bins_measured(pix, dataset, "HDNet_512",
                                   stand_in="" if dataset in baseline_predictions else PIXEL_ARM))  # fmt: skip
        summary[dataset]["HDNet_512"] = pix
        if colour_transfer:
            folder = exp.predictions_dir / f"{dataset.replace(' ', '')}-colour_transfer"
            colour_transfer_predictions(samples, folder)
            ct = aggregate_by_fg_bins(score(exp, Arm("folder", folder=str(folder)), "table3", "colour_transfer",
                                            samples, dataset))  # fmt: skip
            rows.append(_bins_measured(ct, dataset, "colour_transfer"))
            summary[dataset]["colour_transfer"] = ct
    table = tables.render_table(pd.concat(rows, ignore_index=True), 3)
    replaced = ", ".join(baseline_predictions) if baseline_predictions else ""
    caption = (
        tables.SPECS[3].caption
        + " Row HDNet_512: HDNet_512 is not public; "
        + (f"on {replaced} it is the predictions folder given; elsewhere " if replaced else "")
        + "measured with harmonylib's compact pixel-space encoder-decoder harmonizer "
        "(harmonylib.models.pixel_baseline), trained on the same data with the same budget as the "
        "DiffHarmony UNet, as HDNet's stand-in (composites as input, no background crop). "
        f"DiffHarmony++ and the stand-in: {_seed_text(seeds, exp.cfg, 'the Harmony-VAE and the stand-in are')}; "
        "both infer at R_inf '1024'. "
        + size_note(exp.cfg)
        + " Human Harmony rows are scored with the iHarmony4-trained models"
        + (
            f" on the built Human Harmony test split ({len(hh)} pairs"
            + (
                ", the builder's output on its imaterialist-format fixture"
                if exp.cfg.data.kind == "builtin"
                else ""
            )
            + ")."
            if hh
            else f"; not measured: no built Human Harmony root at {human_harmony_root or '(none given)'} (run notebook 11)."
        )
        + " "
        + data_note(exp)
        + (" Row colour_transfer (not in the paper): " + COLOUR_TRANSFER_CAPTION if colour_transfer else "")
    )
    paths = tables.write_table(
        table, 3, exp.tables_dir, caption=caption, provenance=_provenance(exp, seeds, notebook="06_table3")
    )
    m = write_measurements(exp, "table3", meas, pim)
    update_claims(exp.out)
    flat = {
        ds: {model: b[b["subset"] == "All"].set_index("fg_bin")[["n", "psnr", "mse", "fmse"]].to_dict("index")
             for model, b in d.items()}
        for ds, d in summary.items()
    }  # fmt: skip
    return TableResult(table, paths, flat, m, caption)


# --------------------------------------------------------------------------------------------
# 6. Table 4: Harmony-VAE at two inference sizes, and the refinement rows
# --------------------------------------------------------------------------------------------

TABLE4_ROWS = (  # (setting, level, method, refine)
    ("512/plain", "low", "diffharmony", False),
    ("512/harmony_vae", "low", "diffharmony++", False),
    ("1024/plain", "high", "diffharmony", False),
    ("1024/harmony_vae", "high", "diffharmony++", False),
    ("1024/plain+refine", "high", "diffharmony", True),
    ("1024/harmony_vae+refine", "high", "diffharmony++", True),
)


def table4(exp: Experiment, seeds: Sequence[int] | None = None, refine: bool = True) -> TableResult:
    """Table 4: {512, 1024} × {plain VAE, Harmony-VAE}; grey rows: + one refinement UNet at 1024.

    The refinement UNet (the profile's ``train.refinement``) is trained once, on plain DiffHarmony
    outputs at the low size (the authors' ``infer_resolution`` 512), and applied after the plain
    decode and after the Harmony-VAE, at the base seed only.
    """
    seeds = default_seeds(exp.cfg, seeds)
    rows, meas, pim, summary = [], [], [], {}
    for setting, level, method, ref in TABLE4_ROWS:
        if ref and not refine:
            continue
        use = [exp.cfg.seed] if ref else seeds
        frames = []
        for s in use:
            df = score(exp, Arm(method, level, s, refine=ref), "table4", setting.replace("/", "-"))
            frames.append(df)
            # claims 2 and 7a/7b; the "+refine" rows are measured at the base seed only, so 7a/7b
            # have one complete seed (INSUFFICIENT SEEDS) until they are run at every seed
            arm = f"{'low' if level == 'low' else 'high'}/{setting.split('/')[1]}"
            meas.append(_measurements(aggregate(df), "table4", arm, s, "training"))
            pim.append(_per_image(exp, df, "table4", arm, s, "training"))
        sm = mean_summary(frames)
        summary[setting] = _all_row(sm)
        rows += [{"setting": setting, "metric": m, "value": v} for m, v in summary[setting].items()]
    table = tables.render_table(pd.DataFrame(rows), 4)
    rc = exp.cfg.train.refinement
    caption = (
        tables.SPECS[4].caption
        + f" Measured: {_seed_text(seeds, exp.cfg)} for the first four rows; the '+refine' rows use one "
        f"refinement UNet (size '{rc.size}', trained on plain DiffHarmony outputs at R_inf '512' = "
        f"{rc.stage1_resolution} px) at the base seed {exp.cfg.seed}, applied after the plain decode and after "
        "the Harmony-VAE. " + size_note(exp.cfg) + " " + data_note(exp)
    )
    paths = tables.write_table(
        table, 4, exp.tables_dir, caption=caption, provenance=_provenance(exp, seeds, notebook="07_table4")
    )
    m = write_measurements(exp, "table4", meas, pim)
    update_claims(exp.out)
    return TableResult(table, paths, summary, m, caption)


# --------------------------------------------------------------------------------------------
# 7. Table 5: Harmony-VAE variants inside the full pipeline
# --------------------------------------------------------------------------------------------


def table5(exp: Experiment, seeds: Sequence[int] | None = None) -> TableResult:
    """Table 5: {E_c, E_c+D} × {zero, random}, each Harmony-VAE variant in the pipeline at the low size.

    A cell is NaN only when its Harmony-VAE run diverged (a non-finite loss was logged:
    ``TrainedRun.diverged``); the diverged seeds are counted in the summary and the caption.
    """
    seeds = default_seeds(exp.cfg, seeds)
    rows, meas, pim, summary = [], [], [], {}
    diverged: dict[str, list[int]] = {}
    for (params, init), variant in TABLE5_CELLS.items():
        frames = []
        for s in seeds:
            arm_name = f"{params}/{init}"
            if harmony_vae_run(exp, s, variant).diverged:
                diverged.setdefault(arm_name, []).append(s)
                meas.append(pd.DataFrame([{"experiment": "table5", "arm": arm_name, "metric": m,
                                           "seed_kind": "training", "seed": s, "value": float("nan")}
                                          for m in ("psnr", "mse", "fmse")]))  # fmt: skip
                continue
            df = score(exp, Arm("diffharmony++", "low", s, variant=variant), "table5", variant)
            frames.append(df)
            meas.append(_measurements(aggregate(df), "table5", arm_name, s, "training"))
            pim.append(_per_image(exp, df, "table5", arm_name, s, "training"))
        vals = (
            _all_row(mean_summary(frames)) if frames else {m: float("nan") for m in ("psnr", "mse", "fmse")}
        )
        summary[f"{params}/{init}"] = {**vals, "n_diverged": len(diverged.get(f"{params}/{init}", []))}
        rows += [{"params": params, "init": init, "metric": m, "value": v} for m, v in vals.items()]
    table = tables.render_table(pd.DataFrame(rows), 5)
    div_text = (
        "Diverged runs (a non-finite training loss was logged): "
        + "; ".join(f"{k}: seeds {v}" for k, v in diverged.items())
        + ". A cell is NaN only if every seed of it diverged; otherwise it is the mean of the others."
        if diverged
        else "No run diverged (a cell would be NaN only if a non-finite training loss was logged)."
    )
    caption = (
        tables.SPECS[5].caption
        + f" Each Harmony-VAE variant is scored inside the full DiffHarmony++ pipeline at R_inf '512' "
        f"(E_c+D / zero = Table 4 '512 ✓'), {_seed_text(seeds, exp.cfg, 'each Harmony-VAE variant is')}. "
        + div_text
        + " "
        + size_note(exp.cfg)
        + " "
        + data_note(exp)
    )
    paths = tables.write_table(
        table, 5, exp.tables_dir, caption=caption, provenance=_provenance(exp, seeds, notebook="08_table5")
    )
    m = write_measurements(exp, "table5", meas, pim)
    update_claims(exp.out)
    return TableResult(table, paths, summary, m, caption)


# --------------------------------------------------------------------------------------------
# 8. Figure 2 and the qualitative grids (Figures 3-4)
# --------------------------------------------------------------------------------------------

FIGURE2_STEM = "figure2_fg_ratio_cdf"


def human_harmony_mask_sources(root: str | os.PathLike | None) -> list:
    """Objects with ``.mask`` for every Human Harmony pair of a prepared root (all splits), or []."""
    from harmonylib.data.human_harmony import PAIRS_FILE, human_harmony_pairs

    if not root or not (resolve(root) / PAIRS_FILE).is_file():
        return []
    return human_harmony_pairs(resolve(root))


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
        provenance=_provenance(exp, [exp.cfg.seed], notebook="09_figure2",
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
    hvae = harmony_vae_run(exp, seed).load_model(ema=True)
    out = {}
    for key, vae in (("diffharmony", None), ("diffharmony_pp", hvae)):
        pipe = make_pipeline(exp, vae=vae)
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


# --------------------------------------------------------------------------------------------
# 9. Small helpers for notebooks' last cells
# --------------------------------------------------------------------------------------------


def finite(x: Any) -> bool:
    """True when every number in a (nested) dict/list is finite."""
    if isinstance(x, Mapping):
        return all(finite(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(finite(v) for v in x)
    if isinstance(x, (int, float, np.floating, np.integer)):
        return math.isfinite(float(x))
    return True


def save_image(img: Any, path: str | os.PathLike) -> Path:
    """Save a PIL image atomically; return the path."""
    atomic_save_image(Path(path), img)
    return Path(path)


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    atomic_write_json(Path(path), obj)
    return Path(path)

"""Arms and their predictions: what to predict with, at which settings, cached by what made it.

An :class:`Arm` names one method at one inference size and training seed. :func:`predictions_for`
trains what the arm needs (:mod:`harmonylib.experiments.trained`) and returns its predictions
folder, predicting only what is missing. Every folder is a :class:`harmonylib.cache.CacheFolder`
keyed by what made it: the settings hash of :func:`inference_settings` for the diffusion arms
(``harmonylib.inference.predict_split``), the run hash and sizes for the pixel baseline and the
autoencoder ceilings. Folders are ``<out>/predictions/<dataset>-<arm label>-<key hash>``.

Inference settings (paper §5.2, §5.3.3, §5.4; one place, :func:`inference_settings`): square
squash to R_inf, 5 Euler-ancestral steps, outputs resized to the metric resolution, background not
pasted (the evaluator pastes the ground-truth background, as the authors).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonylib.config import PAPER_VARIANT
from harmonylib.experiments import trained
from harmonylib.experiments.context import IHARMONY4, STEPS, Experiment, inference_sizes, short_hash
from harmonylib.inference import InferenceSettings, is_complete, predict_split
from harmonylib.io import atomic_save_image
from harmonylib.paths import relative_to_home, resolve

CEILINGS = {"ceiling": "VAE ceiling", "ceiling++": "Harmony-VAE ceiling"}  # Arm method -> row name


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
        """The arm's name in prediction folders and per-image CSVs, e.g. ``diffharmonypp_high_ecd_zero_seed0``."""
        if self.method == "composite":
            return "composite"
        if self.method == "folder":
            # the folder relative to the home: a rerun in another clone names the same per-image CSV
            return "folder-" + short_hash(relative_to_home(resolve(self.folder)))[:8]
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


def _harmony_vae(exp: Experiment, arm: Arm):
    """The finished Harmony-VAE run of ``arm``; raises :class:`DivergedRun` when it diverged."""
    run = trained.harmony_vae_run(exp, arm.seed, arm.variant)
    if run.diverged:
        raise DivergedRun(f"{run.run_dir}: the Harmony-VAE run diverged")
    return run


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
        run = trained.pixel_baseline_run(exp, arm.seed)
        size = inference_sizes(exp.cfg)[arm.level]
        key = {"run": run.config_hash, "size": size, "out": exp.cfg.eval.resolution, "n": len(samples)}
        folder = exp.predictions_dir / f"{ds}-{arm.label()}-{short_hash(key)}"
        return write_pixel_predictions(run, samples, folder, size, exp.cfg.eval.resolution, key, exp.progress)

    if arm.method in CEILINGS:
        return ceiling_predictions(exp, arm, samples, ds)

    parts = {"unet": trained.unet_key(exp)}
    hvae = ref = None
    if arm.method == "diffharmony++":
        hvae = _harmony_vae(exp, arm)
        parts["harmony_vae"] = hvae.config_hash
    elif arm.method != "diffharmony":
        raise ValueError(
            f"unknown method {arm.method!r}; allowed: diffharmony, diffharmony++, pixel, composite, folder, "
            + ", ".join(CEILINGS)
        )
    if arm.refine:
        ref = trained.refinement_run(exp)
        parts["refinement"] = ref.config_hash
    settings = inference_settings(exp, arm, json.dumps(parts, sort_keys=True))
    folder = exp.predictions_dir / f"{ds}-{arm.label()}-{settings.hash()}"
    if is_complete(folder, settings):
        return folder
    pipe = trained.make_pipeline(
        exp,
        vae=hvae.load_model(ema=True) if hvae is not None else None,
        refinement_unet=ref.load_model(ema=True).eval() if ref is not None else None,
    )
    return predict_split(pipe, samples, folder, settings, progress=exp.progress)


def ceiling_predictions(exp: Experiment, arm: Arm, samples: Sequence, ds: str) -> Path:
    """The autoencoder ceiling of ``arm`` (``ceiling``: base VAE; ``ceiling++``: + Harmony-VAE).

    Raises:
        DivergedRun: the Harmony-VAE run of a ``ceiling++`` arm diverged.
    """
    from harmonylib.ceiling import write_ceiling_predictions

    vae = trained.base_components(exp)["vae"]
    size = inference_sizes(exp.cfg)[arm.level]
    key: dict[str, Any] = {
        "vae": trained.vae_key(exp),
        "size": size,
        "out": exp.cfg.eval.resolution,
        "n": len(samples),
    }
    hvae = None
    if arm.method == "ceiling++":
        run = _harmony_vae(exp, arm)
        key["harmony_vae"] = run.config_hash
        hvae = run.load_model(ema=True).eval()
    folder = exp.predictions_dir / f"{ds}-{arm.label()}-{short_hash(key)}"
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
    from tqdm.auto import tqdm

    from harmonylib.cache import CacheFolder
    from harmonylib.models.pixel_baseline import PixelHarmonizer, harmonize_pixel

    cache = CacheFolder(folder, dict(key), what="pixel-baseline predictions")
    if cache.is_done():
        return folder
    cache.open()
    model = PixelHarmonizer.from_pretrained(run.weights_dir(ema=True)).eval()
    todo = [s for s in samples if not (folder / f"{s.name}.png").is_file()]
    for start in tqdm(range(0, len(todo), 16), desc=f"predict {folder.name}", disable=not progress):
        batch = todo[start : start + 16]
        outs = harmonize_pixel(model, [s.composite for s in batch], [s.mask for s in batch], size)
        for s, img in zip(batch, outs, strict=True):
            if out_res is not None:
                img = img.resize((out_res, out_res), Image.BILINEAR)
            atomic_save_image(folder / f"{s.name}.png", img)
    cache.mark_done()
    return folder

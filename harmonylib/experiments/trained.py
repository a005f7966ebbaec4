"""The trained models an experiment predicts with: trained when missing, reused when finished.

Every function returns a finished ``TrainedRun`` (``harmonylib.training.runs.ensure_trained``: a
run folder whose ``DONE`` holds the same config hash is reused), or a pipeline built on them.
Run folders are ``<out>/runs/<run name>``, with ``-seed<k>`` for training seeds other than the
base seed (:func:`run_dir`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harmonylib.config import PAPER_VARIANT, Config, with_seed
from harmonylib.experiments.context import STEPS, Experiment, short_hash


def run_dir(exp: Experiment, cfg: Config, recipe: str) -> Path:
    """``<out>/runs/<run name>``, with ``-seed<k>`` for seeds other than the base seed."""
    from harmonylib.training.runs import run_name

    name = run_name(cfg, recipe)
    return exp.runs / (name if cfg.seed == exp.cfg.seed else f"{name}-seed{cfg.seed}")


def harmony_vae_run(exp: Experiment, seed: int, variant: str = PAPER_VARIANT):
    """The finished Harmony-VAE run of ``variant`` trained with ``seed`` (trained if missing)."""
    from harmonylib.release import install_released
    from harmonylib.training.runs import ensure_trained

    cfg = with_seed(exp.cfg, seed, variant)
    folder = run_dir(exp, cfg, "harmony_vae")
    # a released checkpoint of exactly this run (same run hash) is used as it is, as users use the
    # authors' released weights; `make retrain` re-makes it and checks its hash
    install_released(cfg, folder)
    return ensure_trained(cfg, "harmony_vae", run_dir=folder, progress=exp.progress)


def pixel_baseline_run(exp: Experiment, seed: int):
    """The finished pixel-baseline run (Table 3's stand-in for HDNet_512) trained with ``seed``."""
    from harmonylib.training.runs import ensure_trained

    cfg = with_seed(exp.cfg, seed)
    return ensure_trained(
        cfg, "pixel_baseline", run_dir=run_dir(exp, cfg, "pixel_baseline"), progress=exp.progress
    )


def base_components(exp: Experiment) -> dict[str, Any]:
    """DiffHarmony's components (UNet, base VAE, scheduler, empty prompt), assembled once per experiment."""
    if exp._components is None:
        from harmonylib.assemble import assemble_components

        asm = assemble_components(
            exp.cfg, "forward", harmony_vae=False, out_dir=exp.out, progress=exp.progress
        )
        exp._components = asm.components
        exp._unet_key = short_hash(weights_identity(exp.cfg, asm.sources["unet"]))
        exp._vae_key = short_hash(weights_identity(exp.cfg, asm.sources["vae"]))
    return exp._components


def weights_identity(cfg: Config, source: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies the weights of one assembled component, with nothing of the clone in it.

    ``source`` is a record of ``assemble_components(...).sources``. Its paths and file times
    change with the clone (a fresh checkout stamps new mtimes), not with the weights, so they are
    left out: a trained run is named by its run hash (its weights follow from that config), a
    folder (adopted, or given) by the SHA-256 of its files, the base VAE by its folder's SHA-256,
    or, randomly initialised (smoke), by its architecture and init seed. Hashing a folder reads
    it once per experiment (the paper's 3.4 GB UNet: a few seconds).
    """
    from harmonylib.paths import resolve
    from harmonylib.provenance import sha256_tree

    kind = source["kind"]
    if kind == "run":  # weights/ema, or weights/live for a run without EMA
        weights = Path(source["weights"]).name
        return {
            "kind": kind,
            "config_hash": source["config_hash"],
            "steps": source["steps"],
            "weights": weights,
        }
    if kind in ("adopted", "folder"):
        return {"kind": kind, "sha256": sha256_tree(source["path"])}
    if kind == "base":
        if source["path"] is not None:
            return {"kind": kind, "arch": source["arch"], "sha256": sha256_tree(resolve(source["path"]))}
        from harmonylib.training.base_models import _init_seed

        # a random VAE: the recipes' own init seed (assemble_parts.base_vae) names its weights
        return {"kind": kind, "arch": source["arch"], "init_seed": _init_seed(cfg, "unet", "vae")}
    raise ValueError(f"unknown component source kind {kind!r}: {dict(source)}")


def unet_key(exp: Experiment) -> str:
    """A short hash of the forward UNet's weights (:func:`weights_identity`; part of every
    prediction folder's key): the same in every clone, another for other weights."""
    base_components(exp)
    return str(exp._unet_key)


def vae_key(exp: Experiment) -> str:
    """A short hash of the base VAE's weights (:func:`weights_identity`; part of every ceiling
    folder's key): the same in every clone, another for other weights."""
    base_components(exp)
    return str(exp._vae_key)


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

"""Run folders, the ``DONE`` marker, and ``ensure_trained``: train once, then reuse.

A run folder (``results/<profile>/runs/<run name>/`` by default) holds::

    config.yaml            the whole resolved config
    run.json               recipe, run name, the hash of the config part that decides the run
    provenance.json        code version, packages, device, seeds
    checkpoints/           checkpoint-<step>/ (newest K), for resuming
    metrics.csv            one row per optimizer step
    weights/live, weights/ema   final weights, diffusers folders (safetensors)
    <run name>_loss.png    the loss curve
    test_metrics.json      classifier only: accuracy and ROC-AUC on the test split
    DONE                   written last: the config hash, status ("completed" or "diverged"), steps, final loss

A run folder is a :class:`harmonylib.cache.CacheFolder` keyed by the run hash (:func:`run_folder`):
``run.json`` is its key marker and ``DONE`` its done marker, both JSON records whose
``config_hash`` holds the key. ``ensure_trained(cfg, recipe)`` returns the run if its ``DONE``
holds the same hash; otherwise it trains, resuming from the newest checkpoint of the same config.
A folder of another config (the cache folder refuses it), or with files but no ``run.json``, is
renamed aside (never deleted) and training starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harmonylib.cache import CacheFolder, Marker
from harmonylib.config import Config, config_hash, to_dict
from harmonylib.io import atomic_write_json, atomic_write_text
from harmonylib.paths import results_dir
from harmonylib.training.denoised_latents import denoiser_identity
from harmonylib.training.loop import CHECKPOINTS_DIR, METRICS_FILE, WEIGHTS_DIR, TrainResult, train_loop
from harmonylib.training.recipes import build_spec, check_recipe, recipe_section

DONE_FILE = "DONE"
RUN_FILE = "run.json"


class TrainingInterrupted(RuntimeError):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint; call again to resume."""

    def __init__(self, run_dir: Path, step: int):
        super().__init__(f"training interrupted at step {step}; checkpoint in {run_dir / CHECKPOINTS_DIR}")
        self.run_dir, self.step = run_dir, step


def run_name(cfg: Config, recipe: str) -> str:
    """``unet-forward``, ``harmony_vae-inverse-ec_zero``, ``refinement``, ``classifier`` ..."""
    check_recipe(recipe)
    rc = recipe_section(cfg, recipe)
    parts = [recipe]
    if hasattr(rc, "direction"):
        parts.append(rc.direction)
    if recipe == "harmony_vae":
        parts.append(rc.variant)
    return "-".join(parts)


def run_config(cfg: Config, recipe: str, stage1_key: str | None = None) -> dict[str, Any]:
    """The part of ``cfg`` that decides a run: seed, data, the recipe's section (and stage-1 key).

    Evaluation settings and the other recipes' sections are left out, so changing them does not
    retrain anything.
    """
    out = {
        "recipe": recipe,
        "seed": cfg.seed,
        "data": to_dict(cfg.data),
        "train": to_dict(recipe_section(cfg, recipe)),
    }
    if recipe == "refinement":
        out["stage1_key"] = stage1_key
    if recipe == "harmony_vae" and cfg.train.harmony_vae.latent == "denoised":
        out["denoiser"] = denoiser_identity(cfg)  # the adopted UNet's weights decide z'_0
    return out


def run_hash(cfg: Config, recipe: str, stage1_key: str | None = None) -> str:
    return config_hash_of(run_config(cfg, recipe, stage1_key))


def config_hash_of(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def default_run_dir(cfg: Config, recipe: str) -> Path:
    return results_dir(cfg.profile, "runs") / run_name(cfg, recipe)


def run_folder(run_dir: str | os.PathLike, h: str) -> CacheFolder:
    """The run folder as a cache folder keyed by the run hash ``h`` (``run.json``, then ``DONE``)."""
    return CacheFolder(
        Path(run_dir),
        h,
        done=Marker(DONE_FILE, "config_hash"),
        key_marker=Marker(RUN_FILE, "config_hash"),
        what="a training run",
    )


def read_done(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = Path(run_dir) / DONE_FILE
    return json.loads(p.read_text()) if p.is_file() else None


@dataclass
class TrainedRun:
    """A finished run (its ``DONE`` marker read back)."""

    run_dir: Path
    recipe: str
    status: str  # "completed" or "diverged"
    config_hash: str
    steps: int
    final_loss: float
    test_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def weights_dir(self, ema: bool = True) -> Path:
        """``weights/ema`` (or ``weights/live``); EMA falls back to live when the run had no EMA."""
        d = self.run_dir / WEIGHTS_DIR / ("ema" if ema else "live")
        return d if d.is_dir() else self.run_dir / WEIGHTS_DIR / "live"

    def metrics(self):
        from harmonylib.training.metrics_log import read_metrics

        return read_metrics(self.run_dir / METRICS_FILE)

    def load_model(self, ema: bool = True) -> Any:
        """The trained model, from ``weights/ema`` (default) or ``weights/live``."""
        folder = self.weights_dir(ema)
        if self.recipe in ("unet", "inpainting"):
            from diffusers import UNet2DConditionModel

            return UNet2DConditionModel.from_pretrained(folder)
        if self.recipe == "harmony_vae":
            from harmonylib.models.harmony_vae import HarmonyVAE

            return HarmonyVAE.from_pretrained(folder)
        if self.recipe == "autoencoder":
            from diffusers import AutoencoderKL

            return AutoencoderKL.from_pretrained(folder)
        if self.recipe == "refinement":
            from harmonylib.models.refinement_unet import RefinementUNet

            return RefinementUNet.from_pretrained(folder)
        from safetensors.torch import load_file

        from harmonylib.models.classifier import build_classifier

        rc = yaml.safe_load((self.run_dir / "config.yaml").read_text())["train"]["classifier"]
        if rc.get("backbone", "resnet") != "resnet":
            from harmonylib.models.probe import build_probe_classifier
            from harmonylib.paths import resolve

            # the backbone folder gives the architecture; every weight comes from the run's file
            clf = build_probe_classifier(
                rc["backbone"],
                resolve(rc["backbone_weights"]),
                input_size=rc["resolution"],
                pooling=rc.get("pooling", "global"),  # runs from before the option pooled globally
            )
        else:
            clf = build_classifier(rc["arch"], input_size=rc["resolution"])
        clf.load_state_dict(load_file(str(folder / "model.safetensors")))
        return clf

    @classmethod
    def from_done(cls, run_dir: Path, done: dict[str, Any]) -> TrainedRun:
        return cls(
            run_dir=Path(run_dir),
            recipe=done["recipe"],
            status=done["status"],
            config_hash=done["config_hash"],
            steps=int(done["steps"]),
            final_loss=float(done["final_loss"]),
            test_metrics=done.get("test_metrics", {}),
        )


def plot_loss(metrics_csv: str | os.PathLike, out_png: str | os.PathLike, title: str = "") -> None:
    """Loss per optimizer step (and its moving average) from ``metrics.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harmonylib.io import atomic_path
    from harmonylib.training.metrics_log import read_metrics

    df = read_metrics(metrics_csv)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if len(df):
        ax.plot(df["step"], df["loss"], lw=0.8, alpha=0.5, label="loss")
        win = max(1, len(df) // 20)
        ax.plot(df["step"], df["loss"].rolling(win, min_periods=1).mean(), lw=1.5, label=f"mean of {win}")
        if (df["loss"].dropna() > 0).all() and df["loss"].notna().any():
            ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _prepare_folder(cfg: Config, recipe: str, run_dir: Path, h: str, stage1_key: str | None) -> None:
    """Main process: move a folder of another config aside; write config, run.json, provenance."""
    from harmonylib.provenance import provenance

    folder = run_folder(run_dir, h)
    if run_dir.exists() and any(run_dir.iterdir()):
        old = folder.key_marker.read(run_dir)  # None: files, but no run started them
        if old is None or folder.foreign() is not None:
            aside = run_dir.with_name(f"{run_dir.name}.replaced-{old or 'unknown'}-{int(time.time())}")
            os.replace(run_dir, aside)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    folder.key_marker.write(  # rewritten on resume: the folder may have been renamed
        run_dir,
        h,
        {
            "recipe": recipe,
            "run_name": run_dir.name,
            "config_hash": h,
            "run_config": run_config(cfg, recipe, stage1_key),
        },
    )
    atomic_write_json(
        run_dir / "provenance.json",
        provenance(
            config=to_dict(cfg),
            seeds={"seed": cfg.seed},
            recipe=recipe,
            run_hash=h,
            full_config_hash=config_hash(cfg),
        ),
    )


def _finish(cfg: Config, recipe: str, run_dir: Path, h: str, result: TrainResult) -> TrainedRun:
    """Main process: loss plot, classifier test metrics, then ``DONE`` (last)."""
    plot_loss(
        run_dir / METRICS_FILE, run_dir / f"{run_dir.name}_loss.png", title=f"{run_dir.name} ({cfg.profile})"
    )
    test_metrics: dict[str, float] = {}
    if recipe == "classifier" and result.status == "completed":
        from harmonylib.training.classifier_data import NormalizedInputClassifier, evaluate_classifier
        from harmonylib.training.recipes import harmony_dataset

        rc = cfg.train.classifier
        run = TrainedRun(run_dir, recipe, result.status, h, result.step, result.final_loss)
        model = NormalizedInputClassifier(run.load_model(ema=False))
        test_metrics = evaluate_classifier(
            model, harmony_dataset(cfg, rc.resolution, rc.resize, split="test")
        )
        atomic_write_json(run_dir / "test_metrics.json", test_metrics)
    done = {
        "recipe": recipe,
        "config_hash": h,
        "status": result.status,
        "steps": result.step,
        "max_steps": result.max_steps,
        "final_loss": result.final_loss if math.isfinite(result.final_loss) else float("nan"),
        "num_processes": result.num_processes,
        "test_metrics": test_metrics,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    run_folder(run_dir, h).mark_done(done)
    return TrainedRun.from_done(run_dir, done)


def stage1_cache_dir(cfg: Config, stage1_key: str, cache_root: str | os.PathLike | None = None) -> Path:
    """Where the stage-1 outputs of ``stage1_key`` for this data and refinement config are cached.

    ``cache_root`` defaults to ``results/<profile>/cache``; ``ensure_trained`` passes the
    ``cache`` folder beside its runs folder, so runs under another results tree keep their
    cache there too.
    """
    rc = cfg.train.refinement
    key = config_hash_of(
        {"data": to_dict(cfg.data), "res": [rc.resolution, rc.stage1_resolution, rc.resize], "seed": cfg.seed}
    )
    root = Path(cache_root) if cache_root is not None else results_dir(cfg.profile, "cache")
    return root / f"stage1-{stage1_key}-{key}"


def ensure_trained(
    cfg: Config,
    recipe: str = "harmony_vae",
    *,
    run_dir: str | os.PathLike | None = None,
    stage1: Callable | None = None,
    stage1_key: str | None = None,
    progress: bool = True,
    cpu: bool = False,
    on_step_end: Callable[[int], None] | None = None,
    record_indices: bool = False,
) -> TrainedRun:
    """The finished run of ``recipe`` under ``cfg``: loaded if its ``DONE`` matches, else trained.

    Args:
        cfg: the resolved config (``load_config``); unknown keys and wrong types failed there.
        recipe: ``unet``, ``harmony_vae``, ``refinement``, ``classifier``, ``autoencoder`` or
            ``inpainting``.
        run_dir: the run folder; default ``results/<profile>/runs/<run name>``.
        stage1: refinement only: ``stage1(composite, mask, generators) -> image`` (the frozen
            stage-1 pipeline), used to fill the stage-1 cache if it is incomplete.
        stage1_key: refinement only: a name for the stage-1 model (part of the run's hash).
        progress: progress bars.
        cpu: force CPU.
        on_step_end, record_indices: passed to :func:`~harmonylib.training.loop.train_loop` (tests).

    Returns:
        A :class:`TrainedRun` (status "completed" or "diverged").

    Raises:
        TrainingInterrupted: SIGINT/SIGTERM arrived; a checkpoint was written, call again to resume.
    """
    from accelerate import PartialState

    check_recipe(recipe)
    if recipe == "refinement" and not stage1_key:
        raise ValueError("the refinement recipe needs stage1_key, a name for the frozen stage-1 model")
    h = run_hash(cfg, recipe, stage1_key)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg, recipe)
    if run_folder(run_dir, h).is_done():
        return TrainedRun.from_done(run_dir, read_done(run_dir))

    state = PartialState(cpu=cpu)
    stage1_cache = None
    if recipe == "refinement":
        from harmonylib.training.recipes import train_samples
        from harmonylib.training.stage1_cache import build_stage1_cache, read_cache_info

        rc = cfg.train.refinement
        # <results>/runs/<run name> -> <results>/cache
        stage1_cache = stage1_cache_dir(cfg, stage1_key, run_dir.parent.parent / "cache")
        if state.is_main_process:
            samples = train_samples(cfg)
            info = read_cache_info(stage1_cache)
            if info is None or info.get("count") != len(samples):
                if stage1 is None:
                    raise ValueError(f"no complete stage-1 cache at {stage1_cache}; pass stage1=<callable>")
                build_stage1_cache(
                    samples,
                    stage1,
                    stage1_cache,
                    resolution=rc.resolution,
                    stage1_resolution=rc.stage1_resolution,
                    resize=rc.resize,
                    seed=cfg.seed,
                    key=stage1_key,
                    progress=progress,
                )
    # Models and data first: a missing weights folder fails before the run folder is touched. The
    # inpainting recipe fills its latent cache here, on the main process first.
    with state.main_process_first():
        spec = build_spec(
            cfg, recipe, stage1_cache=stage1_cache, latent_cache_root=run_dir.parent.parent / "cache"
        )
    if state.is_main_process:
        _prepare_folder(cfg, recipe, run_dir, h, stage1_key)
    state.wait_for_everyone()

    section = recipe_section(cfg, recipe)
    result = train_loop(
        spec,
        section.loop,
        run_dir,
        seed=cfg.seed,
        resume="latest",
        cpu=cpu,
        progress=progress,
        on_step_end=on_step_end,
        record_indices=record_indices,
    )
    if result.status == "interrupted":
        raise TrainingInterrupted(run_dir, result.step)
    out = None
    if PartialState().is_main_process:
        out = _finish(cfg, recipe, run_dir, h, result)
    PartialState().wait_for_everyone()
    return out if out is not None else TrainedRun.from_done(run_dir, read_done(run_dir))

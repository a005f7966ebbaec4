"""The mini pretraining recipe: stand-ins for the paper's pretrained inputs, made from photographs.

The paper starts from pretrained weights (SD's ``sd-vae-ft-mse``, SD-inpainting, and DiffHarmony's
forward UNet, which it "adopts directly", §5.2). The mini profile has no such weights offline, so
this recipe makes them, once, and their outputs are committed under ``harmonylib/weights/mini``:

a. the mini base ``AutoencoderKL`` (``autoencoder`` recipe) on random multi-scale photo crops
   (``pretrain.autoencoder.data="photo_crops"``; ``"harmony"``: the train split's composites and
   reals, the earlier recipe);
b. ``scaling_factor`` = 1 / std of its latents over that stage's data, as SD/LDM's
   ``scale_by_std`` did (posterior *samples*, global std over all elements);
c. (``pretrain.route="inpainting"``) the SD-inpainting stand-in (``inpainting`` recipe): the
   9-channel UNet with SD-inpainting's own objective on photo crops with random masks, on the
   frozen VAE's cached latents, no harmonization data;
d. the forward DiffHarmony UNet (``unet`` recipe, fg-weighted loss) on the harmonization train
   split, fine-tuned from (c) as the paper's stack does (``route="scratch"``: from random weights);
e. export (EMA weights) to ``out_dir``::

       vae/                     AutoencoderKL folder (scaling_factor set)
       inpainting_unet/         UNet2DConditionModel folder, stage (c) (route "inpainting" only):
                                the init of the inverse and Table 2 UNets
       unet/                    UNet2DConditionModel folder (9 input channels), stage (d)
       empty_prompt_embedding/  EmptyPromptEmbedding folder, (1, 77, C), shared by both UNets
       scheduler/               the DDPM scaled-linear training scheduler config
       PROVENANCE.json          recipe config, seeds, git sha, packages, device, wall times,
                                held-out quality (test split) and the SHA-256 of every file

Weights are trained, evaluated and loaded in fp32; with ``pretrain.weights_dtype="float16"``
they are *stored* as fp16 safetensors (the cap on committed weights) and diffusers loads them
back into fp32 models. Each later stage trains on the exported (stored) output of the one before,
so the committed models match each other bit for bit. Held-out numbers use the exported files.

Each stage is an ``ensure_trained`` run under ``<runs_dir>`` (default
``results/<profile>/runs/pretrain``), so an interrupted recipe resumes and a finished one is reused;
each run's folder name carries the hashes of the stored models it starts from, so a new VAE or a new
inpainting UNet never reuses an old run.

``python -m harmonylib.training.pretrain --profile mini`` (``make pretrain-mini``) writes the
committed folder; ``--profile smoke --out DIR`` is the CI-size run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from harmonylib.config import Config, ConfigError, load_config, parse_overrides, to_dict
from harmonylib.io import atomic_write_json
from harmonylib.paths import portable, resolve, results_dir
from harmonylib.reproducibility import derive_seed
from harmonylib.training.pretrain_eval import (
    denoising_loss,
    inpainting_heldout_loss,
    latent_std,
    reconstruction_psnr,
)

PROVENANCE_FILE = "PROVENANCE.json"
COMPONENTS = ("vae", "unet", "empty_prompt_embedding", "scheduler")
INPAINTING_COMPONENT = "inpainting_unet"  # route "inpainting" only


def components(cfg: Config) -> tuple[str, ...]:
    """The folders :func:`pretrain_mini` exports under ``cfg``."""
    return COMPONENTS + ((INPAINTING_COMPONENT,) if cfg.pretrain.route == "inpainting" else ())


# ---- configs of the two stages --------------------------------------------------------------------


def autoencoder_stage_config(cfg: Config) -> Config:
    """``cfg`` with ``train.autoencoder`` = ``pretrain.autoencoder``."""
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, autoencoder=cfg.pretrain.autoencoder)
    )


def inpainting_stage_config(cfg: Config, vae_dir: str | os.PathLike) -> Config:
    """``cfg`` with ``train.inpainting`` = ``pretrain.inpainting`` on the frozen VAE at ``vae_dir``.

    Paths are stored relative to the home (:func:`harmonylib.paths.portable`): the run's config
    hash, and so its folder, is then the same in every clone."""
    rc = dataclasses.replace(cfg.pretrain.inpainting, vae=portable(str(vae_dir)), init=None)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, inpainting=rc))


def unet_stage_config(
    cfg: Config, vae_dir: str | os.PathLike, init: str | os.PathLike | None = None
) -> Config:
    """``cfg`` with ``train.unet`` = ``pretrain.unet`` on the frozen VAE at ``vae_dir``, from
    ``init`` (a UNet folder; None: random weights). Paths are stored relative to the home, as in
    :func:`inpainting_stage_config`."""
    unet = dataclasses.replace(
        cfg.pretrain.unet, vae=portable(str(vae_dir)), init=None if init is None else portable(str(init))
    )
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, unet=unet))


def stage_prompt_embeds(cfg: Config) -> torch.Tensor:
    """The fixed empty-prompt embedding the UNet stages train with, (1, 77, C) (as the recipes)."""
    from harmonylib.training.recipes import fixed_prompt_embeds

    pc = cfg.pretrain
    return fixed_prompt_embeds(cfg, pc.inpainting.arch if pc.route == "inpainting" else pc.unet.arch)


def autoencoder_data(cfg: Config, split: str = "train"):
    """The data stage (a) trained on (``split="train"``), for the latent std: photo crops, or the
    harmonization split; and the batch keys that hold its images."""
    from harmonylib.training.recipes import harmony_dataset

    ra = cfg.pretrain.autoencoder
    if ra.data == "photo_crops":
        from harmonylib.data.photo_crops import photo_crop_dataset

        return photo_crop_dataset(ra.crops, ra.resolution, derive_seed(cfg.seed, "autoencoder", "crops")), (
            "image",
        )
    return harmony_dataset(cfg, ra.resolution, ra.resize, split=split), ("composite", "real")


# ---- export ---------------------------------------------------------------------------------------


MAX_SHARD_SIZE = "4MB"


def _save_component(model, folder: Path, dtype: torch.dtype) -> None:
    """``save_pretrained`` (safetensors) into a fresh ``folder``, weights cast to ``dtype``."""
    from diffusers.utils import logging as dlogging

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    level = dlogging.get_verbosity()
    dlogging.set_verbosity_error()  # the cast is deliberate (storage only): no "use torch_dtype" notice
    try:
        # from_pretrained records the absolute folder it read in config.json's _name_or_path; a
        # committed file must not depend on where the clone lives (make retrain compares hashes)
        if hasattr(model, "register_to_config"):
            model.register_to_config(_name_or_path=folder.name)
        # Shards below 5 MB: the repository keeps every committed file small.
        model.to(dtype).save_pretrained(tmp, safe_serialization=True, max_shard_size=MAX_SHARD_SIZE)
        model.to(torch.float32)
    finally:
        dlogging.set_verbosity(level)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


# The released checkpoints live inside the weights folder but are made by `make retrain` and
# recorded by their own RELEASE.json files (harmonylib.release), not by the pretraining provenance.
RELEASED_SUBDIR = "released"


def file_hashes(out_dir: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of every file under ``out_dir`` except ``PROVENANCE.json`` and ``released/``, by
    relative POSIX path."""
    from harmonylib.provenance import sha256_file

    root = Path(out_dir)
    return {
        f.relative_to(root).as_posix(): sha256_file(f)
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.name != PROVENANCE_FILE and f.relative_to(root).parts[0] != RELEASED_SUBDIR
    }


def weight_bytes(out_dir: str | os.PathLike) -> int:
    """Total bytes of the ``*.safetensors`` files under ``out_dir`` (``released/`` excluded)."""
    root = Path(out_dir)
    return sum(
        f.stat().st_size
        for f in root.rglob("*.safetensors")
        if f.relative_to(root).parts[0] != RELEASED_SUBDIR
    )


# ---- the recipe -----------------------------------------------------------------------------------


def pretrain_mini(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    runs_dir: str | os.PathLike | None = None,
    cpu: bool = False,
) -> dict[str, Any]:
    """Run the pretraining recipe of ``cfg.pretrain`` and export its outputs to ``out_dir``.

    Args:
        cfg: the resolved config (``load_config("mini")`` for the committed weights).
        out_dir: where ``vae/``, ``unet/``, ``empty_prompt_embedding/``, ``scheduler/`` and
            ``PROVENANCE.json`` go; default ``cfg.pretrain.out_dir`` (relative to the project root).
        progress: progress bars.
        runs_dir: the two ``ensure_trained`` run folders go under it; default
            ``results/<profile>/runs/pretrain``.
        cpu: force CPU.

    Returns:
        The provenance record written to ``out_dir/PROVENANCE.json``.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from harmonylib.models.scheduler import make_training_scheduler
    from harmonylib.models.unet import EmptyPromptEmbedding
    from harmonylib.provenance import provenance, sha256_tree
    from harmonylib.training.recipes import harmony_dataset
    from harmonylib.training.runs import ensure_trained

    pc = cfg.pretrain
    out = Path(out_dir) if out_dir is not None else resolve(pc.out_dir)
    runs = Path(runs_dir) if runs_dir is not None else results_dir(cfg.profile, "runs") / "pretrain"
    dtype = torch.float16 if pc.weights_dtype == "float16" else torch.float32
    out.mkdir(parents=True, exist_ok=True)
    wall: dict[str, float] = {}
    prompt = stage_prompt_embeds(cfg)  # (1, 77, C), shared by both UNet stages

    # a. the base autoencoder
    t0 = time.perf_counter()
    ae_cfg = autoencoder_stage_config(cfg)
    ae_run = ensure_trained(ae_cfg, "autoencoder", run_dir=runs / "autoencoder", progress=progress, cpu=cpu)
    wall["autoencoder_s"] = time.perf_counter() - t0

    # b. scaling_factor from the latents of stage (a)'s data (EMA weights, as exported)
    t0 = time.perf_counter()
    ra = pc.autoencoder
    scale_data, scale_keys = autoencoder_data(cfg)
    vae = ae_run.load_model(ema=True).eval()
    # fp16 storage: measure on the weights as stored
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(p.to(dtype).to(torch.float32))
    std = latent_std(
        vae,
        scale_data,
        pc.eval_batch_size,
        derive_seed(cfg.seed, "pretrain", "latent-std") % (2**31),
        pc.scaling_batches,
        keys=scale_keys,
    )
    scaling = float(f"{1.0 / std:.6g}")
    vae.register_to_config(scaling_factor=scaling)
    _save_component(vae, out / "vae", dtype)
    vae_sha = sha256_tree(out / "vae")
    wall["scaling_s"] = time.perf_counter() - t0

    # c. the SD-inpainting stand-in on the exported VAE, exported with the prompt embedding
    in_run, init = None, None
    shutil.rmtree(out / INPAINTING_COMPONENT, ignore_errors=True)  # none left from another route
    _save_component(EmptyPromptEmbedding.from_tensor(prompt), out / "empty_prompt_embedding", torch.float32)
    if pc.route == "inpainting":
        t0 = time.perf_counter()
        in_run = ensure_trained(
            inpainting_stage_config(cfg, out / "vae"),
            "inpainting",
            run_dir=runs / f"inpainting-vae{vae_sha[:12]}",
            progress=progress,
            cpu=cpu,
        )
        init = out / INPAINTING_COMPONENT
        _save_component(in_run.load_model(ema=True), init, dtype)
        wall["inpainting_s"] = time.perf_counter() - t0

    # d. the forward DiffHarmony UNet on the exported VAE, from (c) or from random weights
    t0 = time.perf_counter()
    tag = f"vae{vae_sha[:12]}" + (f"-init{sha256_tree(init)[:12]}" if init is not None else "")
    un_run = ensure_trained(
        unet_stage_config(cfg, out / "vae", init),
        "unet",
        run_dir=runs / f"unet-{pc.unet.direction}-{tag}",
        progress=progress,
        cpu=cpu,
    )
    wall["unet_s"] = time.perf_counter() - t0

    # e. export the rest
    t0 = time.perf_counter()
    _save_component(un_run.load_model(ema=True), out / "unet", dtype)
    sched_tmp = out / "scheduler.tmp"
    shutil.rmtree(sched_tmp, ignore_errors=True)
    make_training_scheduler(prediction_type=cfg.pretrain.unet.prediction_type).save_pretrained(sched_tmp)
    shutil.rmtree(out / "scheduler", ignore_errors=True)
    os.replace(sched_tmp, out / "scheduler")

    # f. held-out quality, on the exported files
    vae_x = AutoencoderKL.from_pretrained(out / "vae", torch_dtype=torch.float32).eval()
    unet_x = UNet2DConditionModel.from_pretrained(out / "unet", torch_dtype=torch.float32).eval()
    prompt_x = EmptyPromptEmbedding.from_pretrained(out / "empty_prompt_embedding").embeds.detach()
    test_ae = harmony_dataset(cfg, ra.resolution, ra.resize, split="test")
    train_ae = harmony_dataset(cfg, ra.resolution, ra.resize, split="train")
    test_un = harmony_dataset(cfg, pc.unet.resolution, pc.unet.resize, split="test")
    quality = {
        "autoencoder_test": reconstruction_psnr(vae_x, test_ae, pc.eval_batch_size),
        "autoencoder_train": reconstruction_psnr(vae_x, train_ae, pc.eval_batch_size),
        "unet_test": denoising_loss(
            unet_x, vae_x, prompt_x, test_un, cfg, pc.eval_timesteps_per_image, pc.eval_batch_size
        ),
    }
    if init is not None:
        inp_x = UNet2DConditionModel.from_pretrained(init, torch_dtype=torch.float32).eval()
        test_in = harmony_dataset(cfg, pc.inpainting.resolution, "square", split="test")
        quality["inpainting_test"] = inpainting_heldout_loss(
            inp_x, vae_x, prompt_x, test_in, cfg, pc.eval_timesteps_per_image, pc.eval_batch_size
        )
    wall["export_eval_s"] = time.perf_counter() - t0

    def _run_info(run) -> dict[str, Any]:
        return {
            "run_dir": str(run.run_dir),
            "config_hash": run.config_hash,
            "status": run.status,
            "steps": run.steps,
            "final_train_loss": run.final_loss,
        }

    record = provenance(
        config={"seed": cfg.seed, "data": to_dict(cfg.data), "pretrain": to_dict(pc)},
        seeds={"seed": cfg.seed},
        recipe="harmonylib.training.pretrain.pretrain_mini",
        profile=cfg.profile,
        weights_dtype=f"{pc.weights_dtype} (stored); trained and loaded in float32",
        scaling_factor=scaling,
        scaling_factor_source=(
            "1 / std of posterior-sampled latents (global, all elements) of "
            + (
                "the autoencoder's photo crops"
                if ra.data == "photo_crops"
                else "the train split's composites and reals"
            )
            + f", EMA weights as stored; std = {std:.6g}"
        ),
        latent_std=std,
        route=pc.route,
        runs={
            "autoencoder": _run_info(ae_run),
            **({"inpainting": _run_info(in_run)} if in_run is not None else {}),
            "unet": _run_info(un_run),
        },
        wall_times_s=wall,
        quality=quality,
        weight_bytes=weight_bytes(out),
    )
    # files last: every file of the folder, hashed as written
    record["sha256"] = file_hashes(out)
    atomic_write_json(out / PROVENANCE_FILE, record)
    return record


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.training.pretrain") -> int:
    from harmonylib.cli_format import Parser

    ap = Parser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini", help="smoke, mini, or a YAML path")
    ap.add_argument("--out", default=None, help="output folder (default: the profile's pretrain.out_dir)")
    ap.add_argument("--runs-dir", default=None, help="run folders (default results/<profile>/runs/pretrain)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--cpu", action="store_true", help="force CPU")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    try:
        cfg = load_config(args.profile, parse_overrides(args.set))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    from harmonylib.training.runs import TrainingInterrupted

    try:
        rec = pretrain_mini(
            cfg, args.out, progress=not args.no_progress, runs_dir=args.runs_dir, cpu=args.cpu
        )
    except TrainingInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return 3
    q = rec["quality"]
    print(
        f"scaling_factor {rec['scaling_factor']:.6g}; autoencoder test PSNR "
        f"{q['autoencoder_test']['psnr_db']:.2f} dB; UNet test loss {q['unet_test']}; "
        f"wall {rec['wall_times_s']}; weights {rec['weight_bytes']} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The mini pretraining recipe: stand-ins for the paper's pretrained inputs, trained on the train split.

The paper starts from pretrained weights (SD's ``sd-vae-ft-mse``, SD-inpainting, and DiffHarmony's
forward UNet, which it "adopts directly", §5.2). The mini profile has no such weights offline, so
this recipe makes them, once, and their outputs are committed under ``harmonylib/weights/mini``:

1. the mini base ``AutoencoderKL`` (``autoencoder`` recipe, ``arch="mini"``) on the built-in
   TRAIN split (composites and reals);
2. ``scaling_factor`` = 1 / std of its latents over the train split, as SD/LDM's ``scale_by_std``
   did (posterior *samples*, the latents the UNet recipe trains on; global std over all elements);
3. the forward DiffHarmony UNet (``unet`` recipe, fg-weighted loss) on that frozen VAE with the
   fixed mini empty-prompt embedding;
4. export (EMA weights) to ``out_dir``::

       vae/                     AutoencoderKL folder (scaling_factor set)
       unet/                    UNet2DConditionModel folder (9 input channels)
       empty_prompt_embedding/  EmptyPromptEmbedding folder, (1, 77, 32)
       scheduler/               the DDPM scaled-linear training scheduler config
       PROVENANCE.json          recipe config, seeds, git sha, packages, device, wall times,
                                held-out quality (test split) and the SHA-256 of every file

Weights are trained, evaluated and loaded in fp32; with ``pretrain.weights_dtype="float16"``
they are *stored* as fp16 safetensors (the 10 MB cap on committed weights) and diffusers loads
them back into fp32 models. The UNet stage trains on the exported (stored) VAE, so the committed
UNet matches the committed VAE bit for bit. Held-out numbers are measured on the exported files.

Each stage is an ``ensure_trained`` run under ``<runs_dir>`` (default
``results/<profile>/runs/pretrain``), so an interrupted recipe resumes and a finished one is reused;
the UNet run's folder name carries the VAE's hash, so a new VAE never reuses an old UNet.

``python -m harmonylib.training.pretrain --profile mini`` (``make pretrain-mini``) writes the
committed folder; ``--profile smoke --out DIR`` is the CI-size run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from harmonylib.config import Config, ConfigError, load_config, parse_overrides, to_dict
from harmonylib.io import atomic_write_json
from harmonylib.paths import resolve, results_dir
from harmonylib.reproducibility import derive_seed

PROVENANCE_FILE = "PROVENANCE.json"
COMPONENTS = ("vae", "unet", "empty_prompt_embedding", "scheduler")


# ---- configs of the two stages --------------------------------------------------------------------


def autoencoder_stage_config(cfg: Config) -> Config:
    """``cfg`` with ``train.autoencoder`` = ``pretrain.autoencoder``."""
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, autoencoder=cfg.pretrain.autoencoder)
    )


def unet_stage_config(cfg: Config, vae_dir: str | os.PathLike) -> Config:
    """``cfg`` with ``train.unet`` = ``pretrain.unet`` on the frozen VAE at ``vae_dir``, random init."""
    unet = dataclasses.replace(cfg.pretrain.unet, vae=str(vae_dir), init=None)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, unet=unet))


def stage_prompt_embeds(cfg: Config) -> torch.Tensor:
    """The fixed empty-prompt embedding the UNet stage trains with, (1, 77, C) (as ``build_unet_spec``)."""
    from harmonylib.training.recipes import _init_seed, mini_empty_prompt_embedding

    arch = cfg.pretrain.unet.arch
    if arch == "mini":
        return mini_empty_prompt_embedding(_init_seed(cfg, "unet", "prompt"))
    if arch == "tiny":
        from harmonylib.models.tiny import tiny_empty_prompt_embedding

        return tiny_empty_prompt_embedding(_init_seed(cfg, "unet", "unet")).embeds.detach()
    raise ValueError(f"pretrain.unet.arch: {arch!r} has no fixed prompt here (use mini or tiny)")


# ---- statistics and held-out quality --------------------------------------------------------------


def _loader(dataset, batch_size: int):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)


@torch.no_grad()
def latent_std(vae, dataset, batch_size: int, seed: int, max_batches: int | None = None) -> float:
    """Global std of posterior-sampled latents of every composite and real in ``dataset``.

    LDM's ``scale_by_std`` uses 1 / std of ``encode(x).sample()``; here over the whole split, not
    one batch (accumulated in float64).
    """
    g = torch.Generator().manual_seed(seed)
    n, s, s2 = 0, 0.0, 0.0
    for i, batch in enumerate(_loader(dataset, batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        x = torch.cat([batch["composite"], batch["real"]])  # (2B, 3, H, W)
        z = vae.encode(x).latent_dist.sample(g).double()  # (2B, 4, h, w)
        n += z.numel()
        s += float(z.sum())
        s2 += float((z * z).sum())
    mean = s / n
    return math.sqrt(max(s2 / n - mean * mean, 0.0))


@torch.no_grad()
def reconstruction_psnr(vae, dataset, batch_size: int) -> dict[str, float]:
    """Mean per-image PSNR (dB, images in [0, 1]) of ``decode(encode(x).mode())`` on composites and reals."""
    vals = {"composite": [], "real": []}
    for batch in _loader(dataset, batch_size):
        for key in vals:
            x = batch[key]  # (B, 3, H, W) in [-1, 1]
            rec = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
            mse = ((rec - x) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)  # (B,)
            vals[key] += (10 * torch.log10(1.0 / mse)).tolist()
    allv = vals["composite"] + vals["real"]
    return {
        "psnr_db": sum(allv) / len(allv),
        "psnr_db_composites": sum(vals["composite"]) / len(vals["composite"]),
        "psnr_db_reals": sum(vals["real"]) / len(vals["real"]),
        "images": len(allv),
    }


@torch.no_grad()
def denoising_loss(unet, vae, prompt, dataset, cfg: Config, draws: int, batch_size: int) -> dict[str, float]:
    """The UNet's held-out training objective on ``dataset`` (fixed seed, ``draws`` noise/t per image).

    Returns the fg-weighted loss it was trained on and the plain epsilon MSE (predicting zero
    scores 1.0 on the latter).
    """
    from harmonylib.models.scheduler import make_training_scheduler
    from harmonylib.training.objectives import diffusion_loss

    rc = cfg.pretrain.unet
    sched = make_training_scheduler()
    tot, tot_mse, n = 0.0, 0.0, 0
    for d in range(draws):
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "pretrain", "eval-unet", d) % (2**31))
        for batch in _loader(dataset, batch_size):
            loss, logs = diffusion_loss(
                unet,
                batch,
                g,
                vae=vae,
                noise_scheduler=sched,
                prompt_embeds=prompt,
                direction=rc.direction,
                loss=rc.loss,
                fg_weight_max=rc.fg_weight_max,
                sample_posterior=rc.sample_posterior,
            )
            b = batch["real"].shape[0]
            tot += float(loss) * b
            tot_mse += logs["mse"] * b
            n += b
    return {f"{rc.loss}_loss": tot / n, "eps_mse": tot_mse / n, "images": n // draws, "draws": draws}


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
        # Shards below 5 MB: the repository keeps every committed file small.
        model.to(dtype).save_pretrained(tmp, safe_serialization=True, max_shard_size=MAX_SHARD_SIZE)
        model.to(torch.float32)
    finally:
        dlogging.set_verbosity(level)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def file_hashes(out_dir: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of every file under ``out_dir`` except ``PROVENANCE.json``, by relative POSIX path."""
    from harmonylib.provenance import sha256_file

    root = Path(out_dir)
    return {
        f.relative_to(root).as_posix(): sha256_file(f)
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.name != PROVENANCE_FILE
    }


def weight_bytes(out_dir: str | os.PathLike) -> int:
    """Total bytes of the ``*.safetensors`` files under ``out_dir``."""
    return sum(f.stat().st_size for f in Path(out_dir).rglob("*.safetensors"))


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
    from harmonylib.provenance import provenance
    from harmonylib.training.recipes import harmony_dataset
    from harmonylib.training.runs import ensure_trained

    pc = cfg.pretrain
    out = Path(out_dir) if out_dir is not None else resolve(pc.out_dir)
    runs = Path(runs_dir) if runs_dir is not None else results_dir(cfg.profile, "runs") / "pretrain"
    dtype = torch.float16 if pc.weights_dtype == "float16" else torch.float32
    out.mkdir(parents=True, exist_ok=True)
    wall: dict[str, float] = {}

    # 1. the base autoencoder
    t0 = time.perf_counter()
    ae_cfg = autoencoder_stage_config(cfg)
    ae_run = ensure_trained(ae_cfg, "autoencoder", run_dir=runs / "autoencoder", progress=progress, cpu=cpu)
    wall["autoencoder_s"] = time.perf_counter() - t0

    # 2. scaling_factor from the train split's latents (EMA weights, as exported)
    t0 = time.perf_counter()
    ra = pc.autoencoder
    train_ae = harmony_dataset(cfg, ra.resolution, ra.resize, split="train")
    vae = ae_run.load_model(ema=True).eval()
    # fp16 storage: measure on the weights as stored
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(p.to(dtype).to(torch.float32))
    std = latent_std(
        vae,
        train_ae,
        pc.eval_batch_size,
        derive_seed(cfg.seed, "pretrain", "latent-std") % (2**31),
        pc.scaling_batches,
    )
    scaling = float(f"{1.0 / std:.6g}")
    vae.register_to_config(scaling_factor=scaling)
    _save_component(vae, out / "vae", dtype)
    wall["scaling_s"] = time.perf_counter() - t0

    # 3. the forward DiffHarmony UNet on the exported VAE
    from harmonylib.provenance import sha256_tree

    t0 = time.perf_counter()
    vae_sha = sha256_tree(out / "vae")
    un_cfg = unet_stage_config(cfg, out / "vae")
    un_run = ensure_trained(
        un_cfg,
        "unet",
        run_dir=runs / f"unet-{pc.unet.direction}-vae{vae_sha[:12]}",
        progress=progress,
        cpu=cpu,
    )
    wall["unet_s"] = time.perf_counter() - t0

    # 4. export the rest
    t0 = time.perf_counter()
    prompt = stage_prompt_embeds(cfg)  # (1, 77, C)
    _save_component(un_run.load_model(ema=True), out / "unet", dtype)
    _save_component(EmptyPromptEmbedding.from_tensor(prompt), out / "empty_prompt_embedding", torch.float32)
    sched_tmp = out / "scheduler.tmp"
    shutil.rmtree(sched_tmp, ignore_errors=True)
    make_training_scheduler().save_pretrained(sched_tmp)
    shutil.rmtree(out / "scheduler", ignore_errors=True)
    os.replace(sched_tmp, out / "scheduler")

    # 5. held-out quality, on the exported files
    vae_x = AutoencoderKL.from_pretrained(out / "vae", torch_dtype=torch.float32).eval()
    unet_x = UNet2DConditionModel.from_pretrained(out / "unet", torch_dtype=torch.float32).eval()
    prompt_x = EmptyPromptEmbedding.from_pretrained(out / "empty_prompt_embedding").embeds.detach()
    test_ae = harmony_dataset(cfg, ra.resolution, ra.resize, split="test")
    test_un = harmony_dataset(cfg, pc.unet.resolution, pc.unet.resize, split="test")
    quality = {
        "autoencoder_test": reconstruction_psnr(vae_x, test_ae, pc.eval_batch_size),
        "autoencoder_train": reconstruction_psnr(vae_x, train_ae, pc.eval_batch_size),
        "unet_test": denoising_loss(
            unet_x, vae_x, prompt_x, test_un, cfg, pc.eval_timesteps_per_image, pc.eval_batch_size
        ),
    }
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
            "1 / std of posterior-sampled latents (global, all elements) of every composite and real "
            f"of the train split, EMA weights as stored; std = {std:.6g}"
        ),
        latent_std=std,
        runs={"autoencoder": _run_info(ae_run), "unet": _run_info(un_run)},
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

"""Statistics and held-out quality of the pretraining stages (:mod:`harmonylib.training.pretrain`).

Each function takes the exported (stored) models and a dataset, uses a fixed seed, and returns
plain numbers for ``PROVENANCE.json``.
"""

from __future__ import annotations

import math

import torch

from harmonylib.config import Config
from harmonylib.reproducibility import derive_seed

# ---- statistics and held-out quality --------------------------------------------------------------


def _loader(dataset, batch_size: int):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)


@torch.no_grad()
def latent_std(
    vae,
    dataset,
    batch_size: int,
    seed: int,
    max_batches: int | None = None,
    keys: tuple[str, ...] = ("composite", "real"),
) -> float:
    """Global std of posterior-sampled latents of every image (``keys`` of each item) in ``dataset``.

    LDM's ``scale_by_std`` uses 1 / std of ``encode(x).sample()``; here over the whole dataset, not
    one batch (accumulated in float64).
    """
    g = torch.Generator().manual_seed(seed)
    n, s, s2 = 0, 0.0, 0.0
    for i, batch in enumerate(_loader(dataset, batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        x = torch.cat([batch[k] for k in keys])  # (kB, 3, H, W)
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
    sched = make_training_scheduler(prediction_type=rc.prediction_type)
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


@torch.no_grad()
def inpainting_heldout_loss(
    unet, vae, prompt, dataset, cfg: Config, draws: int, batch_size: int
) -> dict[str, float]:
    """SD-inpainting's objective of stage (c) on the reals of ``dataset`` (held-out photos), with
    random masks; a fixed seed and ``draws`` (mask, noise, t) per image. Predicting 0 scores 1.0."""
    from harmonylib.models.scheduler import make_training_scheduler
    from harmonylib.training.inpainting import inpainting_loss

    rc = cfg.pretrain.inpainting
    sched = make_training_scheduler()
    tot, hole, n = 0.0, 0.0, 0
    for d in range(draws):
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "pretrain", "eval-inpaint", d) % (2**31))
        for batch in _loader(dataset, batch_size):
            loss, logs = inpainting_loss(
                unet,
                {"image": batch["real"]},
                g,
                noise_scheduler=sched,
                prompt_embeds=prompt,
                scaling_factor=float(vae.config.scaling_factor),
                vae=vae,
                mask_mix=tuple(rc.mask_mix),
                sample_posterior=rc.sample_posterior,
            )
            b = batch["real"].shape[0]
            tot, hole, n = tot + float(loss) * b, hole + logs["hole_mse"] * b, n + b
    return {"eps_mse": tot / n, "hole_eps_mse": hole / n, "images": n // draws, "draws": draws}

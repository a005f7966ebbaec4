"""How well the UNet knows the real image at each noise level of inference: its x0 error.

At inference the sampler visits a few noise levels (5 Euler-ancestral steps: t = 999, 749, 500,
250, 0 on the SD schedule; ``harmonylib.models.scheduler``). At each one the UNet's ε estimate
implies an estimate of the clean latent,

    x0 = x_t − σ_t · ε̂          (Euler / k-diffusion form; x_t = x0 + σ_t · ε)

which is the DDPM form x0 = (x_t' − sqrt(1 − ᾱ) ε̂) / sqrt(ᾱ) with x_t' = x_t / sqrt(σ² + 1).
Here x_t is made from the *real* image's latent and seeded noise, and the estimate is compared
with that latent on the foreground (the mask at latent size, as the UNet sees it). The baseline
is "copy the composite's latents": x0 = E(composite), the answer a model that changes nothing
would give. A UNet that cannot beat the copy at a level throws the trajectory away there.

The UNet input is the pipeline's own: its resize and mask binarisation, its 9-channel layout
(``prepare_unet_input``: noisy latents scaled by the scheduler + mask + composite latents) and
its empty-prompt embedding. Latents are posterior *modes* (the pipeline samples the composite's
posterior; the mode keeps the diagnostic free of that noise and makes the copy baseline exact).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from diffusers.utils.torch_utils import randn_tensor

from harmonylib.imageproc import threshold_mask
from harmonylib.models.scheduler import DEFAULT_NUM_INFERENCE_STEPS
from harmonylib.models.unet import prepare_mask_latents, prepare_unet_input

# The pipeline's own input conversion and resize, so the diagnostic sees what inference sees.
from harmonylib.pipeline.processing import _image_to_array, _mask_to_array, _resize_image, _resize_mask
from harmonylib.reproducibility import derive_seed, make_generator

X0_COLUMNS = (
    "image",
    "subset",
    "size",
    "level",
    "timestep",
    "sigma",
    "n_fg_latent",
    "unet_x0_mse",
    "copy_mse",
)


def _squash(sample: Any, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real, composite in [-1, 1] (1, 3, S, S) and binary mask (1, 1, S, S), squashed as inference does."""
    real, comp = (
        torch.from_numpy(_image_to_array(p, str(p))).permute(2, 0, 1)[None]  # (1, 3, H, W) in [0, 1]
        for p in (sample.real, sample.composite)
    )
    mask = torch.from_numpy(threshold_mask(_mask_to_array(sample.mask, str(sample.mask))))[None, None]
    hw = (size, size)
    real, comp = ((_resize_image(x, hw).clamp(0, 1) * 2 - 1) for x in (real, comp))  # (1, 3, S, S)
    return real, comp, _resize_mask(mask, hw)  # mask (1, 1, S, S) in {0, 1}


def _x0_from_prediction(
    scheduler: Any, model_output: torch.Tensor, x_t: torch.Tensor, sigma: float
) -> torch.Tensor:
    """x0 from the UNet output in the Euler sigma form (as ``EulerAncestralDiscreteScheduler.step``)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return x_t - sigma * model_output
    if kind == "v_prediction":
        return model_output * (-sigma / (sigma**2 + 1) ** 0.5) + x_t / (sigma**2 + 1)
    raise ValueError(f"scheduler prediction_type {kind!r} is not supported (epsilon or v_prediction)")


def foreground_mse(x0: torch.Tensor, target: torch.Tensor, fg: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE over foreground latents: x0, target (B, 4, h, w), fg (B, 1, h, w) in {0, 1} -> (B,).

    NaN where the mask has no foreground at latent size.
    """
    n = fg.sum(dim=(1, 2, 3)) * x0.shape[1]  # (B,) foreground latent values
    err = ((x0 - target) ** 2 * fg).sum(dim=(1, 2, 3)) / n.clamp(min=1)  # (B,)
    return torch.where(n > 0, err, torch.full_like(err, float("nan")))


@torch.no_grad()
def unet_x0_errors(
    pipe: Any,
    samples: Sequence[Any],
    size: int,
    num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
    seed: int = 0,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Foreground latent MSE of the UNet's x0 estimate and of the copy baseline, at each noise level.

    Args:
        pipe: a :class:`~harmonylib.pipeline.DiffHarmonyPipeline` (its VAE, UNet, scheduler and
            empty prompt are used; nothing is sampled through it).
        samples: objects with ``.name``, ``.subset``, ``.real``, ``.composite``, ``.mask``.
        size: square processing side in pixels (the inference squash), a multiple of the VAE's
            scale factor.
        num_inference_steps: the sampler's steps; their noise levels are the ones measured.
        seed: base of the per-sample noise seeds, (seed, "x0", name): one ε per sample, shared
            by every level, so a result depends neither on the batch nor on the order.
        batch_size: composites per UNet call (results agree across batch sizes to float tolerance).

    Returns:
        One row per (sample, level), in sample order then level, with columns :data:`X0_COLUMNS`. ``unet_x0_mse`` and
        ``copy_mse`` are NaN where the mask has no foreground at latent size (``n_fg_latent`` 0).
    """
    if size % pipe.vae_scale_factor:
        raise ValueError(
            f"size must be a multiple of {pipe.vae_scale_factor} (the VAE's scale factor), got {size}"
        )
    vae, unet = pipe.vae, pipe.unet
    device, vae_dtype, unet_dtype = pipe._execution_device, vae.dtype, unet.dtype
    sf = vae.config.scaling_factor
    scheduler = copy.deepcopy(pipe.scheduler)  # the pipeline's own stays untouched
    scheduler.set_timesteps(num_inference_steps, device=device)
    timesteps = scheduler.timesteps.clone()
    sigmas = [float(s) for s in scheduler.sigmas[: len(timesteps)]]

    rows: list[dict[str, Any]] = []
    for start in range(0, len(samples), batch_size):
        batch = list(samples[start : start + batch_size])
        b = len(batch)
        real, comp, mask = (
            torch.cat(t).to(device) for t in zip(*(_squash(s, size) for s in batch), strict=True)
        )
        z_real = vae.encode(real.to(vae_dtype)).latent_dist.mode().float() * sf  # (b, 4, h, w), scaled
        z_comp = vae.encode(comp.to(vae_dtype)).latent_dist.mode().float() * sf  # (b, 4, h, w)
        latent_hw = tuple(z_real.shape[-2:])
        fg = prepare_mask_latents(mask, latent_hw)  # (b, 1, h, w) in {0, 1}, the UNet's mask channel
        n_fg = fg.sum(dim=(1, 2, 3))  # (b,) foreground latent positions
        gens = [make_generator(derive_seed(seed, "x0", s.name)) for s in batch]
        noise = randn_tensor(z_real.shape, generator=gens, device=device, dtype=torch.float32)  # (b, 4, h, w)
        prompt = pipe._prompt_embeds(b, device, unet_dtype)  # (b, 77, C), the pipeline's text condition
        copy_err = foreground_mse(z_comp, z_real, fg)
        for level, (t, sigma) in enumerate(zip(timesteps, sigmas, strict=True)):
            x_t = z_real + sigma * noise  # (b, 4, h, w): the real latent at this noise level
            scheduler.set_timesteps(num_inference_steps, device=device)  # resets the step index
            scheduler.set_begin_index(level)
            scaled = scheduler.scale_model_input(x_t, t)  # x_t / sqrt(sigma^2 + 1)
            unet_in = prepare_unet_input(
                scaled.to(unet_dtype), fg.to(unet_dtype), z_comp.to(unet_dtype)
            )  # (b, 9, h, w)
            eps = unet(unet_in, t, encoder_hidden_states=prompt).sample.float()  # (b, 4, h, w)
            unet_err = foreground_mse(_x0_from_prediction(scheduler, eps, x_t, sigma), z_real, fg)
            for j, s in enumerate(batch):
                rows.append(
                    {
                        "_order": (start + j, level),
                        "image": s.name,
                        "subset": s.subset,
                        "size": size,
                        "level": level,
                        "timestep": float(t),
                        "sigma": sigma,
                        "n_fg_latent": int(n_fg[j]),
                        "unet_x0_mse": float(unet_err[j]),
                        "copy_mse": float(copy_err[j]),
                    }
                )
    rows.sort(key=lambda r: r["_order"])  # sample-major, whatever the batch size
    return pd.DataFrame(rows, columns=list(X0_COLUMNS))


def summarise_x0(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SE per (split, size, level) of the UNet's and the copy's error, and how often the UNet wins."""
    from harmonylib.diagnostics.common import summarise

    by = [c for c in ("split", "size", "level", "timestep", "sigma") if c in per_image]
    out = summarise(per_image, by, ["unet_x0_mse", "copy_mse"])
    valid = per_image.dropna(subset=["unet_x0_mse", "copy_mse"])
    wins = valid.assign(win=valid["unet_x0_mse"] < valid["copy_mse"]).groupby(by, sort=False)["win"].mean()
    return out.merge(wins.rename("unet_beats_copy").reset_index(), on=by, how="left")

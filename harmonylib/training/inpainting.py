"""The SD-inpainting stand-in: random inpainting masks and SD-inpainting's training objective.

The paper's UNet starts from SD-inpainting (§5.2), which was trained (model card of
``runwayml/stable-diffusion-inpainting``) with epsilon-prediction on a 9-channel input

    cat([noisy latents (4), mask at latent size (1), latents of the masked image (4)])

where the masked image is ``image * (mask < 0.5)`` (the hole zeroed in [-1, 1], i.e. mid-grey)
before encoding, "synthetic masks" and, "in 25% of cases, mask everything". diffusers'
``StableDiffusionInpaintPipeline`` builds that input the same way (``prepare_mask_and_masked_image``:
``masked_image = image * (mask < 0.5)``; ``prepare_mask_latents``: the mask resized to the latent
grid with ``interpolate``'s default "nearest"; then ``cat([latents, mask, masked_image_latents])``).
Mask convention there and here: 1 = the hole to paint, 0 = kept.

The model card does not say which synthetic masks; its training code follows LaMa's generator of
thick irregular strokes and boxes. Our mix (:data:`MASK_KINDS`, :data:`DEFAULT_MASK_MIX`):

- ``full`` 25%: the whole image is the hole (the masked image is all zeros), the model card's 25%;
- ``rectangles`` 37.5%: 1-3 axis-aligned boxes, sides U(0.1, 0.7) of the image side;
- ``strokes`` 37.5%: 1-4 thick brush polylines of 2-6 vertices, width U(0.04, 0.16) of the side.

The remaining 75% is split evenly between LaMa's two families. Harmonization masks are object
silhouettes and boxes, which both families cover between them.

The objective takes either pixel images (masks drawn here, both images encoded by the frozen VAE)
or cached posterior moments of both (:mod:`harmonylib.training.latent_cache`), so a long UNet run
never calls the VAE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image, ImageDraw
from torch import nn

from harmonylib.models.unet import prepare_mask_latents, prepare_unet_input

MASK_KINDS = ("full", "rectangles", "strokes")
# Probabilities of MASK_KINDS (module docstring): SD-inpainting's 25% "mask everything", the rest
# split evenly between boxes and strokes.
DEFAULT_MASK_MIX = (0.25, 0.375, 0.375)


def check_mask_mix(mix: tuple[float, ...]) -> tuple[float, ...]:
    """``mix`` as probabilities of :data:`MASK_KINDS`; ``ValueError`` on a wrong length or sum."""
    if (
        len(mix) != len(MASK_KINDS)
        or any(p < 0 for p in mix)
        or not math.isclose(sum(mix), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"mask_mix must give {len(MASK_KINDS)} non-negative probabilities of {list(MASK_KINDS)} "
            f"summing to 1, got {list(mix)}"
        )
    return tuple(float(p) for p in mix)


def _u(g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _draw_rectangles(draw: ImageDraw.ImageDraw, h: int, w: int, g: torch.Generator) -> None:
    for _ in range(_randint(g, 1, 3)):
        bw, bh = max(1, round(_u(g, 0.1, 0.7) * w)), max(1, round(_u(g, 0.1, 0.7) * h))
        x0, y0 = round(_u(g) * (w - bw)), round(_u(g) * (h - bh))
        draw.rectangle([x0, y0, x0 + bw - 1, y0 + bh - 1], fill=255)


def _draw_strokes(draw: ImageDraw.ImageDraw, h: int, w: int, g: torch.Generator) -> None:
    side = min(h, w)
    for _ in range(_randint(g, 1, 4)):
        width = max(1, round(_u(g, 0.04, 0.16) * side))
        x, y = _u(g) * w, _u(g) * h
        pts = [(x, y)]
        for _ in range(_randint(g, 1, 5)):  # 2-6 vertices: a random walk of segments
            angle, length = _u(g, 0.0, 2 * math.pi), _u(g, 0.1, 0.4) * side
            x = min(max(x + length * math.cos(angle), 0.0), w - 1.0)
            y = min(max(y + length * math.sin(angle), 0.0), h - 1.0)
            pts.append((x, y))
        draw.line(pts, fill=255, width=width)
        r = width / 2  # round joints and caps, as a brush
        for px, py in pts:
            draw.ellipse([px - r, py - r, px + r, py + r], fill=255)


def random_inpainting_mask(
    height: int, width: int, generator: torch.Generator, mix: tuple[float, ...] = DEFAULT_MASK_MIX
) -> tuple[torch.Tensor, str]:
    """One random inpainting mask and its kind, drawn only from ``generator``.

    Args:
        height, width: mask size in pixels.
        generator: a CPU ``torch.Generator``; the same state gives the same mask.
        mix: probabilities of :data:`MASK_KINDS`.

    Returns:
        (mask (1, H, W) float in {0, 1} with 1 = hole, kind). A rectangle or stroke mask that came
        out empty (possible only for tiny sizes) is replaced by one centre pixel, so every
        non-``full`` mask has a hole.
    """
    mix = check_mask_mix(mix)
    r, acc, kind = _u(generator), 0.0, MASK_KINDS[-1]
    for k, p in zip(MASK_KINDS, mix, strict=True):
        acc += p
        if r < acc:
            kind = k
            break
    if kind == "full":
        return torch.ones(1, height, width), kind
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    (_draw_rectangles if kind == "rectangles" else _draw_strokes)(draw, height, width, generator)
    mask = torch.from_numpy((np.asarray(canvas) > 127).astype(np.float32))[None]  # (1, H, W)
    if mask.sum() == 0:
        mask[0, height // 2, width // 2] = 1.0
    return mask, kind


def random_inpainting_masks(
    batch_size: int,
    height: int,
    width: int,
    generator: torch.Generator,
    mix: tuple[float, ...] = DEFAULT_MASK_MIX,
) -> torch.Tensor:
    """``batch_size`` masks of :func:`random_inpainting_mask`, (B, 1, H, W), drawn in order from ``generator``."""
    return torch.stack([random_inpainting_mask(height, width, generator, mix)[0] for _ in range(batch_size)])


def masked_image(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """diffusers' ``image * (mask < 0.5)``: the hole set to 0 (mid-grey in [-1, 1]), (B, 3, H, W)."""
    return image * (mask < 0.5).to(image.dtype)


def posterior_moments(vae: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The frozen VAE's posterior parameters ``cat[mean, logvar]``, (B, 2 * latent channels, h, w)."""
    return vae.encode(images.to(vae.dtype)).latent_dist.parameters


def inpainting_loss(
    unet: nn.Module,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    *,
    noise_scheduler: Any,
    prompt_embeds: torch.Tensor,
    scaling_factor: float,
    vae: nn.Module | None = None,
    mask_mix: tuple[float, ...] = DEFAULT_MASK_MIX,
    sample_posterior: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SD-inpainting's epsilon-prediction loss (plain MSE on the noise) on random masks.

    Two kinds of batch:

    - pixels: ``image`` (B, 3, H, W) in [-1, 1], and optionally ``mask`` (B, 1, H, W) (else drawn
      here with :func:`random_inpainting_masks`); both the image and :func:`masked_image` are
      encoded by ``vae``;
    - cached: ``moments`` and ``masked_moments`` (B, 8, h, w), the VAE posteriors' ``cat[mean,
      logvar]`` of the image and of its masked image, and ``mask_latents`` (B, 1, h, w), the mask
      already on the latent grid.

    Both give the same numbers for the same inputs and generator: random draws come in the order
    (masks), posterior sample of the image, posterior sample of the masked image, noise, timesteps.

    Args:
        unet: the 9-channel ``UNet2DConditionModel``.
        batch: see above.
        generator: the only RNG.
        noise_scheduler: the training ``DDPMScheduler``; t ~ U{0..T-1}, ``add_noise``.
        prompt_embeds: (1, L, C), the fixed empty-prompt embedding.
        scaling_factor: the VAE's ``scaling_factor`` (latents are multiplied by it).
        vae: the frozen ``AutoencoderKL`` (pixel batches only).
        mask_mix: probabilities of :data:`MASK_KINDS` for masks drawn here.
        sample_posterior: latents are posterior samples (SD's training) or the mean.

    Returns:
        (loss, {"mse": the same loss, "hole_mse": MSE inside the hole on the latent grid}).
    """
    if "moments" in batch:
        moments, masked_moments = batch["moments"].float(), batch["masked_moments"].float()
        mask_lat = batch["mask_latents"].float()  # (B, 1, h, w)
    else:
        if vae is None:
            raise ValueError("inpainting_loss: a pixel batch (key 'image') needs the frozen vae")
        image = batch["image"]
        b, _, h, w = image.shape
        mask = batch["mask"] if "mask" in batch else random_inpainting_masks(b, h, w, generator, mask_mix)
        mask = mask.to(image.device, image.dtype)  # (B, 1, H, W)
        with torch.no_grad():
            moments = posterior_moments(vae, image).float()  # (B, 8, h, w)
            masked_moments = posterior_moments(vae, masked_image(image, mask)).float()  # (B, 8, h, w)
        mask_lat = prepare_mask_latents(mask.float(), moments.shape[-2:])  # (B, 1, h, w)
    dist, dist_m = DiagonalGaussianDistribution(moments), DiagonalGaussianDistribution(masked_moments)
    z0 = (dist.sample(generator) if sample_posterior else dist.mode()) * scaling_factor  # (B, 4, h, w)
    zm = (dist_m.sample(generator) if sample_posterior else dist_m.mode()) * scaling_factor  # (B, 4, h, w)
    bsz = z0.shape[0]
    noise = randn_tensor(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)  # (B, 4, h, w)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (bsz,), generator=generator).to(
        z0.device
    )
    zt = noise_scheduler.add_noise(z0, noise, t)  # (B, 4, h, w)
    unet_in = prepare_unet_input(zt, mask_lat, zm)  # (B, 9, h, w): latents, mask (index 4), masked latents
    ehs = prompt_embeds.to(device=z0.device, dtype=z0.dtype).expand(bsz, -1, -1)  # (B, L, C)
    eps = unet(unet_in, t, encoder_hidden_states=ehs).sample  # (B, 4, h, w)
    loss = F.mse_loss(eps.float(), noise.float())
    with torch.no_grad():
        se = (eps.float() - noise.float()).pow(2) * mask_lat  # (B, 4, h, w)
        hole = float(se.sum() / (mask_lat.sum() * se.shape[1]).clamp_min(1.0))
    return loss, {"mse": float(loss.detach()), "hole_mse": hole}

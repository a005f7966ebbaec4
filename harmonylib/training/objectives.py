"""Training objectives: one small, pure function per model, testable on tiny tensors.

Every objective has the signature ``objective(model, batch, generator, **settings) -> (loss, logs)``
once its frozen helpers are bound (``functools.partial``): ``model`` is the module being trained
(possibly wrapped by DDP, so only its ``forward`` is called), ``batch`` a dict of tensors on the
model's device, ``generator`` a CPU ``torch.Generator`` that is the only source of randomness
(the loop derives it from (seed, step, micro-batch), so a resumed run draws the same numbers).
``loss`` is a scalar tensor; ``logs`` maps names to floats for ``metrics.csv``.

Images are float (B, 3, H, W) in [-1, 1]; masks float (B, 1, H, W) in {0, 1}.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

from harmonylib.models.unet import prepare_mask_latents, prepare_unet_input

DIRECTIONS = ("forward", "inverse")
UNET_LOSSES = ("fg_weighted", "mse")
VAE_LOSSES = ("l2", "l1")

# torchvision's ImageNet statistics (the authors' classifier transform, official-implementation.md §5).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def target_and_condition(batch: dict[str, torch.Tensor], direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(target image, condition image) of a batch: (real, composite) forward, swapped for inverse.

    Inverse harmonization (paper §4.1, §5.2) takes the real image and mask as condition and makes
    the composite.
    """
    _check_choice("direction", direction, DIRECTIONS)
    if direction == "forward":
        return batch["real"], batch["composite"]
    return batch["composite"], batch["real"]


# --------------------------------------------------------------------------------------------------
# 1. Diffusion UNet (paper Eq. 1; official-implementation.md §2)
# --------------------------------------------------------------------------------------------------


def fg_weighted_mse(
    pred: torch.Tensor, target: torch.Tensor, mask_latents: torch.Tensor, max_weight: float = 5.0
) -> torch.Tensor:
    """DiffHarmony's released loss: foreground-only squared error, re-weighted by the inverse fg ratio.

    ``mean_{b,c}[ mean_{h,w}((pred - target)^2 * M) * clamp(hw / sum M, 1, max_weight) ]``. For a
    foreground ratio >= 1/max_weight this is the plain foreground MSE; smaller objects get less
    weight. Background latents are not supervised at all (evaluation pastes the GT background).

    Args:
        pred, target: (B, C, h, w).
        mask_latents: (B, 1, h, w) in {0, 1}, the nearest-downsampled mask.
        max_weight: the clamp's upper bound (authors: 5).

    Returns:
        Scalar loss. An empty mask contributes 0 (hw / 0 = inf is clamped to ``max_weight``).
    """
    h, w = pred.shape[-2:]
    se = (pred.float() - target.float()) ** 2 * mask_latents  # (B, C, h, w)
    per_channel = se.mean(dim=(2, 3))  # (B, C)
    ratio_weight = (h * w / mask_latents.float().sum(dim=(2, 3))).clamp(1.0, max_weight)  # (B, 1)
    return (per_channel * ratio_weight).mean()


def diffusion_loss(
    unet: nn.Module,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    *,
    vae: nn.Module,
    noise_scheduler: Any,
    prompt_embeds: torch.Tensor,
    direction: str = "forward",
    loss: str = "fg_weighted",
    fg_weight_max: float = 5.0,
    sample_posterior: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Denoising loss of the DiffHarmony UNet: epsilon prediction, or v with a v_prediction scheduler.

    The paper takes its UNet recipe from DiffHarmony [52] ("we adopt the pre-trained DiffHarmony
    directly", §5.2; the inverse model is "mostly consistent", §5.2), so the default loss is the
    one DiffHarmony's released trainer optimises (``loss="fg_weighted"``, see
    :func:`fg_weighted_mse`), not the plain Eq. 1 MSE (``loss="mse"``).

    Input = ``cat[noisy target latents (4), nearest-downsampled mask (1), condition latents (4)]``
    with latents = sampled posterior * ``vae.config.scaling_factor``; forward: target = real,
    condition = composite; inverse swaps them. Noise ~ N(0, 1), t ~ U{0..T-1}, DDPM ``add_noise``.

    Args:
        unet: the 9-channel ``UNet2DConditionModel`` (or its DDP wrapper).
        batch: ``composite``, ``real`` (B, 3, H, W); ``mask`` (B, 1, H, W).
        generator: the only RNG (posterior samples, noise, timesteps, in that order).
        vae: frozen ``AutoencoderKL``; noise_scheduler: training ``DDPMScheduler``;
        prompt_embeds: (1, L, C) constant empty-prompt embedding.
        direction, loss, fg_weight_max, sample_posterior: see the config (``train.unet``).

    Returns:
        (loss, {"mse": plain latent MSE}).
    """
    _check_choice("loss", loss, UNET_LOSSES)
    target_img, cond_img = target_and_condition(batch, direction)
    mask = batch["mask"]
    scaling = vae.config.scaling_factor
    with torch.no_grad():
        dist_t = vae.encode(target_img.to(vae.dtype)).latent_dist
        dist_c = vae.encode(cond_img.to(vae.dtype)).latent_dist
        z0 = (dist_t.sample(generator) if sample_posterior else dist_t.mode()) * scaling  # (B, 4, h, w)
        zc = (dist_c.sample(generator) if sample_posterior else dist_c.mode()) * scaling  # (B, 4, h, w)
    bsz = z0.shape[0]
    mask_lat = prepare_mask_latents(mask.to(z0.dtype), z0.shape[-2:])  # (B, 1, h, w)
    noise = randn_tensor(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)  # (B, 4, h, w)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (bsz,), generator=generator)  # (B,)
    t = t.to(z0.device)
    zt = noise_scheduler.add_noise(z0, noise, t)  # (B, 4, h, w)
    unet_in = prepare_unet_input(zt, mask_lat, zc)  # (B, 9, h, w)
    ehs = prompt_embeds.to(device=z0.device, dtype=z0.dtype).expand(bsz, -1, -1)  # (B, L, C)
    pred = unet(unet_in, t, encoder_hidden_states=ehs).sample  # (B, 4, h, w)
    # The target follows the scheduler's prediction_type, as diffusers' training scripts do.
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = noise_scheduler.get_velocity(z0, noise, t)  # (B, 4, h, w)
    else:
        raise ValueError(
            f"noise_scheduler prediction_type {kind!r} is not supported (epsilon or v_prediction)"
        )
    mse = F.mse_loss(pred.float(), target.float())
    value = fg_weighted_mse(pred, target, mask_lat, fg_weight_max) if loss == "fg_weighted" else mse
    return value, {"mse": float(mse.detach())}


# --------------------------------------------------------------------------------------------------
# 2. Harmony-VAE (paper §3.2, Eq. 2; official-implementation.md §8.1)
# --------------------------------------------------------------------------------------------------


def harmony_vae_loss(
    vae: nn.Module,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    *,
    direction: str = "forward",
    loss: str = "l2",
    sample_posterior: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Reconstruct the target from its own latent, conditioned on (condition image, mask).

    Eq. 2: ``L = || I_hat - D(E(I_hat), E_c(I, M)) ||^2`` (forward); with ``batch["latent"]``
    (``latent: denoised``) the decoder's input is that ``z'_0`` instead of ``E(I_hat)``. Inverse (§4.1): target =
    composite, condition = (real, mask). ``E(I_hat)`` is a posterior sample as in the authors'
    code (both posteriors sampled). ``loss="l2"`` is the paper's, ``"l1"`` the authors' code.

    Args:
        vae: a ``HarmonyVAE`` (or its DDP wrapper), trainable parts set by ``set_trainable``.
        batch: ``composite``, ``real`` (B, 3, H, W) and ``mask`` (B, 1, H, W).
        generator: the RNG of both posterior samples.

    Returns:
        (loss, {"mse": ..., "l1": ...}) measured in [-1, 1] image space.
    """
    _check_choice("loss", loss, VAE_LOSSES)
    target, cond_img = target_and_condition(batch, direction)
    cond = torch.cat([cond_img, batch["mask"]], dim=1)  # (B, 4, H, W)
    if "latent" in batch:  # latent: denoised -- D(z'_0, E_c(I, M)), z'_0 (B, 4, h, w) unscaled
        model = vae.module if hasattr(vae, "module") else vae  # unwrap DDP for decode_with_cond
        recon = model.decode_with_cond(
            batch["latent"], cond, generator=generator, sample_posterior=sample_posterior
        ).sample
    else:
        recon = vae(target, cond=cond, sample_posterior=sample_posterior, generator=generator).sample
    mse = F.mse_loss(recon.float(), target.float())
    l1 = F.l1_loss(recon.float(), target.float())
    return (mse if loss == "l2" else l1), {"mse": float(mse.detach()), "l1": float(l1.detach())}


def autoencoder_loss(
    vae: nn.Module,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator,
    *,
    image_key: str = "real",
    kl_weight: float = 1e-6,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Plain ``AutoencoderKL`` reconstruction (to pretrain a mini base VAE): L1 + kl_weight * KL.

    diffusers' ``forward`` does not return the posterior, so this objective calls ``encode`` and
    ``decode`` itself; it therefore needs the bare module, not a DDP wrapper (single process).

    Args:
        vae: an ``AutoencoderKL``.
        batch: holds ``image_key`` (B, 3, H, W).
        generator: RNG of the posterior sample.

    Returns:
        (loss, {"l1", "mse", "kl"}); KL is per latent element, summed over channels and averaged.
    """
    if isinstance(vae, nn.parallel.DistributedDataParallel):
        raise TypeError("autoencoder_loss calls encode/decode directly; train it in one process")
    x = batch[image_key]
    posterior = vae.encode(x).latent_dist
    recon = vae.decode(posterior.sample(generator)).sample  # (B, 3, H, W)
    kl = posterior.kl().mean() / x[0].numel()
    l1 = F.l1_loss(recon.float(), x.float())
    mse = F.mse_loss(recon.float(), x.float())
    return l1 + kl_weight * kl, {
        "l1": float(l1.detach()),
        "mse": float(mse.detach()),
        "kl": float(kl.detach()),
    }


# --------------------------------------------------------------------------------------------------
# 3. Refinement UNet (official-implementation.md §4)
# --------------------------------------------------------------------------------------------------


def refinement_loss(
    refiner: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Full-image MSE of the refined stage-1 output against the real image (authors' stage 2).

    Args:
        refiner: a ``RefinementUNet`` (in = [stage-1 output, mask, composite], 7 channels).
        batch: ``stage1``, ``composite``, ``real`` (B, 3, H, W) and ``mask`` (B, 1, H, W).
        generator: unused (the objective is deterministic); kept for the common signature.

    Returns:
        (loss, {"stage1_mse": MSE of the unrefined stage-1 output, for reference}).
    """
    x = torch.cat([batch["stage1"], batch["mask"], batch["composite"]], dim=1)  # (B, 7, H, W)
    out = refiner(x).sample  # (B, 3, H, W)
    loss = F.mse_loss(out.float(), batch["real"].float())
    stage1_mse = F.mse_loss(batch["stage1"].float(), batch["real"].float())
    return loss, {"stage1_mse": float(stage1_mse)}


# --------------------------------------------------------------------------------------------------
# 4. Harmony classifier (paper §4.2, §5.2)
# --------------------------------------------------------------------------------------------------


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> [0, 1] (as ``ToTensor``) -> ImageNet mean/std normalised, (B, 3, H, W)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return ((images + 1.0) / 2.0 - mean) / std


def classifier_loss(
    classifier: nn.Module,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator | None = None,
    augment: Any = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of a composite-vs-real classifier; class 1 = composite (authors' convention).

    Args:
        classifier: any module mapping ImageNet-normalised (B, 3, H, W) to (B, 2) logits; one
            whose ``requires_mask`` is true (a mask-pooled probe) is called as
            ``classifier(x, masks)``.
        batch: ``images`` (B, 3, H, W) in [-1, 1]; ``labels`` (B,) int64 (1 = composite);
            ``masks`` (B, 1, H, W) in [0, 1], needed by a mask-pooled classifier only.
        generator: the only source of randomness (used by ``augment``).
        augment: optional ``augment(images, generator) -> images`` applied before normalising
            (e.g. :func:`harmonylib.training.classifier_data.augment_pairs` with its settings bound);
            with masks it is called as ``augment(images, generator, masks=masks)`` and returns
            ``(images, masks)``, the same geometric transform applied to both.

    Returns:
        (loss, {"accuracy": batch accuracy}).
    """
    images = batch["images"]
    if getattr(classifier, "requires_mask", False):
        masks = batch.get("masks")
        if masks is None:
            raise ValueError("a mask-pooled classifier needs batch['masks'] (pair_collate writes them)")
        if augment is not None:
            images, masks = augment(images, generator, masks=masks)
        logits = classifier(imagenet_normalize(images), masks)  # (B, 2)
    else:
        images = images if augment is None else augment(images, generator)
        logits = classifier(imagenet_normalize(images))  # (B, 2)
    labels = batch["labels"]
    loss = F.cross_entropy(logits.float(), labels)
    accuracy = (logits.argmax(dim=1) == labels).float().mean()
    return loss, {"accuracy": float(accuracy)}

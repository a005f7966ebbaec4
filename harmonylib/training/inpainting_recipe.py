"""The ``inpainting`` recipe: the SD-inpainting stand-in on photo crops (mini pretraining stage c).

Builds the 9-channel UNet, the frozen VAE, the photo crops and, with ``cache_latents``, the latent
cache of (crop, mask) pairs (:mod:`harmonylib.training.latent_cache`), and binds
:func:`harmonylib.training.inpainting.inpainting_loss`. Dispatched by
:func:`harmonylib.training.recipes.build_spec`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from harmonylib.config import Config
from harmonylib.reproducibility import derive_seed
from harmonylib.training.base_models import (
    _existing,
    _init_seed,
    build_base_unet,
    fixed_prompt_embeds,
    load_base_vae,
    load_prompt_embeds,
    prompt_folder,
)
from harmonylib.training.loop import TrainSpec


def inpainting_cache_key(cfg: Config) -> str:
    """What decides the latent cache of the ``inpainting`` recipe: VAE, crops, masks, seed."""
    from harmonylib.config import to_dict
    from harmonylib.provenance import sha256_tree

    rc = cfg.train.inpainting
    vae = (
        "random-" + rc.vae_arch if rc.vae is None else sha256_tree(_existing(rc.vae, "train.inpainting.vae"))
    )
    blob = json.dumps(
        {
            "vae": vae,
            "seed": cfg.seed,
            "resolution": rc.resolution,
            "crops": to_dict(rc.crops),
            "masks_per_crop": rc.masks_per_crop,
            "mask_mix": list(rc.mask_mix),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_inpainting_spec(cfg: Config, latent_cache_root: str | Path | None = None) -> TrainSpec:
    """The SD-inpainting stand-in recipe (``cfg.train.inpainting``) on photo crops.

    With ``cache_latents`` the frozen VAE encodes every (crop, mask) once into
    ``<latent_cache_root>/inpaint-latents-<key>`` (default ``results/<profile>/cache``), and the
    UNet trains on the cached posteriors; otherwise every step encodes fresh random masks.
    """
    from harmonylib.data.photo_crops import photo_crop_dataset
    from harmonylib.models.scheduler import make_training_scheduler
    from harmonylib.models.unet import check_unet
    from harmonylib.training.inpainting import check_mask_mix, inpainting_loss

    rc = cfg.train.inpainting
    mix = check_mask_mix(rc.mask_mix)
    if rc.init is not None:
        from diffusers import UNet2DConditionModel

        p = _existing(rc.init, "train.inpainting.init")
        unet = UNet2DConditionModel.from_pretrained(p / "unet" if (p / "unet").is_dir() else p)
        prompt = load_prompt_embeds(prompt_folder(p))
    else:
        unet = build_base_unet(rc.arch, _init_seed(cfg, "inpainting", "unet"))
        prompt = fixed_prompt_embeds(cfg, rc.arch)
    check_unet(unet)
    unet.requires_grad_(True)
    vae = load_base_vae(rc.vae, rc.vae_arch, _init_seed(cfg, "inpainting", "vae"), "train.inpainting.vae")
    vae.requires_grad_(False).eval()
    crops = photo_crop_dataset(rc.crops, rc.resolution, derive_seed(cfg.seed, "inpainting", "crops"))
    objective = functools.partial(
        inpainting_loss,
        noise_scheduler=make_training_scheduler(),
        prompt_embeds=prompt,
        scaling_factor=float(vae.config.scaling_factor),
        mask_mix=mix,
        sample_posterior=rc.sample_posterior,
    )
    if not rc.cache_latents:
        return TrainSpec(unet, functools.partial(objective, vae=vae), crops, frozen=[vae])
    from harmonylib.paths import results_dir
    from harmonylib.training.latent_cache import InpaintingLatentDataset, build_inpainting_latent_cache

    key = inpainting_cache_key(cfg)
    root = Path(latent_cache_root) if latent_cache_root is not None else results_dir(cfg.profile, "cache")
    cache = build_inpainting_latent_cache(
        crops,
        vae,
        root / f"inpaint-latents-{key}",
        masks_per_crop=rc.masks_per_crop,
        mask_mix=mix,
        seed=derive_seed(cfg.seed, "inpainting", "masks") % (2**31),
        key=key,
    )
    return TrainSpec(unet, objective, InpaintingLatentDataset(cache))

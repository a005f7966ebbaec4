"""Recipes: from a config section to a :class:`~harmonylib.training.loop.TrainSpec`.

A recipe builds the model to train (from pretrained folders, or in code for the small profiles),
the frozen helpers, the dataset, and binds the objective. Nothing here trains; the loop does.

- ``unet``: the DiffHarmony denoising UNet, ``direction`` forward or inverse (§2);
- ``harmony_vae``: Harmony-VAE, Eq. 2, with the Table 5 ``variant`` (§8.1);
- ``refinement``: the stage-2 refinement UNet on cached stage-1 outputs (§4);
- ``classifier``: the harmony classifier, linear probe or end to end (§5);
- ``autoencoder``: a base ``AutoencoderKL`` from scratch (not in the paper: the mini stand-in for
  SD's VAE; the mini stand-in for DiffHarmony's UNet is then the ``unet`` recipe on top of it;
  both are run by :mod:`harmonylib.training.pretrain` and committed under ``harmonylib/weights``);
- ``inpainting``: the SD-inpainting stand-in, SD-inpainting's objective on photo crops with random
  masks (:mod:`harmonylib.training.inpainting`; built in :mod:`harmonylib.training.inpainting_recipe`),
  the init of the mini ``unet`` runs;
- ``pixel_baseline``: the pixel-space harmonizer, Table 3's stand-in for HDNet_512 (§5.3.3).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonylib.config import Config
from harmonylib.paths import resolve
from harmonylib.reproducibility import derive_seed, make_generator
from harmonylib.training import objectives
from harmonylib.training.base_models import (  # noqa: F401  (re-exported: the recipes' base components)
    _existing,
    _init_seed,
    build_base_unet,
    fixed_prompt_embeds,
    load_base_vae,
    load_prompt_embeds,
    mini_empty_prompt_embedding,
    prompt_folder,
)
from harmonylib.training.loop import TrainSpec, save_model

RECIPES = ("unet", "harmony_vae", "refinement", "classifier", "autoencoder", "inpainting", "pixel_baseline")


def check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; allowed: {list(RECIPES)}")


def recipe_section(cfg: Config, recipe: str) -> Any:
    """The config section of ``recipe`` (``cfg.train.<recipe>``)."""
    check_recipe(recipe)
    return getattr(cfg.train, recipe)


# ---- data ----------------------------------------------------------------------------------------


def train_samples(cfg: Config, split: str = "train") -> list:
    """The samples of ``split`` of the config's dataset (the built-in one is built if needed).

    Every root of ``data.extra_roots`` that holds a list for ``split`` adds its entries (e.g. the
    ``@gen/...`` entries of an augmented training list, :func:`harmonylib.augment.mix_training_list`);
    ``data.subsets`` keeps only those subsets, original and added entries alike.
    """
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.data.iharmony4 import MAIN_ROOT, read_split

    root = ensure_dataset(cfg)
    roots = {MAIN_ROOT: root, **{k: resolve(v) for k, v in cfg.data.extra_roots.items()}}
    return read_split(roots, split, subsets=cfg.data.subsets)


def harmony_dataset(cfg: Config, size: int, resize: str, split: str = "train"):
    from harmonylib.data.datasets import HarmonyDataset

    return HarmonyDataset(train_samples(cfg, split), size, resize, cache=True)


# ---- 1. UNet -------------------------------------------------------------------------------------


def build_unet_spec(cfg: Config) -> TrainSpec:
    """The DiffHarmony UNet recipe (``cfg.train.unet``)."""
    from diffusers import UNet2DConditionModel

    from harmonylib.models.scheduler import make_training_scheduler
    from harmonylib.models.unet import build_unet, check_unet

    rc = cfg.train.unet
    seed = _init_seed(cfg, "unet", "unet")
    if rc.init is not None:
        p = _existing(rc.init, "train.unet.init")
        unet = UNet2DConditionModel.from_pretrained(p / "unet" if (p / "unet").is_dir() else p)
        prompt = load_prompt_embeds(prompt_folder(p))
    elif rc.arch in ("mini", "tiny"):
        unet = build_base_unet(rc.arch, seed)
        prompt = fixed_prompt_embeds(cfg, rc.arch)
    else:
        torch.manual_seed(seed)
        unet = build_unet()
        prompt = torch.zeros(1, 77, unet.config.cross_attention_dim)  # no text encoder: a null condition
    check_unet(unet)
    unet.requires_grad_(True)  # the whole UNet trains (official-implementation.md §2)
    vae = load_base_vae(rc.vae, rc.vae_arch, _init_seed(cfg, "unet", "vae"), "train.unet.vae")
    objective = functools.partial(
        objectives.diffusion_loss,
        vae=vae,
        noise_scheduler=make_training_scheduler(prediction_type=rc.prediction_type),
        prompt_embeds=prompt,
        direction=rc.direction,
        loss=rc.loss,
        fg_weight_max=rc.fg_weight_max,
        sample_posterior=rc.sample_posterior,
    )
    return TrainSpec(unet, objective, harmony_dataset(cfg, rc.resolution, rc.resize), frozen=[vae])


# ---- 2. Harmony-VAE ------------------------------------------------------------------------------


def build_harmony_vae_model(cfg: Config):
    """The Harmony-VAE to train: ``from_vae`` of the base VAE, init and trainable parts by ``variant``.

    ``*_random`` variants keep PyTorch's default init for every conv the paper zero-initialises
    (all skip convs, ``latent_skip_conv`` and the mask part ``add_conv_in``), drawn from a generator
    derived from the seed; ``*_zero`` variants zero the skips and follow ``mask_conv_init``.
    """
    from harmonylib.models.harmony_vae import TABLE5_VARIANTS, HarmonyVAE

    rc = cfg.train.harmony_vae
    variant = TABLE5_VARIANTS[rc.variant]
    random_init = variant["skip_init"] == "random"
    base = load_base_vae(rc.vae, rc.vae_arch, _init_seed(cfg, "harmony_vae", "vae"), "train.harmony_vae.vae")
    hvae = HarmonyVAE.from_vae(
        base,
        generator=make_generator(_init_seed(cfg, "harmony_vae", "skips")),
        skip_init=variant["skip_init"],
        mask_conv_init="default" if random_init else rc.mask_conv_init,
    )
    hvae.set_trainable(train_decoder=variant["train_decoder"])
    return hvae


def build_harmony_vae_spec(cfg: Config, latent_cache_root: str | Path | None = None) -> TrainSpec:
    """The Harmony-VAE recipe (``cfg.train.harmony_vae``); ``latent: denoised`` fills (or reuses)
    the ``z'_0`` cache under ``latent_cache_root`` first (:mod:`harmonylib.training.denoised_latents`)."""
    rc = cfg.train.harmony_vae
    objective = functools.partial(
        objectives.harmony_vae_loss,
        direction=rc.direction,
        loss=rc.loss,
        sample_posterior=rc.sample_posterior,
    )
    dataset = harmony_dataset(cfg, rc.resolution, rc.resize)
    if rc.latent == "denoised":
        from harmonylib.training.denoised_latents import DenoisedLatentDataset, build_denoised_cache

        if latent_cache_root is None:
            raise ValueError(
                "train.harmony_vae.latent = 'denoised' needs latent_cache_root (where z'_0 is cached)"
            )
        dataset = DenoisedLatentDataset(dataset, build_denoised_cache(cfg, dataset, latent_cache_root))
    return TrainSpec(build_harmony_vae_model(cfg), objective, dataset)


# ---- 3. Refinement -------------------------------------------------------------------------------


def build_refinement_spec(cfg: Config, stage1_cache: str | Path) -> TrainSpec:
    """The refinement recipe (``cfg.train.refinement``) on an existing stage-1 cache."""
    from harmonylib.models.refinement_unet import build_refinement_unet
    from harmonylib.training.stage1_cache import Stage1Dataset

    rc = cfg.train.refinement
    if rc.in_channels != 7:
        raise ValueError(
            "train.refinement.in_channels: only 7 ([stage-1 output, mask, composite]) is implemented"
        )
    seed = _init_seed(cfg, "refinement", "unet")
    if rc.size == "tiny":
        from harmonylib.models.configs import TINY_REFINEMENT_CONFIG
        from harmonylib.models.refinement_unet import RefinementUNet

        torch.manual_seed(seed)
        model = RefinementUNet(**{**TINY_REFINEMENT_CONFIG, "in_channels": rc.in_channels})
    else:
        torch.manual_seed(seed)
        model = build_refinement_unet(rc.size, in_channels=rc.in_channels)
    dataset = Stage1Dataset(harmony_dataset(cfg, rc.resolution, rc.resize), stage1_cache)
    return TrainSpec(model, objectives.refinement_loss, dataset)


# ---- 4. Classifier -------------------------------------------------------------------------------


def build_classifier_model(cfg: Config) -> nn.Module:
    """The classifier to train: ImageNet ResNet + linear probe (paper), a linear probe on our own
    base VAE's encoder (``backbone: vae_encoder``), or a ResNet end to end from scratch."""
    from harmonylib.models.classifier import build_classifier

    rc = cfg.train.classifier
    gen = make_generator(_init_seed(cfg, "classifier", "net"))
    if rc.backbone == "vae_encoder":
        from harmonylib.models.probe import build_probe_classifier

        if rc.backbone_weights is None:
            raise ValueError(
                "train.classifier.backbone: vae_encoder needs backbone_weights (an AutoencoderKL folder)"
            )
        probe = build_probe_classifier(
            rc.backbone,
            _existing(rc.backbone_weights, "train.classifier.backbone_weights"),
            input_size=rc.resolution,
            pooling=rc.pooling,
            generator=gen,
        )
        return probe.freeze_backbone(rc.linear_probe)  # False: the encoder is fine-tuned too
    if rc.pooling != "global":
        raise ValueError(
            f"train.classifier.pooling: {rc.pooling} needs backbone: vae_encoder "
            "(the ResNet classifier pools globally)"
        )
    clf = build_classifier(rc.arch, input_size=rc.resolution, generator=gen)
    if rc.backbone_weights is not None:
        clf.load_imagenet_backbone(_existing(rc.backbone_weights, "train.classifier.backbone_weights"))
    elif rc.linear_probe:
        raise ValueError(
            "train.classifier.linear_probe needs backbone_weights (a probe of random features is meaningless)"
        )
    if rc.linear_probe:
        clf.freeze_backbone()
    return clf


def build_classifier_spec(cfg: Config) -> TrainSpec:
    """The harmony-classifier recipe (``cfg.train.classifier``): balanced composite/real batches."""
    from harmonylib.training.classifier_data import NormalizedInputClassifier, augment_pairs, pair_collate

    rc = cfg.train.classifier
    model = NormalizedInputClassifier(build_classifier_model(cfg))
    augment = None
    if rc.augment_hflip or rc.augment_crop_scale < 1.0 or rc.augment_color > 0.0:
        augment = functools.partial(
            augment_pairs, hflip=rc.augment_hflip, crop_scale=rc.augment_crop_scale, color=rc.augment_color
        )
    return TrainSpec(
        model,
        functools.partial(objectives.classifier_loss, augment=augment),
        harmony_dataset(cfg, rc.resolution, rc.resize),
        collate_fn=pair_collate,
        save_weights=lambda m, folder: save_model(m.classifier, folder),
    )


# ---- 5. Base autoencoder (mini pretraining) ------------------------------------------------------


def build_autoencoder_spec(cfg: Config) -> TrainSpec:
    """A base ``AutoencoderKL`` (``arch`` tiny or mini, or ``vae_config``) trained from scratch on
    composites and reals, or on photo crops (``cfg.train.autoencoder.data``)."""
    from harmonylib.training.classifier_data import pair_collate

    rc = cfg.train.autoencoder
    vae = load_base_vae(
        None, rc.arch, _init_seed(cfg, "autoencoder", rc.arch), "train.autoencoder", rc.vae_config
    )
    if rc.data == "photo_crops":
        from harmonylib.data.photo_crops import photo_crop_dataset

        crops = photo_crop_dataset(rc.crops, rc.resolution, derive_seed(cfg.seed, "autoencoder", "crops"))
        objective = functools.partial(objectives.autoencoder_loss, image_key="image", kl_weight=rc.kl_weight)
        return TrainSpec(vae, objective, crops)
    objective = functools.partial(objectives.autoencoder_loss, image_key="images", kl_weight=rc.kl_weight)
    # pair_collate stacks each batch's composites and reals into ``images``.
    return TrainSpec(vae, objective, harmony_dataset(cfg, rc.resolution, rc.resize), collate_fn=pair_collate)


# ---- 6. Pixel-space baseline (Table 3's stand-in for HDNet_512) ------------------------------------


def build_pixel_baseline_spec(cfg: Config) -> TrainSpec:
    """The pixel-space harmonizer recipe (``cfg.train.pixel_baseline``): composites in, reals as target."""
    from harmonylib.models.pixel_baseline import build_pixel_harmonizer, pixel_baseline_objective

    rc = cfg.train.pixel_baseline
    torch.manual_seed(_init_seed(cfg, "pixel_baseline", rc.size))
    model = build_pixel_harmonizer(rc.size)
    objective = functools.partial(pixel_baseline_objective, loss=rc.loss)
    return TrainSpec(model, objective, harmony_dataset(cfg, rc.resolution, rc.resize))


def build_spec(
    cfg: Config,
    recipe: str,
    stage1_cache: str | Path | None = None,
    latent_cache_root: str | Path | None = None,
) -> TrainSpec:
    """The :class:`TrainSpec` of ``recipe`` under ``cfg``.

    Args:
        cfg: the resolved config.
        recipe: one of :data:`RECIPES`.
        stage1_cache: the stage-1 cache folder (``refinement`` only).
        latent_cache_root: where the latent cache folder goes (``inpainting``; ``harmony_vae`` with
            ``latent: denoised``).
    """
    check_recipe(recipe)
    if recipe == "inpainting":
        from harmonylib.training.inpainting_recipe import build_inpainting_spec

        return build_inpainting_spec(cfg, latent_cache_root)
    if recipe == "unet":
        return build_unet_spec(cfg)
    if recipe == "harmony_vae":
        return build_harmony_vae_spec(cfg, latent_cache_root)
    if recipe == "classifier":
        return build_classifier_spec(cfg)
    if recipe == "autoencoder":
        return build_autoencoder_spec(cfg)
    if recipe == "pixel_baseline":
        return build_pixel_baseline_spec(cfg)
    if stage1_cache is None:
        raise ValueError("the refinement recipe needs stage1_cache (see harmonylib.training.stage1_cache)")
    return build_refinement_spec(cfg, stage1_cache)

"""Tiny DiffHarmony components built in code: for tests and the ``smoke`` profile.

Same classes as the real models, only narrower (style.md §8: "every GPU code path also runs tiny
on CPU, built in code and never downloaded"). Each component is built right after reseeding, so
it does not depend on what was built before it. The text condition is a fixed random tensor in
place of a CLIP embedding.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from harmonylib.models.configs import TINY_REFINEMENT_CONFIG, TINY_VAE_CONFIG, get_config
from harmonylib.models.scheduler import make_scheduler
from harmonylib.models.unet import UNET_IN_CHANNELS, EmptyPromptEmbedding

TINY_CROSS_ATTENTION_DIM = 32
TINY_SEQUENCE_LENGTH = 77

# UNet2DConditionModel of diffusers' own pipeline tests, with the 9-channel inpainting input.
TINY_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8,  # latent side for a 64 px image with the tiny VAE (scale factor 8)
    "in_channels": UNET_IN_CHANNELS,
    "out_channels": 4,
    "block_out_channels": [32, 64],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "cross_attention_dim": TINY_CROSS_ATTENTION_DIM,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}


def tiny_vae_config() -> dict[str, Any]:
    """The tiny ``AutoencoderKL`` config (SD topology and scale factor 8, narrow blocks)."""
    return get_config({"tiny": TINY_VAE_CONFIG}, "tiny")


def build_tiny_unet(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(**TINY_UNET_CONFIG)


def build_tiny_vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(**tiny_vae_config())


def build_tiny_harmony_vae(seed: int = 0, vae: AutoencoderKL | None = None):
    """A tiny Harmony-VAE initialised from a tiny SD-style VAE (``HarmonyVAE.from_vae``).

    Its skip convs are zero (§3.2), so until trained it decodes exactly like ``vae``.
    """
    from harmonylib.models.harmony_vae import HarmonyVAE

    vae = vae if vae is not None else build_tiny_vae(seed)
    return HarmonyVAE.from_vae(vae)


def tiny_empty_prompt_embedding(seed: int = 0) -> EmptyPromptEmbedding:
    """A fixed (1, 77, 32) stand-in for the CLIP empty-prompt embedding."""
    g = torch.Generator().manual_seed(seed)
    embeds = torch.randn(1, TINY_SEQUENCE_LENGTH, TINY_CROSS_ATTENTION_DIM, generator=g)  # (1, 77, 32)
    return EmptyPromptEmbedding.from_tensor(embeds)


def build_tiny_refinement_unet(seed: int = 0):
    """A tiny stage-2 refinement UNet (in = [harmonized, mask, composite], 7 channels)."""
    from harmonylib.models.refinement_unet import RefinementUNet

    torch.manual_seed(seed)
    return RefinementUNet(**get_config({"tiny": TINY_REFINEMENT_CONFIG}, "tiny"))


def build_tiny_components(
    seed: int = 0, harmony_vae: bool = True, refinement: bool = False
) -> dict[str, Any]:
    """All components of a tiny ``DiffHarmonyPipeline``, as keyword arguments for its constructor.

    Args:
        seed: base seed; each component reseeds before it is built.
        harmony_vae: use a ``HarmonyVAE`` (DiffHarmony++) instead of a plain ``AutoencoderKL``.
        refinement: add a tiny refinement UNet (stage 2).
    """
    vae = build_tiny_vae(seed)
    components: dict[str, Any] = {
        "vae": build_tiny_harmony_vae(seed, vae) if harmony_vae else vae,
        "unet": build_tiny_unet(seed),
        "scheduler": make_scheduler(),
        "empty_prompt_embedding": tiny_empty_prompt_embedding(seed),
    }
    if refinement:
        components["refinement_unet"] = build_tiny_refinement_unet(seed)
    return components


def build_tiny_pipeline(seed: int = 0, harmony_vae: bool = True, refinement: bool = False, **kwargs: Any):
    """A tiny ``DiffHarmonyPipeline`` with random weights (``eval()`` mode, fp32, CPU)."""
    from harmonylib.pipeline import DiffHarmonyPipeline

    pipe = DiffHarmonyPipeline(**build_tiny_components(seed, harmony_vae, refinement), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe

"""Models: Harmony-VAE (paper §3.2), the stage-2 refinement UNet, and their configs.

Only modules that exist are imported here; each model module adds its own names.
"""

from harmonylib.models.configs import (
    REFINEMENT_CONFIGS,
    SD_VAE_CONFIG,
    TINY_REFINEMENT_CONFIG,
    TINY_VAE_CONFIG,
)
from harmonylib.models.harmony_vae import TABLE5_VARIANTS, HarmonyVAE, build_harmony_vae
from harmonylib.models.refinement_unet import REFINEMENT_SIZES, RefinementUNet, build_refinement_unet

__all__ = [
    "HarmonyVAE",
    "REFINEMENT_CONFIGS",
    "REFINEMENT_SIZES",
    "RefinementUNet",
    "SD_VAE_CONFIG",
    "TABLE5_VARIANTS",
    "TINY_REFINEMENT_CONFIG",
    "TINY_VAE_CONFIG",
    "build_harmony_vae",
    "build_refinement_unet",
]

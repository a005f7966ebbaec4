"""Architecture configs of the Harmony-VAE and the refinement UNet, as plain data.

Each dict is a constructor config (the keys of ``config.json``), so ``Cls(**cfg)`` or
``Cls.from_config(cfg)`` builds the architecture with random weights. Nothing here downloads.

Sources:
- ``SD_VAE_CONFIG``: the SD-1.x ``sd-vae-ft-mse`` AutoencoderKL that the authors start from
  (official-implementation.md §1.1: ``block_out_channels=(128,256,512,512)``, 4× DownEncoderBlock2D,
  4× UpDecoderBlock2D, ``layers_per_block=2``, ``latent_channels=4``, ``norm_num_groups=32``).
- ``REFINEMENT_CONFIGS``: the authors' ``configs/stage2_configs/{small,base,large}.json``
  (official-implementation.md §4), with ``in_channels=7`` as their launch script sets it.
"""

from __future__ import annotations

import copy
from typing import Any

# --- Harmony-VAE / SD VAE -------------------------------------------------------------------------

#: AutoencoderKL config of SD-1.x ``sd-vae-ft-mse`` (the SD VAE the paper's Harmony-VAE starts from).
SD_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 256,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

#: A tiny VAE for CPU tests. It keeps the SD *topology* (4 levels, 2 resnets per level, so 12
#: skip residuals, channel-changing skips at idx 3 and 6, and the 8× latent scale factor) at a
#: few thousand parameters per block.
TINY_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 16, 32, 32],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 64,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

#: The mini base VAE (v2): the stand-in for ``sd-vae-ft-mse`` in the mini profile, pretrained by
#: ``harmonylib.training.pretrain`` and committed under ``harmonylib/weights/mini/vae``. An **f4**
#: VAE (3 levels, 2 downsamples; 2 resnets per level as SD): with mini's 64 px content at 2x and 1x
#: it keeps the paper's 1/3 and 1/12 latent values per content value (``harmonylib.ladder``), at
#: about a quarter of an f8 VAE's cost at 4x. 2,213,671 parameters (4.4 MB in fp16).
#: ``scaling_factor`` here is a placeholder: the recipe sets 1/std of the trained latents.
MINI_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [32, 64, 96],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 16,
    "sample_size": 64,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

#: Width and length of the mini fixed text condition (a seeded random stand-in for CLIP's
#: empty-prompt embedding, as in ``harmonylib.models.tiny``).
MINI_CROSS_ATTENTION_DIM = 32
MINI_SEQUENCE_LENGTH = 77

#: The mini 9-channel UNet (v2): the stand-in for SD-inpainting (pretrained with its objective on
#: photos) and, fine-tuned from it, for DiffHarmony's released forward UNet. SD-inpainting's
#: 9-channel input; 3 levels 48-64-96 on the 16x16 latent of the ladder's "512" rung (16, 8, 4),
#: cross-attention to the fixed empty-prompt embedding at the lowest level. 3,843,988 parameters.
MINI_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 9,  # 4 noisy + 1 mask + 4 composite (masked-image when inpainting) latents
    "out_channels": 4,
    "block_out_channels": [48, 64, 96],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "cross_attention_dim": MINI_CROSS_ATTENTION_DIM,
    "attention_head_dim": 8,
    "norm_num_groups": 16,
}

# --- Refinement UNet (DiffHarmony stage 2) ---------------------------------------------------------

_REFINEMENT_COMMON: dict[str, Any] = {
    "sample_size": 256,
    "in_channels": 7,  # [harmonized, mask, composite] (official-implementation.md §3.3, §4)
    "out_channels": 3,
    "down_block_types": ["DownBlock2D"] * 4,
    "up_block_types": ["UpBlock2D"] * 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1.0,
    "downsample_padding": 0,
    "downsample_type": "conv",
    "upsample_type": "conv",
    "act_fn": "silu",
    "attention_head_dim": None,  # one head as wide as the last block
    "norm_num_groups": 32,
    "norm_eps": 1e-6,
    "add_attention": True,
    "input_residual": True,
}

REFINEMENT_CONFIGS: dict[str, dict[str, Any]] = {
    "small": {**_REFINEMENT_COMMON, "block_out_channels": [64, 128, 256, 256]},
    "base": {**_REFINEMENT_COMMON, "block_out_channels": [128, 256, 512, 512]},
    "large": {**_REFINEMENT_COMMON, "block_out_channels": [256, 512, 1024, 1024]},
}
REFINEMENT_SMALL_CONFIG = REFINEMENT_CONFIGS["small"]
REFINEMENT_BASE_CONFIG = REFINEMENT_CONFIGS["base"]
REFINEMENT_LARGE_CONFIG = REFINEMENT_CONFIGS["large"]

#: A tiny refinement UNet for CPU tests (same topology, 8-channel blocks, 4 groups).
TINY_REFINEMENT_CONFIG: dict[str, Any] = {
    **_REFINEMENT_COMMON,
    "sample_size": 32,
    "block_out_channels": [8, 16, 16, 16],
    "norm_num_groups": 4,
}


def get_config(configs: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """A deep copy of ``configs[name]``; ``ValueError`` listing the allowed names otherwise."""
    if name not in configs:
        raise ValueError(f"unknown config {name!r}; allowed: {sorted(configs)}")
    return copy.deepcopy(configs[name])

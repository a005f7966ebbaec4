"""The base components recipes start from: seeded random-init or pretrained VAEs and UNets, and the
fixed empty-prompt embedding. Shared by :mod:`harmonylib.training.recipes`,
:mod:`harmonylib.training.inpainting_recipe` and :mod:`harmonylib.assemble`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harmonylib.config import Config
from harmonylib.paths import resolve
from harmonylib.reproducibility import derive_seed


def _init_seed(cfg: Config, recipe: str, what: str) -> int:
    return derive_seed(cfg.seed, recipe, what, "init") % (2**31)


def _existing(path: str, key: str) -> Path:
    p = resolve(path)
    if not p.exists():
        raise FileNotFoundError(
            f"{key}: {p} does not exist (set {key} to a local folder, or null for random init)"
        )
    return p


# ---- base models ---------------------------------------------------------------------------------


def load_base_vae(path: str | None, arch: str, seed: int, key: str, vae_config: dict | None = None):
    """An ``AutoencoderKL``: from a folder (or its ``vae/`` subfolder), else random weights of
    ``vae_config`` (an explicit config) or of ``arch``."""
    from diffusers import AutoencoderKL

    if path is not None:
        p = _existing(path, key)
        folder = p / "vae" if (p / "vae" / "config.json").is_file() else p
        return AutoencoderKL.from_pretrained(folder)
    from harmonylib.models.configs import MINI_VAE_CONFIG, SD_VAE_CONFIG
    from harmonylib.models.tiny import build_tiny_vae

    if vae_config is not None:
        torch.manual_seed(seed)
        return AutoencoderKL(**vae_config)
    if arch == "tiny":
        return build_tiny_vae(seed)
    torch.manual_seed(seed)
    return AutoencoderKL(**(MINI_VAE_CONFIG if arch == "mini" else SD_VAE_CONFIG))


def mini_empty_prompt_embedding(seed: int) -> torch.Tensor:
    """The mini fixed text condition, (1, 77, 32): seeded N(0, 1), a stand-in for CLIP's ``""``."""
    from harmonylib.models.configs import MINI_CROSS_ATTENTION_DIM, MINI_SEQUENCE_LENGTH

    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, MINI_SEQUENCE_LENGTH, MINI_CROSS_ATTENTION_DIM, generator=g)  # (1, 77, 32)


def fixed_prompt_embeds(cfg: Config, arch: str) -> torch.Tensor:
    """The fixed empty-prompt embedding of a randomly initialised ``arch`` UNet, (1, 77, C): the
    same tensor for the ``unet`` and ``inpainting`` recipes, so one can start from the other."""
    if arch == "mini":
        return mini_empty_prompt_embedding(_init_seed(cfg, "unet", "prompt"))
    if arch == "tiny":
        from harmonylib.models.tiny import tiny_empty_prompt_embedding

        return tiny_empty_prompt_embedding(_init_seed(cfg, "unet", "unet")).embeds.detach()
    raise ValueError(f"arch {arch!r} has no fixed prompt embedding (use mini or tiny)")


def prompt_folder(init: Path) -> Path:
    """Where the empty-prompt embedding of a UNet init lives: the folder itself when it holds
    ``unet/``, else (a bare UNet folder such as ``weights/mini/inpainting_unet``) its parent."""
    return init if (init / "unet").is_dir() or not (init / "config.json").is_file() else init.parent


def load_prompt_embeds(folder: Path) -> torch.Tensor:
    """The empty-prompt embedding of a pretrained folder: its ``empty_prompt_embedding/`` component
    (the mini weights), else the SD cache / text encoder (``load_or_compute_empty_prompt_embeds``)."""
    from harmonylib.models.unet import EmptyPromptEmbedding, load_or_compute_empty_prompt_embeds

    comp = folder / "empty_prompt_embedding"
    if (comp / "config.json").is_file():
        return EmptyPromptEmbedding.from_pretrained(comp).embeds.detach().float()
    return load_or_compute_empty_prompt_embeds(folder)


def build_base_unet(arch: str, seed: int):
    """A randomly initialised 9-channel ``mini`` or ``tiny`` UNet (reseeded first)."""
    from harmonylib.models.configs import MINI_UNET_CONFIG
    from harmonylib.models.tiny import build_tiny_unet
    from harmonylib.models.unet import build_unet

    if arch == "tiny":
        return build_tiny_unet(seed)
    torch.manual_seed(seed)
    return build_unet(MINI_UNET_CONFIG)


def unet_prompt_embeds(cfg: Config) -> torch.Tensor:
    """The (1, 77, C) empty-prompt embedding the ``unet`` recipe trains with (as ``build_unet_spec``)."""
    rc = cfg.train.unet
    if rc.init is not None:
        # a bare UNet folder (weights/mini/inpainting_unet) takes its parent's embedding
        return load_prompt_embeds(prompt_folder(resolve(rc.init)))
    if rc.arch == "mini":
        return mini_empty_prompt_embedding(_init_seed(cfg, "unet", "prompt"))
    if rc.arch == "tiny":
        from harmonylib.models.tiny import tiny_empty_prompt_embedding

        return tiny_empty_prompt_embedding(_init_seed(cfg, "unet", "unet")).embeds.detach()
    from harmonylib.models.unet import SD15_INPAINT_UNET_CONFIG

    # no text encoder: a null condition
    return torch.zeros(1, 77, SD15_INPAINT_UNET_CONFIG["cross_attention_dim"])


def adopted_unet_dir(cfg: Config) -> Path | None:
    """The released forward UNet that the profile adopts (``train.unet.adopt``), or None.

    The paper adopts DiffHarmony's released UNet as it is (§5.2); the mini profile adopts its own
    released one (``harmonylib/weights/mini/unet``). ``train.unet.init`` (SD-inpainting or its mini
    stand-in) is a starting point to train from, never a harmonization UNet.

    Raises:
        FileNotFoundError: ``adopt`` names a folder without a UNet ``config.json``.
    """
    adopt = cfg.train.unet.adopt
    if adopt is None:
        return None
    p = resolve(adopt).resolve()
    folder = p / "unet" if (p / "unet" / "config.json").is_file() else p
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"train.unet.adopt = {adopt!r}: {folder} holds no UNet config.json. Put the released UNet "
            "there (the authors' bundle: docs/paper_checkpoints.md), or train the forward UNet from "
            "train.unet.init instead with --set train.unet.adopt=null"
        )
    return folder

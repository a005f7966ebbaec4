"""The DiffHarmony denoising UNet (SD-1.x inpainting, 9 input channels) and its text condition.

The UNet is diffusers' ``UNet2DConditionModel`` unchanged. What makes it a harmonization model
is its input (paper §3.1; official-implementation.md §2, "Conditioning layout"):

    cat([noisy latents (4), mask downsampled with "nearest" (1), composite latents * scaling (4)])

and a constant text condition, the CLIP embedding of the empty prompt (the authors' captions are
all ``""`` and no CFG is used). That embedding is computed once from an SD folder's tokenizer and
text encoder (which needs the optional ``transformers``) and then kept as a tiny model,
:class:`EmptyPromptEmbedding`, so that a saved pipeline never needs ``transformers`` again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin, UNet2DConditionModel
from diffusers.configuration_utils import register_to_config

# 4 noisy latent + 1 mask + 4 composite latent channels (authors' pipeline:852-862 checks this).
NUM_LATENT_CHANNELS = 4
UNET_IN_CHANNELS = NUM_LATENT_CHANNELS + 1 + NUM_LATENT_CHANNELS

# File name of the cached empty-prompt embedding inside an SD folder or the cache directory.
EMPTY_PROMPT_EMBEDS_FILE = "empty_prompt_embeds.safetensors"

# SD-1.5 inpainting UNet (runwayml/stable-diffusion-inpainting unet/config.json, values that
# differ from UNet2DConditionModel's defaults written out for the reader). 859,535,364
# parameters, 686 tensors.
SD15_INPAINT_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": UNET_IN_CHANNELS,
    "out_channels": NUM_LATENT_CHANNELS,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}

# CLIP ViT-L/14 text encoder of SD-1.x: 77 tokens of width 768.
SD_TEXT_SEQUENCE_LENGTH = 77


def build_unet(config: dict[str, Any] | None = None, **overrides: Any) -> UNet2DConditionModel:
    """A randomly initialised DiffHarmony UNet (SD-1.5 inpainting sizes unless ``config`` says otherwise).

    Args:
        config: a ``UNet2DConditionModel`` config; ``None`` uses :data:`SD15_INPAINT_UNET_CONFIG`.
        **overrides: keys that win over ``config``.

    Returns:
        The UNet. Build it under ``torch.device("meta")`` to inspect full sizes without memory.
    """
    cfg = dict(SD15_INPAINT_UNET_CONFIG if config is None else config)
    cfg.update(overrides)
    if cfg.get("in_channels") != UNET_IN_CHANNELS:
        raise ValueError(
            f"a DiffHarmony UNet needs in_channels={UNET_IN_CHANNELS} (4+1+4), got {cfg.get('in_channels')}"
        )
    return UNet2DConditionModel(**cfg)


def check_unet(unet: UNet2DConditionModel, name: str = "unet") -> None:
    """Raise if ``unet`` cannot take the 9-channel DiffHarmony input."""
    if not isinstance(unet, UNet2DConditionModel):
        raise TypeError(f"component {name!r} must be a UNet2DConditionModel, got {type(unet).__name__}")
    if unet.config.in_channels != UNET_IN_CHANNELS:
        raise ValueError(
            f"component {name!r} has in_channels={unet.config.in_channels}; DiffHarmony needs "
            f"{UNET_IN_CHANNELS} = 4 noisy latents + 1 mask + 4 composite latents"
        )


def prepare_mask_latents(mask: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """Downsample a binary mask to the latent grid with ``"nearest"`` (authors' pipeline:614-616).

    Args:
        mask: (B, 1, H, W) in {0, 1}.
        latent_size: (h, w) = (H / vae_scale_factor, W / vae_scale_factor).

    Returns:
        (B, 1, h, w) in {0, 1}, same dtype as ``mask``.
    """
    return F.interpolate(mask, size=tuple(latent_size), mode="nearest")  # (B, 1, h, w)


def prepare_unet_input(
    latent_model_input: torch.Tensor, mask_latents: torch.Tensor, composite_latents: torch.Tensor
) -> torch.Tensor:
    """Concatenate the UNet input in the authors' channel order (official-implementation.md §2).

    Args:
        latent_model_input: (B, 4, h, w) noisy latents, already passed through
            ``scheduler.scale_model_input`` (which applies to these 4 channels only).
        mask_latents: (B, 1, h, w) nearest-downsampled binary mask.
        composite_latents: (B, 4, h, w) sampled composite latents times ``vae.config.scaling_factor``
            (the real image's latents in the inverse direction).

    Returns:
        (B, 9, h, w).
    """
    if not (latent_model_input.shape[-2:] == mask_latents.shape[-2:] == composite_latents.shape[-2:]):
        raise ValueError(
            f"spatial sizes differ: latents {tuple(latent_model_input.shape)}, mask {tuple(mask_latents.shape)}, "
            f"composite latents {tuple(composite_latents.shape)}"
        )
    if latent_model_input.shape[1] != NUM_LATENT_CHANNELS or mask_latents.shape[1] != 1:
        raise ValueError(
            f"expected 4 latent and 1 mask channels, got {latent_model_input.shape[1]} and {mask_latents.shape[1]}"
        )
    return torch.cat([latent_model_input, mask_latents, composite_latents], dim=1)  # (B, 9, h, w)


class EmptyPromptEmbedding(ModelMixin, ConfigMixin):
    """The constant text condition: the text encoder's output for the empty prompt, (1, L, C).

    A pipeline component of its own so that it is saved and loaded with ``save_pretrained`` /
    ``from_pretrained`` like any diffusers model, and a saved pipeline needs no tokenizer, no text
    encoder and no ``transformers``. The tensor is a frozen parameter (not a buffer) so that
    diffusers' loaders treat it like any other weight.
    """

    @register_to_config
    def __init__(self, sequence_length: int = SD_TEXT_SEQUENCE_LENGTH, embedding_dim: int = 768):
        super().__init__()
        self.embeds = torch.nn.Parameter(torch.zeros(1, sequence_length, embedding_dim), requires_grad=False)

    @classmethod
    def from_tensor(cls, embeds: torch.Tensor) -> EmptyPromptEmbedding:
        """Wrap a (1, L, C) or (L, C) tensor."""
        if embeds.ndim == 2:
            embeds = embeds[None]
        if embeds.ndim != 3 or embeds.shape[0] != 1:
            raise ValueError(f"expected an embedding of shape (1, L, C), got {tuple(embeds.shape)}")
        module = cls(sequence_length=embeds.shape[1], embedding_dim=embeds.shape[2])
        with torch.no_grad():
            module.embeds.copy_(embeds.detach().float())
        return module

    def forward(self, batch_size: int = 1) -> torch.Tensor:
        """The embedding repeated for a batch: (batch_size, L, C)."""
        return self.embeds.expand(batch_size, -1, -1)  # (B, L, C)


# ------------------------------------------------------------------------------------------------
# Computing and caching the empty-prompt embedding of a real SD folder


def _default_cache_dir() -> Path:
    return Path(os.environ.get("HARMONYLIB_CACHE", "~/.cache/harmonylib")).expanduser()


def _text_encoder_key(base_dir: Path) -> str:
    """A key for the text encoder of ``base_dir``: its config plus its weight files' names and sizes."""
    te = base_dir / "text_encoder"
    h = hashlib.sha256()
    cfg = te / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    for f in sorted(te.glob("*")):
        if f.suffix in (".bin", ".safetensors"):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def empty_prompt_cache_paths(
    base_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> list[Path]:
    """Where a cached embedding for ``base_dir`` is looked for, in order.

    1. ``<base_dir>/empty_prompt_embeds.safetensors``;
    2. ``<cache_dir>/empty_prompt_embeds/<key>.safetensors``, key = hash of the text encoder's
       config and weight files. ``cache_dir`` defaults to ``$HARMONYLIB_CACHE`` or
       ``~/.cache/harmonylib``.
    """
    base_dir = Path(base_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    return [
        base_dir / EMPTY_PROMPT_EMBEDS_FILE,
        cache_dir / "empty_prompt_embeds" / f"{_text_encoder_key(base_dir)}.safetensors",
    ]


def save_empty_prompt_embeds(path: str | os.PathLike, embeds: torch.Tensor) -> None:
    """Write a (1, L, C) embedding to a safetensors file (atomically)."""
    from safetensors.torch import save_file

    from harmonylib.io import atomic_path

    with atomic_path(path) as tmp:
        save_file({"embeds": embeds.detach().float().contiguous().cpu()}, str(tmp))


def load_empty_prompt_embeds(path: str | os.PathLike) -> torch.Tensor:
    """Read a (1, L, C) embedding written by :func:`save_empty_prompt_embeds`."""
    from safetensors.torch import load_file

    return load_file(str(path))["embeds"]


def compute_empty_prompt_embeds(tokenizer: Any, text_encoder: Any) -> torch.Tensor:
    """The text encoder's last hidden state for ``""`` padded to the tokenizer's max length.

    Same as the authors' training captions (``ihd_dataset.py:86-93``: padding="max_length",
    77 tokens) fed through ``text_encoder(ids)[0]``.

    Returns:
        (1, 77, C) float32 on CPU.
    """
    ids = tokenizer(
        [""],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids  # (1, 77)
    device = next(text_encoder.parameters()).device
    with torch.no_grad():
        embeds = text_encoder(ids.to(device))[0]  # (1, 77, C)
    return embeds.float().cpu()


def _import_transformers_text_models() -> tuple[Any, Any]:
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as exc:  # the optional extra is missing
        raise ImportError(
            "computing the empty-prompt embedding from an SD folder needs `transformers` "
            "(pip install 'harmonylib[text]'); alternatively pass a cached "
            f"{EMPTY_PROMPT_EMBEDS_FILE} (empty_prompt_embeds=...)"
        ) from exc
    return CLIPTokenizer, CLIPTextModel


def load_or_compute_empty_prompt_embeds(
    base_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None, write_cache: bool = True
) -> torch.Tensor:
    """The empty-prompt embedding of an SD folder: from a cache, else computed once and cached.

    Args:
        base_dir: an SD(-inpainting) folder with ``tokenizer/`` and ``text_encoder/``.
        cache_dir: see :func:`empty_prompt_cache_paths`.
        write_cache: write the computed embedding to the first writable cache location.

    Returns:
        (1, 77, C) float32.

    Raises:
        ImportError: nothing is cached and ``transformers`` is not installed (the message says how
            to fix it).
        FileNotFoundError: nothing is cached and ``base_dir`` has no tokenizer / text encoder.
    """
    base_dir = Path(base_dir)
    candidates = empty_prompt_cache_paths(base_dir, cache_dir)
    for path in candidates:
        if path.is_file():
            return load_empty_prompt_embeds(path)
    for sub in ("tokenizer", "text_encoder"):
        if not (base_dir / sub).is_dir():
            raise FileNotFoundError(
                f"{base_dir / sub}: missing, and no cached empty-prompt embedding at {[str(p) for p in candidates]}"
            )
    try:
        tokenizer_cls, text_encoder_cls = _import_transformers_text_models()
    except ImportError as exc:
        raise ImportError(f"{exc}. Looked for a cached embedding at {[str(p) for p in candidates]}") from exc
    tokenizer = tokenizer_cls.from_pretrained(base_dir / "tokenizer", local_files_only=True)
    text_encoder = text_encoder_cls.from_pretrained(base_dir / "text_encoder", local_files_only=True)
    embeds = compute_empty_prompt_embeds(tokenizer, text_encoder)
    if write_cache:
        for path in candidates:
            try:
                save_empty_prompt_embeds(path, embeds)
                meta = path.with_suffix(".json")
                meta.write_text(json.dumps({"source": str(base_dir.resolve()), "shape": list(embeds.shape)}))
                break
            except OSError:
                continue  # read-only base folder: try the user cache
    return embeds

"""The denoised latent z'_0 of every training composite, for a Harmony-VAE trained on it.

Paper §3.2 trains Harmony-VAE on ``E(I_hat)``, the real image's latent, and notes that "strictly
speaking" the decoder's input should be the denoised latent ``z'_0``; the real latent stands in
because, with a denoiser that performs well enough, the two are close. Where the denoiser is far
from that (the mini profile's forward UNet removes ~8.5 % of the copy error on held-out scenes:
results/mini/diagnostics/v2/LEVERS.md §6), ``train.harmony_vae.latent: denoised`` trains the strict
version: the decoder reconstructs the real image from ``z'_0``, conditioned on (composite, mask).

``z'_0`` is sampled once per training sample, as inference samples it: the forward UNet the profile
adopts (``train.unet.adopt``), the UNet's own base VAE, Euler ancestral, at the Harmony-VAE's
training size and crop, with a generator derived from (seed, sample name). The latents (unscaled,
float32 (4, h, w)) are cached as ``<subset>/<name>.npy`` in a :class:`~harmonylib.cache.CacheFolder`
keyed by the denoiser's weights and every setting above; a partial cache resumes.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from harmonylib.cache import CacheFolder, Marker, key_stamp
from harmonylib.config import Config, config_hash
from harmonylib.io import atomic_write_bytes
from harmonylib.provenance import sha256_tree
from harmonylib.reproducibility import derive_seed, make_generator

STEPS = 5  # the paper's sampling steps (§5.2), as inference runs them
DONE_FILE = "DENOISED_DONE.json"


def denoiser_identity(cfg: Config) -> dict[str, Any]:
    """What decides ``z'_0``: the adopted UNet's and base VAE's file hashes, size, crop, steps, seed.

    Raises:
        ValueError: ``train.harmony_vae.latent: denoised`` without an adopted forward UNet, or for
            the inverse direction (its ``z'_0`` would come from an inverse UNet, not built here).
    """
    from harmonylib.paths import resolve
    from harmonylib.training.base_models import adopted_unet_dir

    rc = cfg.train.harmony_vae
    if rc.direction != "forward":
        raise ValueError("train.harmony_vae.latent = 'denoised' is for the forward Harmony-VAE only")
    unet = adopted_unet_dir(cfg)
    if unet is None:
        raise ValueError(
            "train.harmony_vae.latent = 'denoised' needs train.unet.adopt: the forward UNet whose "
            "denoised latents the decoder learns from"
        )
    vae = cfg.train.unet.vae
    return {
        "unet_sha256": sha256_tree(unet),
        "vae": {"sha256": sha256_tree(resolve(vae))}
        if vae is not None
        else {"arch": cfg.train.unet.vae_arch},
        "prediction_type": cfg.train.unet.prediction_type,
        "resolution": rc.resolution,
        "resize": rc.resize,
        "steps": STEPS,
        "seed": cfg.seed,
    }


def forward_denoiser(cfg: Config):
    """The forward DiffHarmony pipeline with the plain base VAE: the adopted UNet, as inference runs it."""
    from diffusers import UNet2DConditionModel

    from harmonylib.models.scheduler import make_scheduler
    from harmonylib.models.unet import EmptyPromptEmbedding
    from harmonylib.pipeline import DiffHarmonyPipeline
    from harmonylib.training.base_models import (
        _init_seed,
        adopted_unet_dir,
        load_base_vae,
        unet_prompt_embeds,
    )

    rc = cfg.train.unet
    pipe = DiffHarmonyPipeline(
        vae=load_base_vae(rc.vae, rc.vae_arch, _init_seed(cfg, "unet", "vae"), "train.unet.vae").eval(),
        unet=UNet2DConditionModel.from_pretrained(adopted_unet_dir(cfg)).eval(),
        scheduler=make_scheduler(prediction_type=rc.prediction_type),
        empty_prompt_embedding=EmptyPromptEmbedding.from_tensor(unet_prompt_embeds(cfg)),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _npy_path(folder: Path, item: dict[str, Any]) -> Path:
    return folder / item["subset"] / f"{item['name']}.npy"


def denoised_cache(cfg: Config, cache_root: str | os.PathLike) -> CacheFolder:
    """The cache folder of this config's ``z'_0`` under ``cache_root``, keyed by :func:`denoiser_identity`."""
    key = {"denoiser": denoiser_identity(cfg), "data": config_hash(cfg.data)}
    name = hashlib.sha256(key_stamp(key).encode()).hexdigest()[:16]
    return CacheFolder(
        Path(cache_root) / f"denoised-{name}",
        key,
        done=Marker(DONE_FILE, "key"),
        what="denoised latents",
    )


def build_denoised_cache(
    cfg: Config, dataset: Dataset, cache_root: str | os.PathLike, batch_size: int = 64, progress: bool = False
) -> Path:
    """Sample ``z'_0`` for every item of ``dataset`` (a ``HarmonyDataset`` at the Harmony-VAE's size),
    skipping those already cached; return the finished folder.

    Raises:
        ForeignKeyError: the folder holds latents of another denoiser.
    """
    folder = denoised_cache(cfg, cache_root)
    if folder.is_done():
        return Path(folder.path)
    path = folder.open()
    todo = [i for i in range(len(dataset)) if not _npy_path(path, dataset[i]).is_file()]
    pipe = forward_denoiser(cfg) if todo else None
    sf = pipe.vae.config.scaling_factor if pipe is not None else 1.0
    chunks = range(0, len(todo), batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="denoised latents", unit="batch")
    for i0 in chunks:
        items = [dataset[i] for i in todo[i0 : i0 + batch_size]]
        images = [((it["composite"] + 1) / 2).clamp(0, 1) for it in items]  # (3, S, S) in [0, 1]
        masks = [it["mask"][0].numpy() for it in items]  # (S, S) in {0, 1}
        gens = [make_generator(derive_seed(cfg.seed, "denoised", it["name"])) for it in items]
        size = int(images[0].shape[-1])
        with torch.no_grad():
            z = pipe(images, masks, generator=gens, size_mode="square", size=size,
                     output_type="latent", num_inference_steps=STEPS).images  # (b, 4, S/f, S/f), scaled  # fmt: skip
        for it, zi in zip(items, z / sf, strict=True):  # unscaled, as the decoder takes it
            buf = io.BytesIO()
            np.save(buf, zi.float().numpy())
            dest = _npy_path(path, it)
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(dest, buf.getvalue())
    folder.mark_done({"count": len(dataset)})
    return path


class DenoisedLatentDataset(Dataset):
    """``base`` items plus ``latent``: the cached ``z'_0`` (4, h, w), unscaled.

    Raises:
        FileNotFoundError: a sample has no cached latent (run :func:`build_denoised_cache` first).
    """

    def __init__(self, base: Dataset, cache_dir: str | os.PathLike):
        self.base = base
        self.cache_dir = Path(cache_dir)
        missing = [
            s.name for s in base.samples if not (self.cache_dir / s.subset / f"{s.name}.npy").is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f"{self.cache_dir}: no denoised latent for {len(missing)} samples, e.g. {missing[:3]}"
            )

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        return {**item, "latent": torch.from_numpy(np.load(_npy_path(self.cache_dir, item)))}

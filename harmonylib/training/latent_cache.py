"""Frozen-VAE latents of a fixed photo-crop list with fixed inpainting masks, cached on disk.

SD-inpainting's objective encodes the image and its masked image at every step. With the VAE
frozen and the crop list fixed (:class:`~harmonylib.data.photo_crops.PhotoCropDataset`), both
encodings can be done once: crop ``i`` gets ``masks_per_crop`` masks, mask ``k`` drawn from
``derive_seed(seed, "inpaint-mask", i, k)``, and the cache stores

- ``moments`` (N, 2C, h, w): the posterior ``cat[mean, logvar]`` of every crop;
- ``masked_moments`` (N*K, 2C, h, w): the same for ``crop * (mask < 0.5)`` of every (crop, mask);
- ``mask_latents`` (N*K, 1, h, w) uint8: each mask nearest-resized to the latent grid.

Moments are stored as float16 (half the memory; a relative rounding of at most 2^-11, far below
the posterior noise the objective samples anyway). The UNet then trains for many steps without
touching the VAE: the posterior sample, the noise and the timestep are still drawn fresh from the
step's generator (:func:`harmonylib.training.inpainting.inpainting_loss`).

The folder holds ``latents.safetensors`` and ``LATENT_CACHE.json`` (written last, with ``key``);
a folder with another key is refused, as the stage-1 cache does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from harmonylib.io import atomic_path, atomic_write_json
from harmonylib.models.unet import prepare_mask_latents
from harmonylib.reproducibility import derive_seed, make_generator
from harmonylib.training.inpainting import masked_image, posterior_moments, random_inpainting_mask

CACHE_FILE = "LATENT_CACHE.json"
TENSORS_FILE = "latents.safetensors"


def read_latent_cache_info(cache_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = Path(cache_dir) / CACHE_FILE
    return json.loads(p.read_text()) if p.is_file() else None


def crop_mask(index: int, k: int, size: int, seed: int, mix: tuple[float, ...]) -> torch.Tensor:
    """Mask ``k`` of crop ``index``, (1, size, size): a pure function of (seed, index, k)."""
    return random_inpainting_mask(
        size, size, make_generator(derive_seed(seed, "inpaint-mask", index, k)), mix
    )[0]


@torch.no_grad()
def build_inpainting_latent_cache(
    crops: Dataset,
    vae: torch.nn.Module,
    cache_dir: str | os.PathLike,
    *,
    masks_per_crop: int,
    mask_mix: tuple[float, ...],
    seed: int,
    key: str,
    batch_size: int = 16,
    progress: bool = False,
) -> Path:
    """Encode every crop and its masked versions once (see the module docstring).

    Args:
        crops: items with ``image`` (3, S, S) in [-1, 1] (a ``PhotoCropDataset``).
        vae: the frozen ``AutoencoderKL`` (``eval()``, CPU or GPU).
        cache_dir: the cache folder.
        masks_per_crop: K, masks per crop.
        mask_mix: probabilities of the mask kinds.
        seed: masks derive from (seed, crop, k).
        key: identifies (VAE, crops, masks); a folder with another key raises ``ValueError``.
        batch_size: crops per VAE call.
        progress: a progress bar.

    Returns:
        ``cache_dir``; an existing complete cache with the same key is reused as is.
    """
    from safetensors.torch import save_file

    cache_dir = Path(cache_dir)
    info = read_latent_cache_info(cache_dir)
    if info is not None:
        if info.get("key") != key:
            raise ValueError(f"{cache_dir} holds latents of {info.get('key')!r}, not {key!r}")
        return cache_dir
    device = next(vae.parameters()).device
    moments, masked, mask_lat = [], [], []
    loader: Any = DataLoader(crops, batch_size=batch_size, shuffle=False)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="inpainting latent cache", unit="batch")
    for batch in loader:
        img = batch["image"].to(device)  # (B, 3, S, S)
        b, _, s, _ = img.shape
        mom = posterior_moments(vae, img).float()  # (B, 2C, h, w)
        moments.append(mom.half().cpu())
        for k in range(masks_per_crop):
            m = torch.stack([crop_mask(int(i), k, s, seed, mask_mix) for i in batch["index"]]).to(device)
            masked.append((k, batch["index"], posterior_moments(vae, masked_image(img, m)).half().cpu()))
            mask_lat.append(
                (k, batch["index"], prepare_mask_latents(m, mom.shape[-2:]).to(torch.uint8).cpu())
            )
    n = len(crops)
    mom_all = torch.cat(moments)  # (N, 2C, h, w)
    # row of (crop i, mask k) = i * K + k
    masked_all = torch.empty((n * masks_per_crop, *mom_all.shape[1:]), dtype=torch.float16)
    lat_all = torch.empty((n * masks_per_crop, 1, *mom_all.shape[-2:]), dtype=torch.uint8)
    for (k, idx, t), (_, _, ml) in zip(masked, mask_lat, strict=True):
        rows = idx.long() * masks_per_crop + k
        masked_all[rows], lat_all[rows] = t, ml
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache_dir / TENSORS_FILE) as tmp:
        tensors = {"moments": mom_all, "masked_moments": masked_all, "mask_latents": lat_all}
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    atomic_write_json(
        cache_dir / CACHE_FILE,
        {"key": key, "crops": n, "masks_per_crop": masks_per_crop, "latent_shape": list(mom_all.shape[1:])},
    )
    return cache_dir


class InpaintingLatentDataset(Dataset):
    """Items ``{"moments", "masked_moments", "mask_latents", "index"}`` of a built cache; item
    ``j`` is crop ``j // K`` with its mask ``j % K``.

    Raises:
        FileNotFoundError: the folder holds no complete cache.
    """

    def __init__(self, cache_dir: str | os.PathLike):
        from safetensors.torch import load_file

        self.cache_dir = Path(cache_dir)
        info = read_latent_cache_info(self.cache_dir)
        if info is None:
            raise FileNotFoundError(
                f"{self.cache_dir}: no {CACHE_FILE} (build_inpainting_latent_cache first)"
            )
        t = load_file(str(self.cache_dir / TENSORS_FILE))
        self.k = int(info["masks_per_crop"])
        self.moments, self.masked, self.mask_lat = t["moments"], t["masked_moments"], t["mask_latents"]

    def __len__(self) -> int:
        return self.masked.shape[0]

    def __getitem__(self, j: int) -> dict[str, Any]:
        return {
            "moments": self.moments[j // self.k].float(),  # (2C, h, w)
            "masked_moments": self.masked[j].float(),  # (2C, h, w)
            "mask_latents": self.mask_lat[j].float(),  # (1, h, w)
            "index": j,
        }

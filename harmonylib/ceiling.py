"""The autoencoder ceiling of a latent harmonizer: the real image itself, encoded and decoded.

A latent model that predicted the real image's latent exactly would still be scored on what its
decoder makes of that latent. Encoding the ground truth and decoding it measures that ceiling per
image, with the squash and resize of inference, so it can stand beside the model rows of a table:

* ``plain``: ``D(E(real))`` with the base VAE, DiffHarmony's decoder;
* ``harmony_vae``: the Harmony-VAE's decode of ``E(real)`` with ``E_c``'s features of the
  composite and mask, DiffHarmony++'s decoder (``HarmonyVAE.decode_with_cond``).

The paper's motivation (§1, §3.1) is that the first is far from lossless and the second closes
much of the gap; a model row can approach its ceiling but not pass it (up to sampling luck). The
latent is the posterior *mode* and the Harmony-VAE's condition latent its mean, so the ceiling
has no randomness. Inputs are squashed square with PIL bilinear (the authors' inference squash)
and the decoded image is resized to the evaluation size with PIL bilinear, as ``predict_split``
does; the evaluator pastes the ground-truth background as for every other row.

A folder holds ``<stem>.png`` per sample, ``CEILING.json`` with the key it is made from, and, once
complete, ``DONE``; a rerun with the same key writes only the missing files (none: it returns at once), and
a folder made with another key is refused rather than mixed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from harmonylib.cache import CacheFolder, Marker
from harmonylib.io import atomic_save_image, load_mask_l, load_rgb

KEY_FILE = "CEILING.json"
DONE_FILE = "DONE"


def _squash(path: Path, size: int, mask: bool = False) -> torch.Tensor:
    """(1, C, size, size): an image in [-1, 1] (C = 3) or a mask in {0, 1} (C = 1)."""
    if mask:
        from harmonylib.imageproc import threshold_mask

        m = load_mask_l(path).resize((size, size), Image.NEAREST)
        return torch.from_numpy(threshold_mask(np.asarray(m)))[None, None]
    img = load_rgb(path).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    return x / 127.5 - 1.0


@torch.no_grad()
def reconstruct(
    vae: Any, real: torch.Tensor, harmony_vae: Any = None, composite: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """Decode the posterior mode of ``real``: (B, 3, S, S) in [-1, 1] -> (B, 3, S, S) in [-1, 1].

    With ``harmony_vae``, decode through it with ``cond = cat([composite, mask])`` ((B, 4, S, S));
    the latent still comes from ``vae``, the space the UNet works in.
    """
    z = vae.encode(real).latent_dist.mode()  # (B, 4, S/8, S/8), unscaled
    if harmony_vae is None:
        return vae.decode(z).sample.clamp(-1, 1)
    if composite is None or mask is None:
        raise ValueError("the Harmony-VAE ceiling needs the composite and the mask")
    cond = torch.cat([composite, mask], dim=1)  # (B, 4, S, S)
    return harmony_vae.decode_with_cond(z, cond, sample_posterior=False).sample.clamp(-1, 1)


def write_ceiling_predictions(
    samples: Sequence[Any],
    folder: str | os.PathLike,
    vae: Any,
    size: int,
    out_resolution: int | None,
    key: Mapping[str, Any],
    harmony_vae: Any = None,
    batch_size: int = 16,
    progress: bool = False,
) -> Path:
    """``<folder>/<stem>.png``: the ceiling of every sample at a square ``size``, resized to ``out_resolution``.

    Args:
        samples: objects with ``.name``, ``.real``, ``.composite``, ``.mask``.
        vae: the base ``AutoencoderKL``.
        key: what the folder is made from (model hashes, size); a folder made with another key is
            refused rather than mixed.
        harmony_vae: a ``HarmonyVAE`` for the DiffHarmony++ ceiling; None for the plain one.

    Raises:
        FileExistsError: ``folder`` holds a ceiling made with another key.
    """
    from tqdm.auto import tqdm

    cache = CacheFolder(Path(folder), dict(key), key_marker=Marker(KEY_FILE), done=Marker(DONE_FILE),
                        what="a ceiling")  # fmt: skip
    out = cache.open()
    todo = [s for s in samples if not (out / f"{s.name}.png").is_file()]
    if not todo and cache.is_done():
        return out
    for start in tqdm(range(0, len(todo), batch_size), desc=f"ceiling {out.name}", disable=not progress):
        batch = todo[start : start + batch_size]
        real = torch.cat([_squash(s.real, size) for s in batch])  # (b, 3, S, S)
        comp = mask = None
        if harmony_vae is not None:
            comp = torch.cat([_squash(s.composite, size) for s in batch])  # (b, 3, S, S)
            mask = torch.cat([_squash(s.mask, size, mask=True) for s in batch])  # (b, 1, S, S)
        rec = reconstruct(vae, real, harmony_vae, comp, mask)
        pixels = ((rec + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for s, arr in zip(batch, pixels, strict=True):
            img = Image.fromarray(arr)
            if out_resolution is not None:
                img = img.resize((out_resolution, out_resolution), Image.BILINEAR)
            atomic_save_image(out / f"{s.name}.png", img)
    cache.mark_done()
    return out

"""Stage-1 outputs for refinement training, generated once and cached on disk.

The authors run the frozen DiffHarmony pipeline inside every training step, with no generator
(official-implementation.md §4). We generate each training sample's stage-1 output once, with a
per-sample generator derived from (seed, sample name), and read it back from PNGs: the same
inputs for every epoch and every resume, and no diffusion sampling in the training loop.

``stage1(composite, mask, generators) -> image`` is any callable: composite (B, 3, S, S) in
[-1, 1] at ``stage1_resolution``, mask (B, 1, S, S) in {0, 1}, one ``torch.Generator`` per
sample; it returns (B, 3, S, S) in [-1, 1]. Outputs are resized to ``resolution`` (bilinear
with antialias, as the authors) and stored as 8-bit PNGs (rounded; a quantisation of at most
1/255 of the range).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from harmonylib.data.datasets import HarmonyDataset
from harmonylib.data.iharmony4 import Sample
from harmonylib.io import atomic_save_image, atomic_write_json
from harmonylib.reproducibility import derive_seed, make_generator

Stage1Fn = Callable[[torch.Tensor, torch.Tensor, list[torch.Generator]], torch.Tensor]
CACHE_FILE = "STAGE1_CACHE.json"


def _png_path(cache_dir: Path, sample: Sample) -> Path:
    return cache_dir / sample.subset / f"{sample.name}.png"


def read_cache_info(cache_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = Path(cache_dir) / CACHE_FILE
    return json.loads(p.read_text()) if p.is_file() else None


def build_stage1_cache(
    samples: Sequence[Sample],
    stage1: Stage1Fn,
    cache_dir: str | os.PathLike,
    *,
    resolution: int,
    stage1_resolution: int,
    resize: str = "square",
    seed: int = 0,
    key: str = "",
    batch_size: int = 8,
    progress: bool = False,
) -> Path:
    """Run ``stage1`` on every sample (skipping PNGs already there) and write the cache marker.

    Args:
        samples: the training samples.
        stage1: the frozen stage-1 model as a callable (see the module docstring).
        cache_dir: where the PNGs go (``<subset>/<name>.png``) with ``STAGE1_CACHE.json``.
        resolution: side of the stored outputs (the refinement's training size, 256).
        stage1_resolution: side at which stage 1 runs (512 in the authors' code).
        resize: how inputs are resized to ``stage1_resolution`` (``square`` as the authors).
        seed: per-sample generators are ``derive_seed(seed, "stage1", name)``.
        key: identifies the stage-1 model; a cache with another key is refused.
        batch_size: samples per ``stage1`` call.
        progress: show a progress bar.

    Returns:
        ``cache_dir``.
    """
    cache_dir = Path(cache_dir)
    info = read_cache_info(cache_dir)
    if info is not None and info.get("key") != key:
        raise ValueError(f"{cache_dir} holds stage-1 outputs of {info.get('key')!r}, not {key!r}")
    todo = [i for i, s in enumerate(samples) if not _png_path(cache_dir, s).is_file()]
    ds = HarmonyDataset([samples[i] for i in todo], stage1_resolution, resize)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False)
    it: Any = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, desc="stage-1 cache", unit="batch")
    for batch in it:
        names = batch["name"]
        gens = [make_generator(derive_seed(seed, "stage1", name)) for name in names]
        with torch.no_grad():
            out = stage1(batch["composite"], batch["mask"], gens)  # (B, 3, S, S) in [-1, 1]
        out = out.float().cpu()
        if out.shape[-1] != resolution or out.shape[-2] != resolution:
            out = F.interpolate(out, size=(resolution, resolution), mode="bilinear", antialias=True)
        arr = (
            ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        )  # (B, H, W, 3)
        for j, i in enumerate(batch["index"].tolist()):
            atomic_save_image(_png_path(cache_dir, ds.samples[i]), Image.fromarray(arr[j]))
    atomic_write_json(
        cache_dir / CACHE_FILE,
        {
            "key": key,
            "count": len(samples),
            "resolution": resolution,
            "stage1_resolution": stage1_resolution,
            "seed": seed,
        },
    )
    return cache_dir


class Stage1Dataset(Dataset):
    """A :class:`HarmonyDataset` at the refinement size plus the cached stage-1 output (``stage1``).

    Raises:
        FileNotFoundError: a sample has no cached output (run :func:`build_stage1_cache` first).
    """

    def __init__(self, base: HarmonyDataset, cache_dir: str | os.PathLike):
        self.base = base
        self.cache_dir = Path(cache_dir)
        missing = [s.name for s in base.samples if not _png_path(self.cache_dir, s).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{self.cache_dir}: no stage-1 output for {len(missing)} samples, e.g. {missing[:3]}"
            )
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        t = self._cache.get(index)
        if t is None:
            arr = np.asarray(Image.open(_png_path(self.cache_dir, self.base.samples[index])).convert("RGB"))
            t = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1.0  # (3, H, W)
            if tuple(t.shape[-2:]) != tuple(item["real"].shape[-2:]):
                raise ValueError(
                    f"cached stage-1 output {tuple(t.shape)} does not match {tuple(item['real'].shape)}"
                )
            self._cache[index] = t
        return {**item, "stage1": t}

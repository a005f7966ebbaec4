"""Dataset-wide inference: one PNG per test composite, cached, resumable and sharded.

The tables score folders of predictions named ``<composite stem>.png`` (the authors' naming,
``scripts/inference/main.py``). This module fills such a folder from a
:class:`~harmonylib.pipeline.DiffHarmonyPipeline` with the authors' settings by default
(official-implementation.md §3): square squash to ``size``, 5 Euler-ancestral steps, output
resized to 256 with PIL bilinear. Two deliberate differences: outputs are rounded to uint8 (the
authors truncate), and each sample draws from its own generator seeded by (seed, composite
name), so a prediction does not depend on batch size, order or the number of processes.

``float_format="npy"`` also writes ``<stem>.npy``: the same prediction before rounding, (R, R, 3)
float32 on the 0–255 scale, resized with the same PIL bilinear filter, for the ``issam`` metric
convention (``harmonylib.conventions``), which scores float outputs. The PNGs do not change.

A folder holds ``INFERENCE.json`` (the settings and their hash) and, once complete, ``DONE``.
A rerun with the same settings skips finished images; a folder made with other settings is
refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harmonylib.cache import CacheFolder, Marker
from harmonylib.float_predictions import save_float_prediction
from harmonylib.io import atomic_save_image, load_mask_l, load_rgb
from harmonylib.reproducibility import derive_seed, make_generator

SETTINGS_FILE = "INFERENCE.json"
DONE_FILE = "DONE"


@dataclass(frozen=True)
class InferenceSettings:
    """How predictions are made; its hash names the cache.

    Attributes:
        size: processing resolution (the paper's R_inf: 512 or 1024; mini maps them to 64/128).
        size_mode: ``"square"`` (the authors' squash) or ``"keep_aspect"``.
        steps: Euler-ancestral steps (paper §5.2: 5).
        output_resolution: saved size (square); None keeps the processing output.
        keep_background: paste the composite's background back (the authors do not; the
            evaluator pastes the ground-truth background anyway).
        refine: run the refinement UNet (Table 4 grey rows).
        seed: base of the per-sample seeds.
        direction: ``"forward"`` (harmonize) or ``"inverse"``.
        model: a free-form description of the models (e.g. run hashes); part of the hash.
    """

    size: int = 1024
    size_mode: str = "square"
    steps: int = 5
    output_resolution: int | None = 256
    keep_background: bool = False
    refine: bool = False
    seed: int = 0
    direction: str = "forward"
    model: str = ""

    def hash(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    return [x for i, x in enumerate(items) if i % world_size == rank]


def _process_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    from accelerate import PartialState

    state = PartialState()
    return state.process_index, state.num_processes


def harmonize_batch(
    pipeline: Callable[..., Any],
    images: Sequence[Any],
    masks: Sequence[Any],
    names: Sequence[str],
    settings: InferenceSettings,
    **overrides: Any,
) -> list[Any]:
    """One pipeline call for a batch, each sample drawing from its own generator.

    The generator of sample ``i`` is seeded from ``(settings.seed, names[i])``, so an output does
    not depend on the batch it ran in. ``overrides`` replace pipeline arguments (the CLI passes
    ``refine=None``, "whatever the pipeline has", and ``resize_to_input``).

    Returns:
        The pipeline's ``images`` (PIL unless ``output_type`` is overridden), in input order.
    """
    kwargs: dict[str, Any] = {
        "num_inference_steps": settings.steps,
        "generator": [make_generator(derive_seed(settings.seed, n)) for n in names],
        "direction": settings.direction,
        "size_mode": settings.size_mode,
        "size": settings.size,
        "keep_background": settings.keep_background,
        "refine": settings.refine,
        "output_type": "pil",
    }
    kwargs.update(overrides)
    return pipeline(list(images), list(masks), **kwargs).images


def predict_split(
    pipeline: Callable[..., Any],
    samples: Sequence[Any],
    out_dir: str | os.PathLike,
    settings: InferenceSettings,
    batch_size: int = 8,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
    float_format: str | None = None,
) -> Path:
    """Write ``<out_dir>/<stem>.png`` for every sample (this process's share of them).

    Args:
        pipeline: a DiffHarmonyPipeline (or anything with its call signature).
        samples: objects with ``.name``, ``.composite``, ``.mask`` (and ``.real`` for inverse).
        out_dir: the predictions folder.
        settings: see :class:`InferenceSettings`.
        batch_size: images per pipeline call; results do not depend on it.
        rank, world_size: this process's shard (sample i goes to rank i % world_size); by
            default from accelerate, so ``accelerate launch`` shards automatically.
        float_format: ``"npy"`` to also write ``<stem>.npy`` float predictions (see the module
            docstring); not part of the settings' hash, since the PNGs are the same.

    Returns:
        ``out_dir``. ``DONE`` is written by whichever process finds every file present.

    Raises:
        FileExistsError: ``out_dir`` holds predictions made with other settings.
    """
    meta = {"settings": asdict(settings), "hash": settings.hash(), "n": len(samples)}
    cache = _cache(out_dir, settings)
    out = cache.open(record=meta)

    if float_format not in (None, "npy"):
        raise ValueError(f"float_format {float_format!r}: predict_split writes 'npy' (or None)")
    rank, world_size = _process_rank(rank, world_size)
    suffixes = (".png", ".npy") if float_format else (".png",)
    todo = [
        s
        for s in _shard(samples, rank, world_size)
        if not all((out / f"{s.name}{x}").is_file() for x in suffixes)
    ]

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"predict {out.name}", unit="img", disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        # inverse: the real image is the condition and the output a composite (§4.1)
        images = [load_rgb(s.real if settings.direction == "inverse" else s.composite) for s in batch]
        masks = [load_mask_l(s.mask) for s in batch]
        names = [s.name for s in batch]
        if float_format:
            from harmonylib.pipeline import to_uint8

            arrays = harmonize_batch(pipeline, images, masks, names, settings, output_type="np")  # [0, 1]
            outputs = [Image.fromarray(to_uint8(a)) for a in arrays]  # what output_type="pil" gives
        else:
            outputs = harmonize_batch(pipeline, images, masks, names, settings)
            arrays = [None] * len(batch)
        for s, img, arr in zip(batch, outputs, arrays, strict=True):
            r = settings.output_resolution
            if r is not None:
                img = img.resize((r, r), Image.BILINEAR)  # PIL antialiases when shrinking
            if arr is not None:
                save_float_prediction(out / f"{s.name}.npy", _resize_float(arr * 255.0, r))
            atomic_save_image(out / f"{s.name}.png", img)
        bar.update(len(batch))
    bar.close()
    if all((out / f"{s.name}{x}").is_file() for s in samples for x in suffixes):
        cache.mark_done()
    return out


def _resize_float(rgb, r: int | None):
    """(H, W, 3) float → (r, r, 3) float32 with PIL bilinear per channel (mode "F"), as the PNGs."""
    if r is None or rgb.shape[:2] == (r, r):
        return rgb
    planes = [
        Image.fromarray(rgb[..., c].astype("float32"), "F").resize((r, r), Image.BILINEAR) for c in range(3)
    ]
    return np.stack([np.asarray(p) for p in planes], axis=-1)  # (r, r, 3)


def is_complete(out_dir: str | os.PathLike, settings: InferenceSettings) -> bool:
    """Whether ``out_dir`` holds a finished prediction set made with ``settings``."""
    return _cache(out_dir, settings).is_done()


def _cache(out_dir: str | os.PathLike, settings: InferenceSettings) -> CacheFolder:
    """The predictions folder as a :class:`~harmonylib.cache.CacheFolder` keyed by the settings hash."""
    return CacheFolder(
        Path(out_dir), settings.hash(), done=Marker(DONE_FILE), key_marker=Marker(SETTINGS_FILE, "hash"),
        what="predictions made with other settings",
    )  # fmt: skip

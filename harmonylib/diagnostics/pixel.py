"""The pixel baseline (``harmonylib.models.pixel_baseline``) against the unedited composite.

It starts as the identity, so it should never lose to the composite on scenes like its training
scenes; where it does on held-out scenes, the learned correction does not transfer (issue [mini-v2]).
Its predictions are made with :func:`~harmonylib.models.pixel_baseline.harmonize_pixel` at a square
size and resized to the evaluation size, as Table 3 makes them, then scored by the evaluator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from harmonylib.config import EvalConfig
from harmonylib.diagnostics.ceilings import _key_hash, _scored, samples_key
from harmonylib.evaluation import GroundTruthCache
from harmonylib.io import atomic_save_image, atomic_write_text

PIXEL_BASELINE = "Pixel baseline"
DONE_FILE = "DONE"


def load_pixel_baseline(path: str | os.PathLike):
    """A :class:`PixelHarmonizer` from a training run folder (``weights/ema``, else ``live``) or a model folder.

    Raises:
        FileNotFoundError: ``path`` holds neither (the message names it).
    """
    from harmonylib.models.pixel_baseline import PixelHarmonizer

    path = Path(path)
    for folder in (path, path / "weights" / "ema", path / "weights" / "live"):
        if (folder / "config.json").is_file():
            return PixelHarmonizer.from_pretrained(folder).eval()
    raise FileNotFoundError(
        f"{path}: no pixel-baseline model (config.json here or in weights/ema, weights/live)"
    )


def pixel_scores(
    model: Any,
    samples: Sequence[Any],
    size: int,
    work_dir: str | os.PathLike,
    model_key: str,
    eval_cfg: EvalConfig | None = None,
    cache: GroundTruthCache | None = None,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Per-image scores of the pixel baseline at square ``size`` (row ``Pixel baseline``).

    Predictions are cached in ``work_dir`` under a key of (model, size, samples); a folder whose
    ``DONE`` names another key is refused rather than mixed.
    """
    from harmonylib.models.pixel_baseline import harmonize_pixel

    eval_cfg = eval_cfg or EvalConfig()
    key = {"model": model_key, "size": int(size), "out": eval_cfg.resolution, "samples": samples_key(samples)}
    folder = Path(work_dir) / f"pixel-{size}-{_key_hash(key)}"
    stamp = json.dumps(key, sort_keys=True)
    done = folder / DONE_FILE
    if done.is_file() and done.read_text().strip() != stamp:
        raise FileExistsError(f"{folder} holds pixel predictions made with {done.read_text().strip()}")
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        todo = [s for s in samples if not (folder / f"{s.name}.png").is_file()]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            outs = harmonize_pixel(model, [s.composite for s in batch], [s.mask for s in batch], int(size))
            for s, img in zip(batch, outs, strict=True):
                r = eval_cfg.resolution
                atomic_save_image(folder / f"{s.name}.png", img.resize((r, r), Image.BILINEAR))
        atomic_write_text(done, stamp + "\n")
    return _scored(samples, folder, PIXEL_BASELINE, int(size), eval_cfg, cache)

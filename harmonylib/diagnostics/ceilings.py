"""The autoencoder ceilings at each inference size, scored like predictions, beside the composite.

For each size in a list, the real image is encoded (posterior mode) and decoded at that square
size with :func:`harmonylib.ceiling.write_ceiling_predictions` (the base VAE, and optionally the
Harmony-VAE with the composite and mask as its condition), then scored by the project's evaluator
(:func:`harmonylib.evaluation.evaluate_predictions`), exactly as a model's predictions are. The
"Composite" rows score the unedited composites, the bar every harmonizer must clear.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harmonylib.ceiling import write_ceiling_predictions
from harmonylib.config import EvalConfig
from harmonylib.evaluation import GroundTruthCache, evaluate_predictions

COMPOSITE = "Composite"
VAE_CEILING = "VAE ceiling"
HARMONY_VAE_CEILING = "Harmony-VAE ceiling"
SCORE_COLUMNS = ("mse", "psnr", "fmse")


def _key_hash(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(dict(key), sort_keys=True, default=str).encode()).hexdigest()[:12]


def samples_key(samples: Sequence[Any]) -> str:
    """A short hash of the composites' names: a folder of predictions is tied to its sample set."""
    return hashlib.sha256("\n".join(s.name for s in samples).encode()).hexdigest()[:12]


def _scored(
    samples: Sequence[Any], preds: Any, row: str, size: int | None, eval_cfg: EvalConfig, cache
) -> pd.DataFrame:
    df = evaluate_predictions(samples, preds, eval_cfg, cache=cache, progress=False)
    df.insert(0, "row", row)
    df.insert(1, "size", pd.array([size] * len(df), dtype="Int64"))  # <NA> for the composite
    return df[["row", "size", "image", "subset", *SCORE_COLUMNS]]


def composite_scores(
    samples: Sequence[Any], eval_cfg: EvalConfig | None = None, cache: GroundTruthCache | None = None
) -> pd.DataFrame:
    """Per-image scores of the unedited composites (the "Composite" row); ``size`` is <NA>."""
    eval_cfg = eval_cfg or EvalConfig()
    return _scored(samples, [s.composite for s in samples], COMPOSITE, None, eval_cfg, cache)


def ceiling_scores(
    samples: Sequence[Any],
    vae: Any,
    sizes: Sequence[int],
    work_dir: str | os.PathLike,
    vae_key: str,
    eval_cfg: EvalConfig | None = None,
    harmony_vae: Any = None,
    harmony_vae_key: str = "",
    cache: GroundTruthCache | None = None,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Per-image scores of the VAE ceiling (and the Harmony-VAE ceiling) at each of ``sizes``.

    Args:
        samples: objects with ``.name``, ``.subset``, ``.real``, ``.composite``, ``.mask``.
        vae: the base ``AutoencoderKL`` (the UNet's latent space).
        sizes: square processing sides, e.g. the profile's inference sizes.
        work_dir: where the decoded images go (one cached folder per kind and size).
        vae_key, harmony_vae_key: identities of the models (hashes); part of each folder's key.
        eval_cfg: the evaluation protocol (resolution 256, gt background, dithered mask by default).
        harmony_vae: a ``HarmonyVAE`` for the DiffHarmony++ ceiling; None leaves its rows out.

    Returns:
        Rows ``row`` (``VAE ceiling`` / ``Harmony-VAE ceiling``), ``size``, ``image``, ``subset``,
        ``mse``, ``psnr``, ``fmse``.
    """
    eval_cfg = eval_cfg or EvalConfig()
    cache = cache if cache is not None else GroundTruthCache()
    kinds = [(VAE_CEILING, None, vae_key)]
    if harmony_vae is not None:
        kinds.append((HARMONY_VAE_CEILING, harmony_vae, harmony_vae_key))
    frames = []
    for size in sizes:
        for row, hvae, model_key in kinds:
            key = {
                "row": row,
                "vae": vae_key,
                "model": model_key,
                "size": int(size),
                "out": eval_cfg.resolution,
                "samples": samples_key(samples),
            }
            slug = "vae" if hvae is None else "harmony_vae"
            folder = Path(work_dir) / f"ceiling-{slug}-{size}-{_key_hash(key)}"
            write_ceiling_predictions(
                samples,
                folder,
                vae,
                int(size),
                eval_cfg.resolution,
                key,
                harmony_vae=hvae,
                batch_size=batch_size,
            )
            frames.append(_scored(samples, folder, row, int(size), eval_cfg, cache))
    return pd.concat(frames, ignore_index=True)


def summarise_scores(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SE of MSE, PSNR and fMSE per (split, row, size)."""
    from harmonylib.diagnostics.common import summarise

    by = [c for c in ("split", "row", "size") if c in per_image]
    return summarise(per_image.astype({"size": "object"}), by, list(SCORE_COLUMNS))

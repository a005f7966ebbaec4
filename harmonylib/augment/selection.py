"""Step 3 of the augmentation: the harmony classifier scores the candidates, the best is kept (§4.2).

:func:`score_candidates` writes P(unharmonious) (the classifier's class 1) into every manifest
record; :func:`select_best` keeps, per group, the candidate with the highest score.

Selection is per (real, mask) pair, not per real image as in the authors'
``classify_cand_gen_data.py`` (which also crashed on groups of unequal size, §5, §10.10);
``group_by="image"`` gives the authors' grouping.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from harmonylib.augment.manifest import AugmentError, read_manifest, write_manifest
from harmonylib.imageproc import threshold_mask
from harmonylib.io import load_mask_l, load_rgb

GROUP_BY = ("mask", "image")


def _load_for_classifier(path: Path, input_size: int) -> torch.Tensor:
    """(3, S, S) float in [0, 1]: one image squashed to the classifier's input size."""
    arr = np.asarray(load_rgb(path), dtype=np.float32) / 255.0  # (H, W, 3)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None]  # (1, 3, H, W)
    if tuple(x.shape[-2:]) != (input_size, input_size):
        x = F.interpolate(
            x, size=(input_size, input_size), mode="bilinear", align_corners=False, antialias=True
        )
    return x[0]


def _load_mask_for_classifier(path: Path, input_size: int) -> torch.Tensor:
    """(1, S, S) float in [0, 1]: a thresholded mask, area-resized to the classifier's input size."""
    m = torch.from_numpy(threshold_mask(load_mask_l(path)))[None, None]  # (1, 1, H, W) in {0, 1}
    if tuple(m.shape[-2:]) != (input_size, input_size):
        m = F.interpolate(m, size=(input_size, input_size), mode="area")
    return m[0]


def classifier_needs_mask(classifier: Any) -> bool:
    """Whether ``classifier`` pools over the foreground mask (a probe with ``pooling: mask``)."""
    return bool(getattr(classifier, "requires_mask", False))


@torch.no_grad()
def score_images(
    classifier: Any,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    mask_paths: Sequence[str | os.PathLike] | None = None,
) -> np.ndarray:
    """P(unharmonious) of each image, shape (N,), float64.

    Each image is squashed to the classifier's input size on its own, then batched; the
    classifier runs in ``eval()`` mode, so a score does not depend on the batch it is in.
    ``mask_paths`` (one per image, its foreground mask) is required by a mask-pooled classifier
    and ignored by any other.

    Raises:
        ValueError: a mask-pooled classifier without ``mask_paths``, or a count mismatch.
    """
    use_mask = classifier_needs_mask(classifier)
    if use_mask and mask_paths is None:
        raise ValueError("the classifier pools over the foreground mask (pooling: mask): pass mask_paths")
    if use_mask and len(mask_paths) != len(paths):
        raise ValueError(f"{len(mask_paths)} mask_paths for {len(paths)} images")
    classifier.eval()
    size = int(getattr(classifier, "input_size", 256))
    lo, hi = getattr(classifier, "value_range", (-1.0, 1.0))
    out = np.empty(len(paths), dtype=np.float64)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        x = torch.stack([_load_for_classifier(Path(p), size) for p in chunk])  # (b, 3, S, S) in [0, 1]
        x = (x * (hi - lo) + lo).to(device)
        if use_mask:
            m_chunk = mask_paths[start : start + batch_size]
            m = torch.stack([_load_mask_for_classifier(Path(p), size) for p in m_chunk])  # (b, 1, S, S)
            p = classifier.predict_proba(x, m.to(device))
        else:
            p = classifier.predict_proba(x)
        out[start : start + len(chunk)] = p.double().cpu().numpy()
    return out


def score_candidates(
    classifier: Any,
    gen_root: str | os.PathLike,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    rescore: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Score every candidate in the merged manifest with the harmony classifier.

    The score (P(unharmonious), the classifier's class 1) goes into each record; the manifest is
    rewritten atomically. Records that already have a score are kept unless ``rescore``. A
    mask-pooled classifier gets each candidate's mask, ``<gen_root>/<subset>/masks/<mask_id>.png``
    (written beside the candidates by ``generate_candidates``).

    Returns:
        The manifest records, with scores.
    """
    gen_root = Path(gen_root)
    records = read_manifest(gen_root)
    todo = [r for r in records if rescore or r.get("score") is None]
    for start in tqdm(range(0, len(todo), batch_size * 16), desc="scoring", disable=not progress):
        chunk = todo[start : start + batch_size * 16]
        masks = None
        if classifier_needs_mask(classifier):
            masks = [gen_root / r["subset"] / "masks" / f"{r['mask_id']}.png" for r in chunk]
            absent = [str(m) for m in masks if not m.is_file()]
            if absent:
                raise AugmentError(
                    f"{absent[0]}: no mask for a candidate; the mask-pooled classifier needs it"
                )
        scores = score_images(
            classifier, [gen_root / r["file"] for r in chunk], batch_size, device, mask_paths=masks
        )
        for r, s in zip(chunk, scores, strict=True):
            r["score"] = float(s)
    write_manifest(gen_root, records)
    return records


def select_best(records: Iterable[Mapping[str, Any]], group_by: str = "mask") -> dict[str, dict[str, Any]]:
    """The candidate with the highest P(unharmonious) in each group (paper §4.2).

    Args:
        records: manifest records with a ``score``.
        group_by: ``"mask"`` (default: per (real, mask) pair) or ``"image"`` (per real image, as
            the authors' script did). Groups may have any size; ties go to the lowest ``j``.

    Returns:
        ``{group key: record}``; keys are pair ids (``<Subset>/<mask_id>``) or ``<Subset>/<real id>``.

    Raises:
        AugmentError: a record has no score.
    """
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {list(GROUP_BY)}, got {group_by!r}")
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("score") is None:
            raise AugmentError(f"candidate {r.get('name')!r} has no score; run score_candidates first")
        key = r["pair_id"] if group_by == "mask" else f"{r['subset']}/{r['mask_id'].split('_', 1)[0]}"
        cur = best.get(key)
        if cur is None or (r["score"], -int(r["j"])) > (cur["score"], -int(cur["j"])):
            best[key] = dict(r)
    return best

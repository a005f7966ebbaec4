"""Step 1 of the augmentation: K candidate composites per (real, mask) pair from the inverse pipeline.

The inverse pipeline (``direction="inverse"``) takes a real image and its mask and returns a
composite. Candidates are written into the generated root (:mod:`harmonylib.augment.manifest`).

Seeds. Candidate ``j`` of pair ``<Subset>/<id>_<mask>`` is drawn with its own generator seeded by
``derive_seed(seed, "candidate", pair_id, j)``: candidates differ from each other, and a
candidate's pixels do not depend on the batch size, the order of pairs or the number of processes
(the authors re-seeded one generator per batch, so their K rounds differed only through the
shuffled batch position, official-implementation.md §3.4, §10.9).

Geometry. The pipeline runs with ``size_mode="keep_aspect"`` by default and returns the result at
the real image's native size with the real background pasted back through the binarised mask
(``keep_background=True``), so every candidate is aligned with its mask. (The authors saved
1024×1024 squashes of the whole decoder output composited at 1024², §3.4.) PNG, lossless.

Multi-process generation: under ``accelerate launch`` each process takes the pairs ``i`` with
``i % world_size == rank`` and appends to its own manifest part; the main process merges the
parts into ``manifest.jsonl`` (atomically) once every process is done.

Provenance: every manifest record carries the sha256 of the models that made it
(:func:`model_hashes`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from harmonylib.augment.manifest import (
    CANDIDATE_SUFFIX,
    PARTS_DIR,
    _read_jsonl,
    _repair_tail,
    merge_manifests,
)
from harmonylib.data.iharmony4 import Pair
from harmonylib.io import atomic_save_image, link_or_copy
from harmonylib.reproducibility import derive_seed, make_generator

LINK_MODES = ("hardlink", "copy")


# ---------------------------------------------------------------------------------- hashes


def hash_folder(path: str | os.PathLike) -> str:
    """sha256 over a folder's files (relative path and content, sorted): a model's fingerprint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model folder does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update((f.relative_to(path).as_posix() if f != path else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def hash_state_dict(module: torch.nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes, bytes), for in-memory models."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_hashes(pipeline: Any, model_paths: Mapping[str, str | os.PathLike] | None = None) -> dict[str, str]:
    """``{component: "sha256:<hex>"}`` of the component folders given, else of the in-memory
    state dicts (``"state_dict_sha256:<hex>"``) of the pipeline's torch modules."""
    if model_paths:
        return {k: "sha256:" + hash_folder(v) for k, v in sorted(model_paths.items())}
    out = {}
    components = getattr(pipeline, "components", None) or {}
    for name, comp in sorted(components.items()):
        if isinstance(comp, torch.nn.Module):
            out[name] = "state_dict_sha256:" + hash_state_dict(comp)
    return out


# ------------------------------------------------------------------------------ generation


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int, Any]:
    if rank is not None and world_size is not None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        return int(rank), int(world_size), None
    if rank is not None or world_size is not None:
        raise ValueError("give both rank and world_size, or neither (then accelerate's PartialState decides)")
    from accelerate import PartialState

    # accelerate only sets up a CPU process group when asked (``accelerate launch --cpu`` sets
    # ACCELERATE_USE_CPU); under plain torchrun on a machine without an accelerator, ask here.
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not (
        torch.accelerator.is_available()
    )
    state = PartialState(cpu=cpu)
    env_world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if env_world > 1 and state.num_processes != env_world:
        raise RuntimeError(
            f"WORLD_SIZE={env_world} but accelerate sees {state.num_processes} process(es); every process "
            "would write the same share. Launch with `accelerate launch`, or pass rank and world_size."
        )
    return state.process_index, state.num_processes, state


def candidate_seed(seed: int, pair: Pair, j: int) -> int:
    """The seed of candidate ``j`` of ``pair``: a function of (seed, pair id, j) only."""
    return derive_seed(int(seed), "candidate", pair.pair_id, int(j))


def generate_candidates(
    pipeline: Any,
    pairs: Sequence[Pair],
    out_root: str | os.PathLike,
    k: int,
    seed: int,
    batch_size: int = 8,
    *,
    num_inference_steps: int = 5,
    size_mode: str = "keep_aspect",
    size: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    model_paths: Mapping[str, str | os.PathLike] | None = None,
    link_mode: str = "hardlink",
    progress: bool = True,
    merge: bool | None = None,
) -> Path:
    """Generate ``k`` candidate composites per (real, mask) pair with the inverse pipeline.

    Resumable: candidates whose PNG exists are not generated again (their manifest record is
    re-created if missing). Each process appends to ``manifest.parts/rank<r>-of-<w>.jsonl``.

    Args:
        pipeline: a ``DiffHarmonyPipeline`` trained for ``direction="inverse"`` (anything with
            the same call signature returning ``.images`` works).
        pairs: from :func:`pairs_from_samples` (or built directly, as the Human Harmony builder does).
        out_root: the generated root (iHarmony4 layout; see the module docstring).
        k: candidates per pair (paper: 10).
        seed: base seed; candidate seeds are ``derive_seed(seed, "candidate", pair_id, j)``.
        batch_size: candidates per pipeline call; never changes a result (beyond float rounding).
        num_inference_steps, size_mode, size: passed to the pipeline (paper: 5 steps; the authors
            squashed to 1024², ``size_mode="square", size=1024``).
        rank, world_size: this process's share is ``pairs[i]`` with ``i % world_size == rank``.
            Default: accelerate's ``PartialState``.
        model_paths: ``{component: folder}`` whose sha256 goes into the manifest; default: hashes
            of the pipeline's in-memory state dicts.
        link_mode: ``"hardlink"`` (falls back to copying across file systems) or ``"copy"``.
        progress: show a progress bar (main process only).
        merge: merge the parts into ``manifest.jsonl`` when done. Default: yes for one process, and
            under a distributed ``PartialState`` (after a barrier, on the main process); with an
            explicit ``rank``/``world_size`` > 1 call :func:`merge_manifests` yourself.

    Returns:
        The path of this process's manifest part.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if link_mode not in LINK_MODES:
        raise ValueError(f"link_mode must be one of {list(LINK_MODES)}, got {link_mode!r}")
    ids = [p.pair_id for p in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError("pairs: the same (subset, mask) pair is listed twice")
    rank, world_size, state = _rank_world(rank, world_size)
    out_root = Path(out_root)
    part = out_root / PARTS_DIR / f"rank{rank:03d}-of-{world_size:03d}.jsonl"
    part.parent.mkdir(parents=True, exist_ok=True)
    _repair_tail(part)
    recorded = {r["name"] for r in _read_jsonl(part)}
    hashes = model_hashes(pipeline, model_paths)

    # This process's share, and what is left to do
    todo: list[tuple[Pair, int, dict[str, Any]]] = []
    missing_records: list[dict[str, Any]] = []
    for i, pair in enumerate(pairs):
        if i % world_size != rank:
            continue
        sub = out_root / pair.subset
        link_or_copy(pair.mask, sub / "masks" / f"{pair.mask_id}.png", link_mode)
        link_or_copy(pair.real, sub / "real_images" / f"{pair.real_id}{pair.real.suffix.lower()}", link_mode)
        for j in range(k):
            name = pair.candidate_name(j)
            rel = f"{pair.subset}/composite_images/{name}{CANDIDATE_SUFFIX}"
            rec = {
                "name": name,
                "file": rel,
                "subset": pair.subset,
                "mask_id": pair.mask_id,
                "pair_id": pair.pair_id,
                "j": j,
                "seed": candidate_seed(seed, pair, j),
                "base_seed": int(seed),
                "source_real": str(pair.real),
                "source_mask": str(pair.mask),
                "num_inference_steps": int(num_inference_steps),
                "size_mode": size_mode,
                "size": size,
                "models": hashes,
                "score": None,
            }
            if (out_root / rel).is_file():
                if name not in recorded:
                    missing_records.append(rec)
            else:
                todo.append((pair, j, rec))

    with open(part, "a") as log:
        for rec in missing_records:
            log.write(json.dumps(rec, sort_keys=True) + "\n")
        log.flush()
        show = progress and rank == 0
        bar = tqdm(total=len(todo), desc=f"candidates (rank {rank}/{world_size})", disable=not show)
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            images = pipeline(
                image=[str(p.real) for p, _, _ in batch],
                mask_image=[str(p.mask) for p, _, _ in batch],
                num_inference_steps=num_inference_steps,
                generator=[make_generator(rec["seed"]) for _, _, rec in batch],
                output_type="pil",
                direction="inverse",
                size_mode=size_mode,
                size=size,
                keep_background=True,  # the real background, pasted at native size
                resize_to_input=True,
            ).images
            for (_, _, rec), img in zip(batch, images, strict=True):
                atomic_save_image(out_root / rec["file"], img)
                log.write(json.dumps(rec, sort_keys=True) + "\n")
            log.flush()
            bar.update(len(batch))
        bar.close()

    if merge is None:
        merge = world_size == 1 or (state is not None and state.num_processes > 1)
    if merge:
        if state is not None and state.num_processes > 1:
            state.wait_for_everyone()
            if state.is_main_process:
                merge_manifests(out_root)
            state.wait_for_everyone()
        else:
            merge_manifests(out_root)
    return part

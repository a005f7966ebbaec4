"""Data augmentation with the inverse harmonization model (paper §4.1, §4.2, §5.3.2).

Three steps, each callable on its own:

1. :func:`generate_candidates` -- for every (real, mask) pair, K candidate composites from the
   inverse pipeline (``direction="inverse"``: real image + mask in, composite out).
2. :func:`mix_training_list` -- the blending ratio γ (§4.1): with N1 (real, mask) pairs and N2
   composites in the training split, add ⌈γ·N2/N1⌉ randomly chosen candidates per pair.
3. :func:`score_candidates` + :func:`select_best` -- the harmony classifier scores every
   candidate; per (real, mask) pair the one with the highest P(unharmonious) is kept (§4.2).

Generated root. Candidates go to a root of their own in the iHarmony4 layout, never into the
original dataset::

    <gen_root>/<Subset>/composite_images/<id>_<mask>_<k>.png   candidates, at the real's native size
    <gen_root>/<Subset>/masks/<id>_<mask>.png                  hard links (else copies) of the originals
    <gen_root>/<Subset>/real_images/<id>.jpg                   hard links (else copies) of the originals
    <gen_root>/manifest.jsonl                                  one record per candidate (merged)
    <gen_root>/manifest.parts/rank<r>-of-<w>.jsonl             append-only, one per process
    <gen_root>/IHD_train.txt                                   written by mix_training_list

Masks and reals are linked into the generated root so that ``harmonylib.data.iharmony4`` derives a
candidate's mask and real *within that root* (``derive_paths`` looks beside the composite).

Names. Candidate ``j`` (0-based) of mask ``<id>_<mask>`` is ``<id>_<mask>_<k0 + j + 1>``, where ``k0``
is the largest ``k`` of that mask's existing composites in the original ``composite_images``
folder (0 when there are none). Names therefore never collide with the originals (the authors
wrote ``f800_1_3.jpg`` next to the original ``f800_1_3.jpg``, official-implementation.md §6), and
the reader's name parsing still holds: mask = stem minus its last ``_k``, real = text before the
first ``_``.

Seeds. Candidate ``j`` of pair ``<Subset>/<id>_<mask>`` is drawn with its own generator seeded by
``derive_seed(seed, "candidate", pair_id, j)``: candidates differ from each other, and a
candidate's pixels do not depend on the batch size, the order of pairs or the number of processes
(the authors re-seeded one generator per batch, so their K rounds differed only through the
shuffled batch position, official-implementation.md §3.4, §10.9).

Geometry. The pipeline runs with ``size_mode="keep_aspect"`` by default and returns the result at
the real image's native size with the real background pasted back through the binarised mask
(``keep_background=True``), so every candidate is aligned with its mask. (The authors saved
1024×1024 squashes of the whole decoder output composited at 1024², §3.4.) PNG, lossless.

Selection is per (real, mask) pair, not per real image as in the authors'
``classify_cand_gen_data.py`` (which also crashed on groups of unequal size, §5, §10.10).

Multi-process generation: under ``accelerate launch`` each process takes the pairs ``i`` with
``i % world_size == rank`` and appends to its own manifest part; the main process merges the
parts into ``manifest.jsonl`` (atomically) once every process is done.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from harmonylib.data.iharmony4 import Pair, Sample, read_split  # noqa: F401  (Pair: re-exported)
from harmonylib.io import (  # noqa: F401  (link_or_copy: re-exported)
    atomic_path,
    atomic_save_image,
    atomic_write_json,
    atomic_write_text,
    link_or_copy,
    load_rgb,
)
from harmonylib.reproducibility import derive_seed, make_generator, numpy_rng

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.jsonl"
PARTS_DIR = "manifest.parts"
MIX_FILE = "MIX.json"
GEN_ROOT_NAME = "gen"  # the name the generated root has in read_split's roots mapping
CANDIDATE_SUFFIX = ".png"
GROUP_BY = ("mask", "image")
LINK_MODES = ("hardlink", "copy")

_K_RE = re.compile(r"^(?P<mask>.+)_(?P<k>\d+)$")


class AugmentError(ValueError):
    """Augmentation cannot proceed (too few candidates, missing manifest, ...); the message says why."""


# ------------------------------------------------------------------------------------ pairs


def _existing_k(folder: Path) -> dict[str, int]:
    """mask stem -> largest k among the composites in ``folder`` (names ``<mask>_<k>.*``)."""
    best: dict[str, int] = {}
    if not folder.is_dir():
        return best
    with os.scandir(folder) as it:
        for entry in it:
            m = _K_RE.match(Path(entry.name).stem)
            if m:
                mask, k = m["mask"], int(m["k"])
                if k > best.get(mask, -1):
                    best[mask] = k
    return best


def pairs_from_samples(samples: Iterable[Sample], scan_existing: bool = True) -> list[Pair]:
    """The distinct (real, mask) pairs of a split's samples, in order of first appearance.

    Args:
        samples: from :func:`harmonylib.data.iharmony4.read_split`.
        scan_existing: take ``k_offset`` from *all* composites of each mask found in the original
            ``composite_images`` folders (train and test alike), not only from ``samples``.

    Returns:
        One :class:`Pair` per ``(subset, mask stem)``.
    """
    order: dict[tuple[str, str], Sample] = {}
    max_k: dict[tuple[str, str], int] = {}
    folders: dict[Path, str] = {}  # original composite_images folder -> its subset
    for s in samples:
        key = (s.subset, s.mask_id)
        order.setdefault(key, s)
        m = _K_RE.match(s.name)
        if m:
            max_k[key] = max(max_k.get(key, 0), int(m["k"]))
        folders[s.composite.parent] = s.subset
    if scan_existing:
        for folder, subset in folders.items():
            for mask, k in _existing_k(folder).items():
                key = (subset, mask)
                if key in order:
                    max_k[key] = max(max_k.get(key, 0), k)
    return [
        Pair(subset=sub, mask_id=mid, real=s.real, mask=s.mask, k_offset=max_k.get((sub, mid), 0))
        for (sub, mid), s in order.items()
    ]


# ------------------------------------------------------------------------------- manifests


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a jsonl file; a truncated last line (a killed writer) is ignored."""
    if not path.is_file():
        return []
    out = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # partial last record, re-created on resume
            raise AugmentError(f"{path}:{i + 1}: not a JSON record") from None
    return out


def _repair_tail(path: Path) -> None:
    """Drop a partial last line so that appending starts on a fresh line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        atomic_write_text(path, data[: data.rfind(b"\n") + 1].decode())


def read_manifest(root: str | os.PathLike) -> list[dict[str, Any]]:
    """The merged manifest of a generated root (``manifest.jsonl``), as a list of records.

    Raises:
        AugmentError: there is no merged manifest (run :func:`merge_manifests` first).
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise AugmentError(f"{path}: no manifest; generate candidates first (and merge the ranks' parts)")
    return _read_jsonl(path)


def _record_key(rec: Mapping[str, Any]) -> tuple:
    return (rec["subset"], rec["mask_id"], int(rec["j"]))


def write_manifest(root: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Rewrite ``manifest.jsonl`` atomically, sorted by (subset, mask, j)."""
    path = Path(root) / MANIFEST
    recs = sorted(records, key=_record_key)
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))
    return path


def merge_manifests(root: str | os.PathLike) -> Path:
    """Merge every rank's part (and an existing ``manifest.jsonl``) into ``manifest.jsonl``.

    Records are keyed by candidate name; a score already in the merged manifest is kept.

    Returns:
        The manifest path.
    """
    root = Path(root)
    merged: dict[str, dict[str, Any]] = {}
    for rec in _read_jsonl(root / MANIFEST):
        merged[rec["name"]] = rec
    for part in sorted((root / PARTS_DIR).glob("*.jsonl")):
        for rec in _read_jsonl(part):
            old = merged.get(rec["name"])
            if old is not None and old.get("score") is not None and rec.get("score") is None:
                rec = {**rec, "score": old["score"]}
            merged[rec["name"]] = rec
    return write_manifest(root, merged.values())


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


# ---------------------------------------------------------------------------------- mixing


def mixing_count(gamma: float, n_pairs: int, n_composites: int) -> int:
    """⌈γ·N2/N1⌉ (paper §4.1): generated composites added per (real, mask) pair.

    Computed in exact rational arithmetic (γ is taken as the decimal it is written as), so
    ``γ·N2/N1`` landing on an integer never rounds up by a float error.

    Paper §5.3.2 (γ = 1) quotes train+test counts that are each 3 above the files: HFlickr
    4,836 reals / 8,280 composites (files: 4,833 / 8,277) → 2 per pair either way; Hday2night
    109 / 447 (files: 106 / 444) → 5. :func:`mix_training_list` counts the training split's files.
    """
    if n_pairs <= 0:
        raise ValueError(f"n_pairs (N1) must be positive, got {n_pairs}")
    if n_composites < 0 or gamma < 0:
        raise ValueError(f"gamma and n_composites must be >= 0, got {gamma}, {n_composites}")
    g = Fraction(str(gamma)) if isinstance(gamma, float) else Fraction(gamma)
    return math.ceil(g * n_composites / n_pairs)


@dataclass
class MixResult:
    """What :func:`mix_training_list` added: entries, per-subset counts, the list written."""

    added: list[str]
    counts: dict[str, dict[str, int]]
    list_path: Path | None


def mix_training_list(
    main_root: str | os.PathLike,
    gen_root: str | os.PathLike,
    gamma: float,
    seed: int,
    *,
    subsets: Iterable[str] | None = None,
    split: str = "train",
    gen_root_name: str = GEN_ROOT_NAME,
    write: bool = True,
) -> MixResult:
    """Add ⌈γ·N2/N1⌉ randomly chosen generated candidates per (real, mask) pair (paper §4.1).

    N1 (pairs) and N2 (composites) are counted per subset from the ``split`` list's files (the
    paper's Table 2 augments HFlickr and Hday2night separately, each with γ = 1). The candidates
    of each pair are drawn without replacement with ``numpy_rng(seed, "mix", pair_id)``, so the
    choice does not depend on the order of pairs.

    Writes ``<gen_root>/IHD_<split>.txt`` holding only the added entries
    (``@<gen_root_name>/<Subset>/composite_images/<name>.png``), so that
    ``read_split({"main": main_root, gen_root_name: gen_root}, split)`` reads the augmented list:
    the original entries from the main root plus these. The original lists are never touched.
    ``MIX.json`` beside it records γ, the seed and the counts.

    Raises:
        AugmentError: a pair has fewer candidates than ⌈γ·N2/N1⌉ (the message gives K, N1, N2
            and the number needed), or the generated root has no manifest.
    """
    main_root, gen_root = Path(main_root), Path(gen_root)
    samples = read_split(main_root, split, subsets=subsets, check=False)
    if not samples:
        raise AugmentError(
            f"{main_root}: the {split} list has no samples{' in ' + str(subsets) if subsets else ''}"
        )
    by_pair: dict[str, list[dict[str, Any]]] = {}
    for rec in read_manifest(gen_root):
        by_pair.setdefault(rec["pair_id"], []).append(rec)

    per_subset: dict[str, list[Sample]] = {}
    for s in samples:
        per_subset.setdefault(s.subset, []).append(s)
    added: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for subset, subs in per_subset.items():
        pair_ids = list(dict.fromkeys(f"{s.subset}/{s.mask_id}" for s in subs))
        n1, n2 = len(pair_ids), len(subs)
        m = mixing_count(gamma, n1, n2)
        have = {pid: len(by_pair.get(pid, [])) for pid in pair_ids}
        k_min = min(have.values())
        if k_min < m:
            short = [pid for pid, n in have.items() if n < m]
            raise AugmentError(
                f"{subset}: γ={gamma} needs ⌈γ·N2/N1⌉ = ⌈{gamma}·{n2}/{n1}⌉ = {m} generated candidates per "
                f"(real, mask) pair, but {len(short)} of {n1} pairs have fewer (smallest K = {k_min}, "
                f"e.g. {short[:3]}). Generate at least K = {m} candidates per pair (generate_candidates(k=...))."
            )
        for pid in pair_ids:
            cands = sorted(by_pair[pid], key=lambda r: int(r["j"]))
            rng = numpy_rng(seed, "mix", pid)
            chosen = sorted(rng.choice(len(cands), size=m, replace=False).tolist())
            for c in chosen:
                added.append(f"@{gen_root_name}/{cands[c]['file']}")
        counts[subset] = {"n_pairs": n1, "n_composites": n2, "per_pair": m, "added": n1 * m}

    list_path = None
    if write:
        list_path = gen_root / f"IHD_{split}.txt"
        atomic_write_text(list_path, "".join(e + "\n" for e in added))
        atomic_write_json(
            gen_root / MIX_FILE,
            {"gamma": gamma, "seed": seed, "split": split, "gen_root_name": gen_root_name,
             "main_root": str(main_root), "counts": counts},
        )  # fmt: skip
    return MixResult(added=added, counts=counts, list_path=list_path)


# ------------------------------------------------------------------------- classifier selection


def _load_for_classifier(path: Path, input_size: int) -> torch.Tensor:
    """(3, S, S) float in [0, 1]: one image squashed to the classifier's input size."""
    arr = np.asarray(load_rgb(path), dtype=np.float32) / 255.0  # (H, W, 3)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None]  # (1, 3, H, W)
    if tuple(x.shape[-2:]) != (input_size, input_size):
        x = F.interpolate(
            x, size=(input_size, input_size), mode="bilinear", align_corners=False, antialias=True
        )
    return x[0]


@torch.no_grad()
def score_images(
    classifier: Any,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """P(unharmonious) of each image, shape (N,), float64.

    Each image is squashed to the classifier's input size on its own, then batched; the
    classifier runs in ``eval()`` mode, so a score does not depend on the batch it is in.
    """
    classifier.eval()
    size = int(getattr(classifier, "input_size", 256))
    lo, hi = getattr(classifier, "value_range", (-1.0, 1.0))
    out = np.empty(len(paths), dtype=np.float64)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        x = torch.stack([_load_for_classifier(Path(p), size) for p in chunk])  # (b, 3, S, S) in [0, 1]
        x = (x * (hi - lo) + lo).to(device)
        out[start : start + len(chunk)] = classifier.predict_proba(x).double().cpu().numpy()
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
    rewritten atomically. Records that already have a score are kept unless ``rescore``.

    Returns:
        The manifest records, with scores.
    """
    gen_root = Path(gen_root)
    records = read_manifest(gen_root)
    todo = [r for r in records if rescore or r.get("score") is None]
    for start in tqdm(range(0, len(todo), batch_size * 16), desc="scoring", disable=not progress):
        chunk = todo[start : start + batch_size * 16]
        scores = score_images(classifier, [gen_root / r["file"] for r in chunk], batch_size, device)
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


# --------------------------------------------------------------------------------------- CLI


# --------------------------------------------------------------------------------------------
# Candidate fidelity: how far a composite's foreground lies from its real image, and in what way
# --------------------------------------------------------------------------------------------

FIDELITY_COLUMNS = ("fmse", "colour_shift", "residual_fmse")


def foreground_difference(composite: Any, real: Any, mask: Any) -> dict[str, float]:
    """How a composite's foreground differs from the real image's, split into colour and the rest.

    A good harmonization composite (iHarmony4's, or a useful inverse-model candidate) changes the
    foreground's colour and light but keeps its content sharp; a candidate decoded through a weak
    autoencoder also carries blur and artefacts, which no harmonizer should learn to add or remove.

    Args:
        composite, real: RGB images of one size (paths, PIL images or (H, W, 3) uint8 arrays).
        mask: the foreground mask, same size (thresholded as in training: ``threshold_mask``).

    Returns:
        ``fmse``: mean squared difference over foreground pixels and channels, 0-255 scale;
        ``colour_shift``: mean over channels of |mean_fg(composite) - mean_fg(real)|;
        ``residual_fmse``: the fMSE left after the least-squares per-channel affine map
        composite -> real inside the mask, i.e. what no global colour transform explains.
        NaN for an empty mask.

    Raises:
        ValueError: the three have different sizes.
    """
    from harmonylib.imageproc import threshold_mask
    from harmonylib.io import load_mask_l

    a = np.asarray(load_rgb(composite) if not isinstance(composite, np.ndarray) else composite, np.float64)
    b = np.asarray(load_rgb(real) if not isinstance(real, np.ndarray) else real, np.float64)
    m = threshold_mask(np.asarray(load_mask_l(mask) if not isinstance(mask, np.ndarray) else mask)) > 0
    if a.shape != b.shape or a.shape[:2] != m.shape[:2]:
        raise ValueError(f"sizes differ: composite {a.shape[:2]}, real {b.shape[:2]}, mask {m.shape[:2]}")
    if not m.any():
        return dict.fromkeys(FIDELITY_COLUMNS, float("nan"))
    x, y = a[m], b[m]  # (N, 3) foreground pixels
    residual = []
    for c in range(3):
        design = np.stack([x[:, c], np.ones(len(x))], axis=1)  # (N, 2): gain and offset
        coef, *_ = np.linalg.lstsq(design, y[:, c], rcond=None)
        residual.append(float(np.mean((design @ coef - y[:, c]) ** 2)))
    return {
        "fmse": float(np.mean((x - y) ** 2)),
        "colour_shift": float(np.mean(np.abs(x.mean(0) - y.mean(0)))),
        "residual_fmse": float(np.mean(residual)),
    }


def candidate_fidelity(samples: Iterable[Sample], progress: bool = False) -> pd.DataFrame:
    """:func:`foreground_difference` for every sample (composite vs its real): one row each.

    Columns: ``name``, ``subset``, ``root_name`` and :data:`FIDELITY_COLUMNS`.
    """
    import pandas as pd

    rows = []
    for s in tqdm(list(samples), desc="fidelity", unit="img", disable=not progress):
        try:
            diff = foreground_difference(s.composite, s.real, s.mask)
        except ValueError as exc:
            raise ValueError(f"{s.composite}: {exc}") from None
        rows.append({"name": s.name, "subset": s.subset, "root_name": s.root_name, **diff})
    return pd.DataFrame(rows, columns=["name", "subset", "root_name", *FIDELITY_COLUMNS])


def _load_pipeline(path: str):
    from harmonylib.pipeline import DiffHarmonyPipeline

    return DiffHarmonyPipeline.from_pretrained(path)


def _load_classifier(path: str, arch: str):
    from harmonylib.models.classifier import build_classifier

    return build_classifier(arch).load_authors_checkpoint(path)


def _run_generate(args: argparse.Namespace) -> int:
    samples = read_split(args.root, args.split, subsets=args.subsets)
    pipe = _load_pipeline(args.pipeline)
    if args.device:
        pipe.to(args.device)
    generate_candidates(
        pipe, pairs_from_samples(samples), args.out, k=args.k, seed=args.seed, batch_size=args.batch_size,
        num_inference_steps=args.steps, size_mode=args.size_mode, size=args.size,
        model_paths={"pipeline": args.pipeline},
    )  # fmt: skip
    return 0


def _run_mix(args: argparse.Namespace) -> int:
    res = mix_training_list(args.root, args.out, args.gamma, args.seed, subsets=args.subsets)
    for subset, c in res.counts.items():
        print(
            f"{subset}: N1={c['n_pairs']} N2={c['n_composites']} per pair={c['per_pair']} added={c['added']}"
        )
    print(f"wrote {res.list_path}")
    return 0


def _run_score(args: argparse.Namespace) -> int:
    clf = _load_classifier(args.classifier, args.arch).to(args.device or "cpu")
    score_candidates(clf, args.out, batch_size=args.batch_size, device=args.device or "cpu")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonylib augment {generate,mix,score}``."""
    p = subparsers.add_parser("augment", help="inverse-model data augmentation (paper §4.1)")
    sub = p.add_subparsers(dest="augment_command", metavar="STEP", required=True)
    g = sub.add_parser("generate", help="K candidates per (real, mask) pair (accelerate launch shards it)")
    g.add_argument("--root", required=True, help="original iHarmony4 root")
    g.add_argument("--out", required=True, help="generated root (a separate folder)")
    g.add_argument("--pipeline", required=True, help="saved inverse DiffHarmonyPipeline folder")
    g.add_argument("--split", default="train")
    g.add_argument("--subsets", nargs="*", default=None)
    g.add_argument("--k", type=int, default=10)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--steps", type=int, default=5)
    g.add_argument("--size-mode", default="keep_aspect", choices=("keep_aspect", "square"))
    g.add_argument("--size", type=int, default=None)
    g.add_argument("--device", default=None)
    g.set_defaults(func=_run_generate)
    m = sub.add_parser("mix", help="write the γ-mixed training list into the generated root")
    m.add_argument("--root", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--gamma", type=float, default=1.0)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--subsets", nargs="*", default=None)
    m.set_defaults(func=_run_mix)
    s = sub.add_parser("score", help="score candidates with the harmony classifier")
    s.add_argument("--out", required=True)
    s.add_argument("--classifier", required=True, help="model_state_dict.pth")
    s.add_argument("--arch", default="resnet50")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--device", default=None)
    s.set_defaults(func=_run_score)


__all__ = [
    "AugmentError",
    "MixResult",
    "Pair",
    "candidate_seed",
    "generate_candidates",
    "hash_folder",
    "link_or_copy",
    "merge_manifests",
    "mix_training_list",
    "mixing_count",
    "model_hashes",
    "pairs_from_samples",
    "read_manifest",
    "score_candidates",
    "score_images",
    "select_best",
    "write_manifest",
]

"""The generated root of inverse-model candidates: its layout, the candidates' names, the manifest.

Generated root. Candidates go to a root of their own in the iHarmony4 layout, never into the
original dataset::

    <gen_root>/<Subset>/composite_images/<id>_<mask>_<k>.png   candidates, at the real's native size
    <gen_root>/<Subset>/masks/<id>_<mask>.png                  hard links (else copies) of the originals
    <gen_root>/<Subset>/real_images/<id>.jpg                   hard links (else copies) of the originals
    <gen_root>/manifest.jsonl                                  one record per candidate (merged)
    <gen_root>/manifest.parts/rank<r>-of-<w>.jsonl             append-only, one per process
    <gen_root>/IHD_train.txt                                   written by mix_training_list
    <gen_root>/MIX.json                                        γ, seed and counts of that list

Masks and reals are linked into the generated root so that ``harmonylib.data.iharmony4`` derives a
candidate's mask and real *within that root* (``derive_paths`` looks beside the composite).

Names. Candidate ``j`` (0-based) of mask ``<id>_<mask>`` is ``<id>_<mask>_<k0 + j + 1>``, where ``k0``
is the largest ``k`` of that mask's existing composites in the original ``composite_images``
folder (0 when there are none; :func:`pairs_from_samples` finds it). Names therefore never collide
with the originals (the authors wrote ``f800_1_3.jpg`` next to the original ``f800_1_3.jpg``,
official-implementation.md §6), and the reader's name parsing still holds: mask = stem minus its
last ``_k``, real = text before the first ``_``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harmonylib.data.iharmony4 import Pair, Sample
from harmonylib.io import atomic_write_text

MANIFEST = "manifest.jsonl"
PARTS_DIR = "manifest.parts"
MIX_FILE = "MIX.json"
GEN_ROOT_NAME = "gen"  # the name the generated root has in read_split's roots mapping
CANDIDATE_SUFFIX = ".png"

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

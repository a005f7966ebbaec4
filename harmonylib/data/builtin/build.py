"""Building the built-in dataset into a folder, and finding it again: lists, BUILD.json, atomic swap.

:func:`ensure_builtin` builds only when the folder is absent or was made from another config
(``BUILD.json`` holds the config hash and :data:`GENERATOR_VERSION`); a folder that is not a
built-in dataset is never touched. Everything is deterministic from ``BuiltinDataConfig.seed``:
the same config gives the same bytes for every image and list (``BUILD.json`` differs only in its
build time).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from harmonylib.config import SUBSETS, BuiltinDataConfig, Config, DataConfig, config_hash, to_dict
from harmonylib.data.builtin.composites import _build_real, _photo_draw
from harmonylib.data.builtin.masks import fg_bin
from harmonylib.data.builtin.photos import BuiltinDataError, _load_photo, available_photos
from harmonylib.data.builtin.plan import FG_MIX_COUNTS, plan_dataset, split_names
from harmonylib.imageproc import FG_BIN_LABELS, FG_BINS
from harmonylib.paths import resolve

# Bump when the generator's output changes for the same config: ensure_builtin then rebuilds.
GENERATOR_VERSION = 2
BUILD_FILE = "BUILD.json"
COMPOSITES_FILE = "composites.csv"  # per composite: split, subset, name, photo, recolouring, fg ratio


def _write_lists(out: Path, records: list[dict[str, Any]], splits: Sequence[str]) -> None:
    for split in splits:
        rows = sorted(
            (SUBSETS.index(r["subset"]), r["subset"], r["name"]) for r in records if r["split"] == split
        )
        entries = [f"{s}/composite_images/{n}.jpg" for _, s, n in rows]
        (out / f"IHD_{split}.txt").write_text("".join(e + "\n" for e in entries))
        (out / f"{split}.jsonl").write_text(
            "".join(json.dumps({"file_name": e, "text": ""}) + "\n" for e in entries)
        )
        for s in SUBSETS:
            names = [f"{n}.jpg" for _, s2, n in rows if s2 == s]
            (out / s / f"{s}_{split}.txt").write_text("".join(n + "\n" for n in names))


def _summary(records: list[dict[str, Any]], splits: Sequence[str]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    mix: dict[str, dict[str, float]] = {}
    mix_counts: dict[str, dict[str, int]] = {}
    for split in splits:
        rs = [r for r in records if r["split"] == split]
        c = Counter(r["subset"] for r in rs)
        counts[split] = {s: c.get(s, 0) for s in SUBSETS} | {"total": len(rs)}
        bc = Counter(fg_bin(r["fg_ratio"]) for r in rs)
        mix_counts[split] = {FG_BIN_LABELS[i]: bc.get(i, 0) for i in range(len(FG_BINS))}
        mix[split] = {k: round(v / max(len(rs), 1), 4) for k, v in mix_counts[split].items()}
    return {
        "counts": counts,
        "fg_ratio_mix": mix,
        "fg_ratio_counts": mix_counts,
        "fg_ratio_target": {
            lab: round(c / sum(FG_MIX_COUNTS), 4) for lab, c in zip(FG_BIN_LABELS, FG_MIX_COUNTS, strict=True)
        },
        "mask_methods": dict(
            sorted(
                Counter(
                    m
                    for m in {
                        (r["split"], r["subset"], r["name"].rsplit("_", 1)[0]): r["mask_method"]
                        for r in records
                    }.values()
                ).items()
            )
        ),
        "recolor_methods": dict(sorted(Counter(r["recolor"] for r in records).items())),
    }


def _generate(cfg: BuiltinDataConfig, out: Path, progress: bool = False) -> dict[str, Any]:
    """Write the whole dataset into the (empty) folder ``out``; return the BUILD.json record."""
    t0 = time.perf_counter()
    splits = split_names(cfg)
    found, skipped = available_photos(cfg.photo_set, splits)
    photos: dict[str, list[tuple[str, Image.Image]]] = {split: [] for split in splits}
    for spec, path in found:
        if spec.split not in photos:  # a val photo of a profile without a val split: unused
            continue
        photos[spec.split].append((spec.name, _load_photo(path, cfg.image_size)))
    for s in SUBSETS:
        for d in ("composite_images", "masks", "real_images"):
            (out / s / d).mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(cfg)
    it: Any = plans
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(plans, desc="build-data", unit="real")
    records: list[dict[str, Any]] = []
    for plan in it:
        records += _build_real(plan, cfg, photos, out)
    _write_lists(out, records, splits)
    # One row per composite with the photo it was cut from: composites of one photo are
    # correlated, so the claims' bootstrap resamples photos, not images (harmonylib.claims).
    pd.DataFrame(records).sort_values(["split", "subset", "name"]).to_csv(out / COMPOSITES_FILE, index=False)
    info = {
        "generator_version": GENERATOR_VERSION,
        "config": to_dict(cfg),
        "config_hash": config_hash(cfg),
        "seed": cfg.seed,
        "photos": {split: [n for n, _ in ps] for split, ps in photos.items()},
        "photo_files": {spec.name: f"{spec.package}/{spec.relpath}" for spec, _ in found},
        "skipped_photos": skipped,
        "reals": dict(Counter(f"{p.split}/{p.subset}" for p in plans)),
        "masks": dict(Counter(f"{p.split}/{p.subset}" for p in plans for _ in p.masks)),
        **_summary(records, splits),
        "build_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    (out / BUILD_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def read_build_info(root: str | os.PathLike) -> dict[str, Any] | None:
    """``BUILD.json`` of a built-in dataset folder, or None if absent or unreadable."""
    path = Path(root) / BUILD_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) and "config_hash" in info else None


def composite_photos(root: str | os.PathLike) -> dict[str, str] | None:
    """Composite name -> the photo it was cut from, for a built-in dataset; None for any other root.

    Rebuilt from ``BUILD.json`` without reading pixels: the names come from :func:`plan_dataset`
    and the photo from the real image's first draw (:func:`_photo_draw`), as at build time. The
    claims' bootstrap resamples these photos (``harmonylib.claim_rule``). None also when the
    folder was built by another generator version, whose draws may differ. A folder that holds
    ``composites.csv`` (written by every build since the validation split) is read directly.
    """
    table = Path(root) / COMPOSITES_FILE
    if table.is_file():
        df = pd.read_csv(table, usecols=["name", "photo"], dtype=str)
        return dict(zip(df["name"], df["photo"], strict=True))
    info = read_build_info(root)
    if info is None or info.get("generator_version") != GENERATOR_VERSION or "photos" not in info:
        return None
    cfg = BuiltinDataConfig(**info["config"])
    if config_hash(cfg) != info["config_hash"]:
        return None
    out = {}
    for plan in plan_dataset(cfg):
        names = info["photos"][plan.split]
        _, pi = _photo_draw(cfg, plan, len(names))
        for m in plan.masks:
            for k in range(1, m.n_composites + 1):
                out[f"{plan.real_id}_{m.mask_label}_{k}"] = names[pi]
    return out


def _is_current(info: dict[str, Any] | None, cfg: BuiltinDataConfig) -> bool:
    return (
        bool(info)
        and info.get("config_hash") == config_hash(cfg)
        and info.get("generator_version") == GENERATOR_VERSION
    )


def _refuse_foreign(root: Path) -> None:
    if root.exists() and read_build_info(root) is None and (root.is_file() or any(root.iterdir())):
        raise BuiltinDataError(
            f"{root} exists but holds no {BUILD_FILE}: it is not a built-in dataset, so it is left alone. "
            "Point data.root elsewhere, or remove that folder yourself."
        )


def build_builtin(cfg: BuiltinDataConfig, root: str | os.PathLike, progress: bool = False) -> dict[str, Any]:
    """Build the dataset into a temporary folder beside ``root``, then swap it into place.

    An existing built-in dataset at ``root`` is replaced only after the new one is complete; a
    folder that is not a built-in dataset is never touched.

    Returns:
        The ``BUILD.json`` record.

    Raises:
        BuiltinDataError: ``root`` exists and is not ours, or too few photos are installed.
        ValueError: ``stamp_foregrounds`` outside [0, 1].
    """
    if not 0.0 <= cfg.stamp_foregrounds <= 1.0:
        raise ValueError(f"data.builtin.stamp_foregrounds must lie in [0, 1], got {cfg.stamp_foregrounds!r}")
    root = resolve(root)
    _refuse_foreign(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.building-"))
    try:
        info = _generate(cfg, tmp, progress=progress)
        if root.exists():
            _refuse_foreign(root)
            old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(root, old)
            os.rename(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, root)
            except OSError:
                # another process finished first; keep theirs if it is this config
                if not _is_current(read_build_info(root), cfg):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
                return read_build_info(root) or info
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def ensure_builtin(data_cfg: DataConfig, force: bool = False, progress: bool = False) -> Path:
    """The built-in dataset's root, built first if absent or made from another config.

    Args:
        data_cfg: ``root`` says where; ``builtin`` says what (its hash is compared with BUILD.json).
        force: rebuild even if the folder is current.
        progress: show a progress bar while building.

    Returns:
        The absolute root path.

    Raises:
        BuiltinDataError: the folder exists without our BUILD.json (never deleted).
    """
    root = resolve(data_cfg.root)
    cfg = data_cfg.builtin
    if root.is_dir() and not any(root.iterdir()):
        with contextlib.suppress(OSError):
            root.rmdir()  # an empty folder is nobody's data
    _refuse_foreign(root)
    if force or not _is_current(read_build_info(root), cfg):
        build_builtin(cfg, root, progress=progress)
    return root


def ensure_dataset(cfg: Config, progress: bool = False) -> Path:
    """The dataset root of ``cfg``: the built-in one (built if needed), or a checked iHarmony4 root.

    Raises:
        FileNotFoundError: an ``iharmony4`` root that does not exist.
    """
    if cfg.data.kind == "builtin":
        return ensure_builtin(cfg.data, progress=progress)
    root = resolve(cfg.data.root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"iHarmony4 root {root} does not exist. Download iHarmony4 "
            "(github.com/bcmi/Image-Harmonization-Dataset-iHarmony4) and set data.root "
            "(e.g. `-p data_root /path/to/iHarmony4`), or use the mini profile's built-in data."
        )
    return root

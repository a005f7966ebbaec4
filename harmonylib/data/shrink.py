"""Pre-shrinking large iHarmony4 subsets (HAdobe5k) for fast training and inference.

HAdobe5k is stored at camera resolution (1296-6048 px), and decoding it dominates a data loader;
every peer pre-shrinks it to a longest side of 1024 (peers.md §1.3). Unlike the peers' scripts,
which re-encode JPEGs at quality 90 and resample masks with Lanczos (soft, ringing edges), this
tool

* resizes RGB images with LANCZOS and saves them **losslessly as PNG** with the same stem
  (``a0001_1_1.jpg`` -> ``a0001_1_1.png``); the reader (:mod:`harmonylib.data.iharmony4`) uses
  the ``.png`` wherever the listed ``.jpg`` is absent, so the copied lists work unchanged;
* resizes masks with NEAREST, so a binary mask stays binary;
* copies images already within ``max_side`` byte for byte, and copies the list files;
* never modifies the source, writes every file atomically and skips outputs that exist, so an
  interrupted run resumes where it stopped.

Subsets not in ``subsets`` are copied (or symlinked, or skipped) so the destination is a
complete dataset root.

Evaluation always scores against the **original** files: point the evaluator's data root at
the source dataset (ground-truth reals and masks at full resolution, resized to 256 there),
never at a shrunk copy; the shrunk copy is only for training and inference inputs.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Literal

from PIL import Image

from harmonylib.config import SUBSETS
from harmonylib.io import atomic_path, atomic_save_image, atomic_write_json, load_mask_l, load_rgb
from harmonylib.paths import resolve

_FOLDERS = ("composite_images", "masks", "real_images")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
_LIST_PATTERNS = ("IHD_*.txt", "*.jsonl")


def shrunk_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) with the longest side ``max_side`` (aspect kept, rounded), or unchanged if within it."""
    long = max(width, height)
    if long <= max_side:
        return width, height
    s = max_side / long
    return max(1, round(width * s)), max(1, round(height * s))


def _copy_atomic(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def _existing_output(dest_dir: Path, src: Path) -> bool:
    return (dest_dir / src.name).exists() or (dest_dir / (src.stem + ".png")).exists()


def _shrink_file(src: Path, dest_dir: Path, folder: str, max_side: int) -> str:
    """Process one image; returns "skipped", "copied" or "resized"."""
    if _existing_output(dest_dir, src):
        return "skipped"
    with Image.open(src) as im:
        size = im.size
    new = shrunk_size(*size, max_side)
    if new == size:
        _copy_atomic(src, dest_dir / src.name)
        return "copied"
    if folder == "masks":
        img = load_mask_l(src).resize(new, Image.NEAREST)  # binary stays binary
    else:
        img = load_rgb(src).resize(new, Image.LANCZOS)
    atomic_save_image(dest_dir / (src.stem + ".png"), img)
    return "resized"


def shrink_dataset(
    src_root: str | os.PathLike,
    dst_root: str | os.PathLike,
    max_side: int = 1024,
    subsets: tuple[str, ...] | list[str] = ("HAdobe5k",),
    others: Literal["copy", "symlink", "skip"] = "copy",
    progress: bool = True,
) -> dict[str, int]:
    """Write a copy of an iHarmony4 root with ``subsets`` shrunk to a longest side of ``max_side``.

    Args:
        src_root: the original dataset (read only).
        dst_root: the new root (created; may hold a previous, interrupted run).
        max_side: longest side after shrinking, px.
        subsets: subsets to shrink.
        others: what to do with the other subsets' folders: copy files, symlink the subset
            folder, or skip them.
        progress: show a tqdm progress bar.

    Returns:
        Counts of files ``resized``, ``copied`` and ``skipped`` (already present).

    Raises:
        ValueError: same or nested roots, bad ``max_side``, or an unknown subset.
    """
    src = resolve(src_root)
    dst = resolve(dst_root)
    if not src.is_dir():
        raise FileNotFoundError(f"source root {src} does not exist")
    if dst == src or dst.is_relative_to(src) or src.is_relative_to(dst):
        raise ValueError(f"destination {dst} must be outside the source {src}")
    if max_side < 8:
        raise ValueError(f"max_side must be at least 8, got {max_side}")
    unknown = set(subsets) - set(SUBSETS)
    if unknown:
        raise ValueError(f"unknown subsets {sorted(unknown)}; allowed: {list(SUBSETS)}")
    dst.mkdir(parents=True, exist_ok=True)

    # list files: root-level and per-subset
    for pattern in _LIST_PATTERNS:
        for f in sorted(src.glob(pattern)):
            _copy_atomic(f, dst / f.name)
    jobs: list[tuple[Path, Path, str, bool]] = []  # (file, dest dir, folder, shrink?)
    for s in SUBSETS:
        sdir = src / s
        if not sdir.is_dir():
            continue
        for f in sorted(sdir.glob("*.txt")):
            _copy_atomic(f, dst / s / f.name)
        shrink = s in subsets
        if not shrink and others == "skip":
            continue
        if not shrink and others == "symlink":
            for folder in _FOLDERS:
                link = dst / s / folder
                if (sdir / folder).is_dir() and not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(sdir / folder, target_is_directory=True)
            continue
        for folder in _FOLDERS:
            if not (sdir / folder).is_dir():
                continue
            (dst / s / folder).mkdir(parents=True, exist_ok=True)
            for f in sorted((sdir / folder).iterdir()):
                if f.suffix.lower() in _IMAGE_SUFFIXES and f.is_file():
                    jobs.append((f, dst / s / folder, folder, shrink))

    counts = {"resized": 0, "copied": 0, "skipped": 0}
    it = jobs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(jobs, desc="shrink", unit="img")
    for f, ddir, folder, shrink in it:
        if shrink:
            counts[_shrink_file(f, ddir, folder, max_side)] += 1
        elif _existing_output(ddir, f):
            counts["skipped"] += 1
        else:
            _copy_atomic(f, ddir / f.name)
            counts["copied"] += 1
    atomic_write_json(
        dst / "SHRINK.json",
        {
            "source": str(src),
            "max_side": max_side,
            "subsets": list(subsets),
            "others": others,
            "resample": {"rgb": "LANCZOS, saved as PNG", "masks": "NEAREST, PNG"},
            "counts": counts,
            "note": "evaluate against the source root, not this copy",
        },
    )
    return counts


def _run_shrink(args: argparse.Namespace) -> int:
    counts = shrink_dataset(
        args.src, args.dst, max_side=args.max_side, subsets=tuple(args.subsets), others=args.others
    )
    print(f"{args.dst}: {counts}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonylib shrink``."""
    p = subparsers.add_parser(
        "shrink", help="copy an iHarmony4 root with large subsets pre-shrunk (lossless)"
    )
    p.add_argument("--src", required=True, help="original iHarmony4 root (never modified)")
    p.add_argument("--dst", required=True, help="destination root (resumable)")
    p.add_argument("--max-side", type=int, default=1024, help="longest side after shrinking (default 1024)")
    p.add_argument("--subsets", nargs="+", default=["HAdobe5k"], choices=SUBSETS, help="subsets to shrink")
    p.add_argument(
        "--others",
        default="copy",
        choices=("copy", "symlink", "skip"),
        help="what to do with the other subsets (default: copy)",
    )
    p.set_defaults(func=_run_shrink)

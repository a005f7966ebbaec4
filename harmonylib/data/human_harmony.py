"""The Human Harmony dataset (paper §4.2, §5.1.2), built from iMaterialist-Fashion-2020 (FGVC7).

Input: the release of the Kaggle competition "iMaterialist (Fashion) 2020 at FGVC7"
(https://www.kaggle.com/c/imaterialist-fashion-2020-fgvc7/data; the annotations are Fashionpedia's,
Jia et al., ECCV 2020), as unpacked::

    <src>/train.csv                 ImageId, EncodedPixels, Height, Width, ClassId, AttributesIds
    <src>/label_descriptions.json   {"info": ..., "categories": [...], "attributes": [...]}
    <src>/train/<ImageId>.jpg

The format facts the reader relies on, and the reader itself (RLE, labels, annotations, the
product-only filter, the mask union): :mod:`harmonylib.data.imaterialist`.

The builder's stages, each callable on its own and resumable (this module reads the source and
prepares it, and imports no model; stages 2-3 live on the augmentation side):

1. :func:`prepare_human_harmony` (no model needed) -- filter product-only images, union each
   image's segments into one foreground mask, split train/test, link the real images, write
   ``human_harmony_pairs.csv`` and foreground-ratio statistics.
2. :func:`harmonylib.human_harmony_build.generate_human_harmony` -- K = 10 candidates per pair
   with the inverse model (:func:`harmonylib.augment.generate_candidates`; shards under
   ``accelerate launch``).
3. :func:`harmonylib.human_harmony_build.select_human_harmony` -- the harmony classifier keeps, per (real, mask) pair, the
   candidate with the highest P(unharmonious) (:func:`harmonylib.augment.select_best`); writes
   the composites and the lists.

Product-only rule (the paper removes "images containing only products" and gives no rule; ours):
an image is kept when its segments cover at least ``min_body_regions`` (default 2) distinct
*body regions*, the worn-on-body supercategories ``upperbody, lowerbody, wholebody, legs and feet,
head, neck, arms and hands, waist``. A person photographed in an outfit shows at least two (a top
and trousers, a dress and shoes, a shirt and glasses...); a product shot of one item shows at most
one (a dress with its sleeves and neckline is ``wholebody`` + parts; a pair of shoes is
``legs and feet``; a bag is ``others``, no region). Parts, closures and decorations never count.
The cost: a person photo cropped to one garment is dropped too. We cannot check the paper's
29,103 kept images without the data; the count our rule gives on the release is printed by the
``prepare`` step.

Mask classes: the paper sets "all valid segmentation parts (except background)" to 1. We union
every segment of every class listed in ``label_descriptions.json`` (all 46, parts included:
parts lie inside their garments, so they add little, but accessories such as bags and umbrellas
are held by the person and belong to the foreground). ``mask_classes`` restricts the union.
The foreground is therefore the person's *apparel and accessories*, not skin or hair (the
release has no such class).

Split: iHarmony4's test fraction, ``n_test = round(N · 7,404 / 73,146)`` (half up), test images
drawn with a seeded permutation. For N = 29,103 this gives 26,157 / 2,946, the paper's split; the
text's "29,106" is off by 3 (29,106 would give 26,160 / 2,946).

Output (a root the iHarmony4 reader reads unchanged through its combined lists)::

    <out>/HumanHarmony/real_images/<ImageId>.jpg          hard links (else copies) of the release's images
    <out>/HumanHarmony/masks/<ImageId>_1.png               0/255 union masks
    <out>/HumanHarmony/composite_images/<ImageId>_1_<k>.png  the selected candidate (k in 1..K)
    <out>/HumanHarmony/HumanHarmony_{train,test}.txt      bare composite names (per-subset style)
    <out>/IHD_{train,test}.txt, <out>/{train,test}.jsonl   combined lists: read_split(<out>, split)
    <out>/human_harmony_pairs.csv, HUMAN_HARMONY.json      per-image metadata, summary and fg-ratio mix
    <out>/candidates/                                      the generated root (all K candidates + manifest)

``harmonylib.data.iharmony4`` only looks for per-subset lists of the four iHarmony4 subsets, so
``HumanHarmony_train.txt`` is written for completeness and the combined lists are what it reads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from harmonylib import imageproc
from harmonylib.data.iharmony4 import Pair
from harmonylib.data.imaterialist import (  # noqa: F401  (re-exported: the reader's names, from their old home)
    BODY_SUPERCATEGORIES,
    CSV_COLUMNS,
    FilterRule,
    ImaterialistFormatError,
    body_regions,
    filter_images,
    is_product_only,
    read_annotations,
    read_label_descriptions,
    rle_decode,
    rle_encode,
    union_mask,
)
from harmonylib.io import atomic_save_image, atomic_write_json, atomic_write_text, link_or_copy, load_mask_l
from harmonylib.reproducibility import numpy_rng

SUBSET = "HumanHarmony"
# iHarmony4's test fraction (paper §5.1.1: 73,146 pairs, 7,404 for testing).
IHARMONY4_TEST = (7404, 73146)
PAPER_PAIRS = 29103  # 26,157 + 2,946 (§5.1.2; the text's 29,106 is off by 3)
PAPER_SPLIT = (26157, 2946)
PAPER_TEST_FG_MIX = (26, 323, 2597)  # Table 3, N_samples of Human Harmony test per imageproc.FG_BINS
PAPER_K = 10
PAIRS_FILE = "human_harmony_pairs.csv"
SUMMARY_FILE = "HUMAN_HARMONY.json"
CANDIDATES_DIR = "candidates"
MASK_SUFFIX = "_1"  # one mask per image: <ImageId>_1.png


# ------------------------------------------------------------------------------------ split


def split_sizes(n: int, test_fraction: tuple[int, int] = IHARMONY4_TEST) -> tuple[int, int]:
    """(n_train, n_test) with ``n_test = round(n · 7,404 / 73,146)``, half up, in exact arithmetic.

    ``split_sizes(29103) == (26157, 2946)``: the paper's Human Harmony split.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    num, den = test_fraction
    n_test = math.floor(Fraction(n * num, den) + Fraction(1, 2))
    return n - n_test, n_test


def assign_split(image_ids: Sequence[str], seed: int) -> dict[str, str]:
    """``{ImageId: "train"|"test"}``: a seeded permutation of the sorted ids; the first n_test are test."""
    ids = sorted(image_ids)
    _, n_test = split_sizes(len(ids))
    order = numpy_rng(seed, "human_harmony", "split").permutation(len(ids))
    test = {ids[i] for i in order[:n_test]}
    return {i: ("test" if i in test else "train") for i in ids}


# ---------------------------------------------------------------------------------- stage 1


def subset_dir(out_root: Path) -> Path:
    return out_root / SUBSET


def _exif_orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 (a broken EXIF block is no orientation)
        return 1


def _place_real(src: Path, real_dir: Path, image_id: str, height: int, width: int, link_mode: str) -> Path:
    """Link the release's image into ``real_images`` after checking its size against the csv.

    An image with an EXIF orientation tag is written as a PNG of its stored pixels instead (the
    csv's masks are in stored orientation; ``load_rgb`` would otherwise rotate the image away
    from its mask).
    """
    if not src.is_file():
        raise ImaterialistFormatError(f"ImageId {image_id}: image {src} does not exist")
    for suffix in (".jpg", ".png"):
        if (real_dir / f"{image_id}{suffix}").is_file():
            return real_dir / f"{image_id}{suffix}"
    try:
        with Image.open(src) as im:
            size, orientation = im.size, _exif_orientation(im)
            if size != (width, height):
                raise ImaterialistFormatError(
                    f"ImageId {image_id}: train.csv says {width}x{height} (WxH) but {src} is "
                    f"{size[0]}x{size[1]}"
                )
            if orientation != 1:
                dst = real_dir / f"{image_id}.png"
                atomic_save_image(dst, im.convert("RGB"))
                return dst
    except (OSError, SyntaxError) as exc:
        raise ImaterialistFormatError(f"ImageId {image_id}: cannot read {src} ({exc})") from exc
    dst = real_dir / f"{image_id}.jpg"
    link_or_copy(src, dst, link_mode)
    return dst


def mask_fg_ratio(mask_path: str | os.PathLike) -> float:
    """Foreground ratio as the evaluator measures it (dither, NEAREST to 256², fraction of pixels)."""
    return imageproc.fg_ratio(imageproc.evaluation_mask(load_mask_l(mask_path), 256, "dither"))


def fg_ratio_stats(pairs: pd.DataFrame) -> dict[str, Any]:
    """Counts and fractions per split over ``imageproc.FG_BINS`` (``pairs`` needs ``split``, ``fg_bin``)."""
    out: dict[str, Any] = {"bins": list(imageproc.FG_BIN_LABELS)}
    for split in ("train", "test", "all"):
        sel = pairs if split == "all" else pairs[pairs["split"] == split]
        counts = [int((sel["fg_bin"] == b).sum()) for b in range(len(imageproc.FG_BINS))]
        total = max(1, sum(counts))
        out[split] = {
            "counts": dict(zip(imageproc.FG_BIN_LABELS, counts, strict=True)),
            "fractions": dict(zip(imageproc.FG_BIN_LABELS, [c / total for c in counts], strict=True)),
            "mean_fg_ratio": float(sel["fg_ratio"].mean()) if len(sel) else float("nan"),
        }
    paper_total = sum(PAPER_TEST_FG_MIX)
    out["paper_test"] = {
        "counts": dict(zip(imageproc.FG_BIN_LABELS, PAPER_TEST_FG_MIX, strict=True)),
        "fractions": dict(
            zip(imageproc.FG_BIN_LABELS, [c / paper_total for c in PAPER_TEST_FG_MIX], strict=True)
        ),
    }
    return out


def prepare_human_harmony(
    src_root: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    seed: int = 0,
    rule: FilterRule = FilterRule(),  # noqa: B008  (frozen dataclass: an immutable default)
    mask_classes: Iterable[int] | None = None,
    link_mode: str = "hardlink",
    progress: bool = True,
) -> dict[str, Any]:
    """Stage 1: filter, masks, split, reals, statistics. No model needed; resumable.

    Args:
        src_root: the unpacked release (``train.csv``, ``label_descriptions.json``, ``train/``).
        out_root: the Human Harmony root (see the module docstring).
        seed: split seed.
        rule: the product-only filter.
        mask_classes: class ids unioned into the mask (default: all categories).
        link_mode: ``"hardlink"`` or ``"copy"`` for the real images.
        progress: progress bar.

    Returns:
        The summary written to ``HUMAN_HARMONY.json`` (counts, rule, split, fg-ratio mix).

    Raises:
        ImaterialistFormatError: a malformed file, RLE, unknown class, missing image or a csv size
            that differs from the image, naming the ImageId.
    """
    src_root, out_root = Path(src_root), Path(out_root)
    categories = read_label_descriptions(src_root / "label_descriptions.json")
    ann = read_annotations(src_root / "train.csv")
    if mask_classes is not None:
        unknown = {int(c) for c in mask_classes} - set(categories)
        if unknown:
            raise ValueError(f"mask_classes: {sorted(unknown)} are not categories of label_descriptions.json")
    kept, dropped = filter_images(ann, categories, rule)
    split = assign_split(kept, seed)
    sub = subset_dir(out_root)
    (sub / "masks").mkdir(parents=True, exist_ok=True)
    (sub / "real_images").mkdir(parents=True, exist_ok=True)

    groups = {k: g for k, g in ann.groupby("ImageId", sort=False)}
    rows = []
    for image_id in tqdm(kept, desc="Human Harmony masks", disable=not progress):
        g = groups[image_id]
        h, w = int(g["Height"].iloc[0]), int(g["Width"].iloc[0])
        real = _place_real(
            src_root / "train" / f"{image_id}.jpg", sub / "real_images", image_id, h, w, link_mode
        )
        mask_path = sub / "masks" / f"{image_id}{MASK_SUFFIX}.png"
        if not mask_path.is_file():
            mask = union_mask(g, h, w, image_id, mask_classes)
            atomic_save_image(mask_path, Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L"))
        ratio = mask_fg_ratio(mask_path)
        rows.append(
            {
                "image_id": image_id,
                "split": split[image_id],
                "height": h,
                "width": w,
                "n_segments": len(g),
                "classes": " ".join(str(c) for c in sorted(set(g["ClassId"].tolist()))),
                "real": real.name,
                "mask": mask_path.name,
                "fg_ratio": ratio,
                "fg_bin": int(imageproc.fg_bin_index(ratio)),
            }
        )
    pairs = pd.DataFrame(
        rows,
        columns=[
            "image_id",
            "split",
            "height",
            "width",
            "n_segments",
            "classes",
            "real",
            "mask",
            "fg_ratio",
            "fg_bin",
        ],
    )
    atomic_write_text(out_root / PAIRS_FILE, pairs.to_csv(index=False))
    n_train, n_test = split_sizes(len(kept))
    summary = {
        "source": str(src_root),
        "n_images": int(ann["ImageId"].nunique()),
        "n_segments": len(ann),
        "n_kept": len(kept),
        "n_dropped_product_only": len(dropped),
        "dropped_product_only": dropped[:50],
        "rule": asdict(rule),
        "mask_classes": "all" if mask_classes is None else sorted(int(c) for c in mask_classes),
        "seed": seed,
        "split": {"train": n_train, "test": n_test},
        "paper": {"pairs": PAPER_PAIRS, "train": PAPER_SPLIT[0], "test": PAPER_SPLIT[1]},
        "fg_ratio": fg_ratio_stats(pairs),
    }
    atomic_write_json(out_root / SUMMARY_FILE, summary)
    return summary


def read_pairs(out_root: str | os.PathLike) -> pd.DataFrame:
    """``human_harmony_pairs.csv`` of a prepared root.

    Raises:
        FileNotFoundError: the root was not prepared (run :func:`prepare_human_harmony`).
    """
    path = Path(out_root) / PAIRS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run prepare_human_harmony (stage 1) first")
    return pd.read_csv(path, dtype={"image_id": str})


def human_harmony_pairs(out_root: str | os.PathLike) -> list[Pair]:
    """The prepared (real, mask) pairs as :class:`harmonylib.augment.Pair`, in ImageId order."""
    out_root = Path(out_root)
    sub = subset_dir(out_root)
    return [
        Pair(
            subset=SUBSET,
            mask_id=Path(r.mask).stem,
            real=sub / "real_images" / r.real,
            mask=sub / "masks" / r.mask,
        )
        for r in read_pairs(out_root).itertuples()
    ]


__all__ = [
    "FilterRule",
    "ImaterialistFormatError",
    "assign_split",
    "filter_images",
    "fg_ratio_stats",
    "human_harmony_pairs",
    "is_product_only",
    "prepare_human_harmony",
    "read_annotations",
    "read_label_descriptions",
    "read_pairs",
    "rle_decode",
    "rle_encode",
    "split_sizes",
    "union_mask",
]

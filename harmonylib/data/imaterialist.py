"""Reading the iMaterialist-Fashion-2020 (FGVC7) release: RLE masks, labels, annotations, the filter.

The release of the Kaggle competition "iMaterialist (Fashion) 2020 at FGVC7" is the source of the
Human Harmony dataset (:mod:`harmonylib.data.human_harmony`, which also explains the product-only
rule and the mask classes). Its layout::

    <src>/train.csv                 ImageId, EncodedPixels, Height, Width, ClassId, AttributesIds
    <src>/label_descriptions.json   {"info": ..., "categories": [...], "attributes": [...]}
    <src>/train/<ImageId>.jpg

Format facts this reader relies on (from the competition's Data page and the released files):

- ``train.csv`` has one row per segment (object instance). ``EncodedPixels`` is a run-length
  encoding: space-separated ``start length`` pairs, ``start`` 1-indexed, pixels numbered top to
  bottom, then left to right (column-major: pixel 1 is (row 1, col 1), pixel 2 is (row 2, col 1)).
  ``Height`` and ``Width`` are the image's size. ``ClassId`` is one category id;
  ``AttributesIds`` is a comma-separated list of attribute ids, empty for many segments (parts).
- ``label_descriptions.json``: ``categories`` lists 46 apparel classes and parts, ids 0-45, each with
  ``id``, ``name``, ``supercategory`` and ``level``. Supercategories: ``upperbody``,
  ``lowerbody``, ``wholebody``, ``head``, ``neck``, ``arms and hands``, ``waist``,
  ``legs and feet``, ``others`` (bag, scarf, umbrella) and the apparel parts ``garment parts``,
  ``closures``, ``decorations``. There is no person / skin / hair class. ``attributes`` lists the
  fine-grained attributes (``id``, ``name``, ``supercategory``, ``level``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CSV_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId", "AttributesIds")
BODY_SUPERCATEGORIES = (
    "upperbody",
    "lowerbody",
    "wholebody",
    "legs and feet",
    "head",
    "neck",
    "arms and hands",
    "waist",
)


class ImaterialistFormatError(ValueError):
    """The release's files do not have the expected format; the message names the file or ImageId."""


# ------------------------------------------------------------------------------------ RLE


def rle_decode(rle: str, height: int, width: int, image_id: str | None = None) -> np.ndarray:
    """Decode one ``EncodedPixels`` string to a (height, width) bool mask.

    Runs are ``start length`` pairs, ``start`` 1-indexed, pixels numbered column-major (top to
    bottom, then left to right). Example: H=3, W=2, ``"2 3"`` → ``[[0, 1], [1, 0], [1, 0]]``.

    Raises:
        ImaterialistFormatError: not integer pairs, a start < 1 or length < 1, or a run past the
            last pixel; the message names ``image_id``.
    """
    who = f"ImageId {image_id}: " if image_id is not None else ""
    if height < 1 or width < 1:
        raise ImaterialistFormatError(f"{who}image size {height}x{width} (HxW) is not positive")
    text = "" if rle is None or (isinstance(rle, float) and math.isnan(rle)) else str(rle)
    tokens = text.split()
    try:
        values = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise ImaterialistFormatError(f"{who}EncodedPixels has a non-integer token {bad!r}") from None
    if values.size == 0 or values.size % 2:
        raise ImaterialistFormatError(
            f"{who}EncodedPixels must be non-empty 'start length' pairs, got {values.size} numbers"
        )
    starts, lengths = values[0::2] - 1, values[1::2]  # 0-based starts
    n = height * width
    if (starts < 0).any() or (lengths < 1).any():
        raise ImaterialistFormatError(f"{who}EncodedPixels has a start < 1 or a length < 1")
    ends = starts + lengths
    if (ends > n).any():
        i = int(np.argmax(ends > n))
        raise ImaterialistFormatError(
            f"{who}EncodedPixels run {starts[i] + 1} {lengths[i]} ends at pixel {ends[i]}, past the "
            f"last pixel {n} of a {height}x{width} (HxW) image"
        )
    flat = np.zeros(n + 1, dtype=np.int32)
    np.add.at(flat, starts, 1)
    np.add.at(flat, ends, -1)
    on = np.cumsum(flat[:n]) > 0  # (H*W,) column-major
    return on.reshape(width, height).T  # (H, W)


def rle_encode(mask: np.ndarray) -> str:
    """Encode a (H, W) mask as ``EncodedPixels`` (1-indexed, column-major); inverse of :func:`rle_decode`."""
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {m.shape}")
    flat = np.concatenate([[False], m.T.reshape(-1), [False]])  # column-major, padded
    edges = np.flatnonzero(flat[1:] != flat[:-1])  # run starts and ends, 0-based
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends, strict=True))


# ------------------------------------------------------------------------------- reading


def read_label_descriptions(path: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """``{class id: category}`` from ``label_descriptions.json`` (keys checked).

    Raises:
        ImaterialistFormatError: missing ``categories``/``attributes`` or category keys.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ImaterialistFormatError(f"{path}: cannot read label descriptions ({exc})") from exc
    for key in ("categories", "attributes"):
        if key not in data:
            raise ImaterialistFormatError(f"{path}: no {key!r} list")
    cats = {}
    for c in data["categories"]:
        missing = {"id", "name", "supercategory", "level"} - set(c)
        if missing:
            raise ImaterialistFormatError(f"{path}: category {c} lacks {sorted(missing)}")
        cats[int(c["id"])] = dict(c)
    return cats


def read_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """``train.csv`` as a DataFrame (columns checked; ``ImageId`` as str, sizes and ClassId as int).

    Raises:
        ImaterialistFormatError: missing columns, or an image whose rows disagree on its size.
    """
    path = Path(path)
    if not path.is_file():
        raise ImaterialistFormatError(f"{path}: annotation csv does not exist")
    df = pd.read_csv(path, dtype={"ImageId": str, "EncodedPixels": str, "AttributesIds": str})
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ImaterialistFormatError(f"{path}: missing columns {missing}; has {list(df.columns)}")
    for col in ("Height", "Width", "ClassId"):
        bad = pd.to_numeric(df[col], errors="coerce").isna()
        if bad.any():
            raise ImaterialistFormatError(
                f"{path}: ImageId {df.loc[bad, 'ImageId'].iloc[0]}: {col} is not an integer"
            )
        df[col] = df[col].astype(np.int64)
    sizes = df.groupby("ImageId")[["Height", "Width"]].nunique()
    bad = sizes[(sizes["Height"] > 1) | (sizes["Width"] > 1)]
    if len(bad):
        raise ImaterialistFormatError(f"{path}: ImageId {bad.index[0]}: rows give different Height/Width")
    return df


# -------------------------------------------------------------------------------- filtering


@dataclass(frozen=True)
class FilterRule:
    """Which images are people, not products (see :mod:`harmonylib.data.human_harmony`'s docstring).

    An image is kept when its segments cover at least ``min_body_regions`` distinct supercategories
    among ``body_supercategories``.
    """

    min_body_regions: int = 2
    body_supercategories: tuple[str, ...] = BODY_SUPERCATEGORIES


def body_regions(
    class_ids: Iterable[int], categories: Mapping[int, Mapping[str, Any]], image_id: str = "?"
) -> set[str]:
    """The supercategories of an image's segments (all of them; the rule picks the body ones)."""
    out = set()
    for c in class_ids:
        if int(c) not in categories:
            raise ImaterialistFormatError(
                f"ImageId {image_id}: ClassId {c} is not in label_descriptions.json"
            )
        out.add(str(categories[int(c)]["supercategory"]))
    return out


def is_product_only(
    class_ids: Iterable[int],
    categories: Mapping[int, Mapping[str, Any]],
    rule: FilterRule = FilterRule(),
    image_id: str = "?",
) -> bool:
    """True when the image's segments cover fewer than ``rule.min_body_regions`` body regions."""
    regions = body_regions(class_ids, categories, image_id) & set(rule.body_supercategories)
    return len(regions) < rule.min_body_regions


def filter_images(
    annotations: pd.DataFrame, categories: Mapping[int, Mapping[str, Any]], rule: FilterRule = FilterRule()
) -> tuple[list[str], list[str]]:
    """(kept ImageIds, dropped product-only ImageIds), each sorted."""
    kept, dropped = [], []
    for image_id, classes in annotations.groupby("ImageId", sort=True)["ClassId"]:
        (dropped if is_product_only(classes.tolist(), categories, rule, image_id) else kept).append(image_id)
    return kept, dropped


def union_mask(
    rows: pd.DataFrame, height: int, width: int, image_id: str, mask_classes: Iterable[int] | None = None
) -> np.ndarray:
    """The union of an image's segments (of ``mask_classes``, default all) as a (H, W) bool mask."""
    keep = None if mask_classes is None else {int(c) for c in mask_classes}
    mask = np.zeros((height, width), dtype=bool)
    for rle, cls in zip(rows["EncodedPixels"], rows["ClassId"], strict=True):
        if keep is None or int(cls) in keep:
            mask |= rle_decode(rle, height, width, image_id)
    return mask

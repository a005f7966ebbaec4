"""A generated stand-in for the iMaterialist-Fashion-2020 release, in its exact file format.

Tests, the ``smoke`` and the ``mini`` runs build Human Harmony from this fixture, so the whole
builder (:mod:`harmonylib.data.human_harmony`) runs offline. It writes what the Kaggle release
holds (https://www.kaggle.com/c/imaterialist-fashion-2020-fgvc7/data)::

    <root>/train.csv                 ImageId, EncodedPixels, Height, Width, ClassId, AttributesIds
    <root>/label_descriptions.json   {"info", "categories" (the release's 46, ids 0-45), "attributes"}
    <root>/train/<ImageId>.jpg

- ``categories`` are the release's 46 apparel classes and parts with their names and
  supercategories (``level`` 2 as in the release's file). ``attributes`` is a short stand-in list
  in the release's format (the release has 294 attributes); the builder never reads attributes.
- One csv row per segment; RLE 1-indexed, column-major (:func:`harmonylib.data.imaterialist.rle_encode`).
  ``AttributesIds`` is a comma-separated id list for garments and empty for parts, as in the release.
- ImageIds are 32 hex digits, like the release's.

Images. Backgrounds are random crops of real photos shipped in installed packages
(:data:`harmonylib.data.builtin.PHOTOS`; never downloaded). On each, a "person" is painted: a
skin-coloured head (unannotated, as the release has no person class) and smooth garment
silhouettes -- an upper garment with overlapping ``sleeve`` and ``neckline`` parts and trousers,
shorts or a skirt, or a dress; shoes; sometimes a hat, glasses, a belt, a zipper or a bag. Each
garment is a flat colour with shading, so the foreground differs from the background as apparel
does. The union covers roughly 20-60 % of the image, so the set is foreground-heavy like the
real one (paper Table 3: 88 % of Human Harmony test lies in the 15-100 % bin). Every
``product_every``-th image is a product shot on a flat backdrop (a bag, a pair of shoes, or a
flat-lay shirt with its sleeves): one body region at most, so the product-only filter drops it.

Sizes: ``n_images`` images give ``n_images - n_images // product_every`` pairs; the default
``product_every = 7`` gives 12 pairs from 14 images (smoke) and 120 from 140 (mini).
Deterministic from ``seed``: the same arguments give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from skimage.draw import ellipse, polygon

from harmonylib.data.builtin import available_photos
from harmonylib.data.imaterialist import CSV_COLUMNS, rle_encode
from harmonylib.io import atomic_save_image, atomic_write_json, atomic_write_text, load_rgb
from harmonylib.reproducibility import numpy_rng

# The release's 46 categories: (id, name, supercategory).
CATEGORIES: tuple[tuple[int, str, str], ...] = (
    (0, "shirt, blouse", "upperbody"),
    (1, "top, t-shirt, sweatshirt", "upperbody"),
    (2, "sweater", "upperbody"),
    (3, "cardigan", "upperbody"),
    (4, "jacket", "upperbody"),
    (5, "vest", "upperbody"),
    (6, "pants", "lowerbody"),
    (7, "shorts", "lowerbody"),
    (8, "skirt", "lowerbody"),
    (9, "coat", "wholebody"),
    (10, "dress", "wholebody"),
    (11, "jumpsuit", "wholebody"),
    (12, "cape", "wholebody"),
    (13, "glasses", "head"),
    (14, "hat", "head"),
    (15, "headband, head covering, hair accessory", "head"),
    (16, "tie", "neck"),
    (17, "glove", "arms and hands"),
    (18, "watch", "arms and hands"),
    (19, "belt", "waist"),
    (20, "leg warmer", "legs and feet"),
    (21, "tights, stockings", "legs and feet"),
    (22, "sock", "legs and feet"),
    (23, "shoe", "legs and feet"),
    (24, "bag, wallet", "others"),
    (25, "scarf", "others"),
    (26, "umbrella", "others"),
    (27, "hood", "garment parts"),
    (28, "collar", "garment parts"),
    (29, "lapel", "garment parts"),
    (30, "epaulette", "garment parts"),
    (31, "sleeve", "garment parts"),
    (32, "pocket", "garment parts"),
    (33, "neckline", "garment parts"),
    (34, "buckle", "closures"),
    (35, "zipper", "closures"),
    (36, "applique", "decorations"),
    (37, "bead", "decorations"),
    (38, "bow", "decorations"),
    (39, "flower", "decorations"),
    (40, "fringe", "decorations"),
    (41, "ribbon", "decorations"),
    (42, "rivet", "decorations"),
    (43, "ruffle", "decorations"),
    (44, "sequin", "decorations"),
    (45, "tassel", "decorations"),
)
# A short stand-in for the release's attribute list, same keys.
ATTRIBUTES: tuple[tuple[int, str, str], ...] = (
    (0, "classic (t-shirt)", "nickname"),
    (115, "above-the-hip (length)", "length"),
    (136, "symmetrical", "silhouette"),
    (143, "regular (fit)", "silhouette fit"),
    (154, "single breasted", "opening type"),
    (204, "maxi (length)", "length"),
    (225, "no non-textile material", "non-textile material type"),
    (229, "plain (pattern)", "textile pattern"),
    (295, "wrist-length", "sleeve length"),
    (317, "no waistline", "waistline"),
)
_GARMENT_ATTRS = (115, 136, 143, 154, 204, 225, 229, 295, 317)

PRODUCT_EVERY = 7
_PRODUCT_KINDS = ("bag", "shoes", "flatlay")
_SKIN = ((224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172), (241, 194, 125))


def image_id_for(seed: int, index: int) -> str:
    """A release-like 32-hex-digit ImageId."""
    return hashlib.sha256(f"imaterialist-fixture|{seed}|{index}".encode()).hexdigest()[:32]


@lru_cache(maxsize=4)
def _photos(image_size: int) -> tuple[np.ndarray, ...]:
    """All bundled photos as uint8 arrays, shrunk so the shorter side is at most 4 x image_size."""
    out = []
    for _, path in available_photos()[0]:
        img = load_rgb(path)
        s = 4 * image_size / min(img.size)
        if s < 1:
            img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
        out.append(np.asarray(img))
    return tuple(out)


def _background(h: int, w: int, rng: np.random.Generator, image_size: int) -> np.ndarray:
    photos = _photos(image_size)
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[:2]
    scale = float(rng.uniform(0.4, 1.0)) * min(ph / h, pw / w)
    ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = Image.fromarray(photo[y : y + ch, x : x + cw]).resize((w, h), Image.BILINEAR)
    return np.asarray(crop).copy()


def _poly(h: int, w: int, pts: list[tuple[float, float]]) -> np.ndarray:
    """A filled polygon of (y, x) points as a (h, w) bool mask."""
    m = np.zeros((h, w), dtype=bool)
    rr, cc = polygon([p[0] for p in pts], [p[1] for p in pts], (h, w))
    m[rr, cc] = True
    return m


def _ell(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    rr, cc = ellipse(cy, cx, max(ry, 1.0), max(rx, 1.0), shape=(h, w))
    m[rr, cc] = True
    return m


def _paint(img: np.ndarray, mask: np.ndarray, color: np.ndarray, rng: np.random.Generator) -> None:
    """Paint a garment: its colour, a vertical shading ramp, a little fabric noise."""
    h = img.shape[0]
    ramp = np.linspace(1.1, 0.8, h)[:, None, None]  # (h, 1, 1) light from above
    noise = rng.normal(0.0, 6.0, img.shape)
    cloth = np.clip(color[None, None, :] * ramp + noise, 0, 255)
    img[mask] = cloth[mask].astype(np.uint8)


def _person(h: int, w: int, img: np.ndarray, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """Paint a dressed person on ``img``; return its segments as (ClassId, mask)."""
    segs: list[tuple[int, np.ndarray]] = []
    ph = float(rng.uniform(0.8, 0.98)) * h  # person height
    y0 = float(rng.uniform(0.0, h - ph))
    cx = float(rng.uniform(0.35, 0.65)) * w
    sw = float(rng.uniform(0.5, 0.72)) * min(w, 0.75 * ph)  # shoulder width

    def y(f: float) -> float:
        return y0 + f * ph

    # head: skin, not annotated (the release has no person class)
    head = _ell(h, w, y(0.07), cx, 0.07 * ph, 0.28 * sw)
    _paint(img, head, np.array(_SKIN[int(rng.integers(len(_SKIN)))], float), rng)
    if rng.random() < 0.35:  # hat over the top of the head
        hat = _ell(h, w, y(0.025), cx, 0.045 * ph, 0.36 * sw)
        _paint(img, hat, rng.uniform(20, 235, 3), rng)
        segs.append((14, hat))
    if rng.random() < 0.3:  # glasses: a band across the face
        glasses = _poly(h, w, [(y(0.06), cx - 0.22 * sw), (y(0.06), cx + 0.22 * sw),
                               (y(0.08), cx + 0.22 * sw), (y(0.08), cx - 0.22 * sw)])  # fmt: skip
        _paint(img, glasses, np.array([25.0, 25.0, 30.0]), rng)
        segs.append((13, glasses))

    top_color = rng.uniform(20, 235, 3)
    shoulder, waist = y(0.15), y(0.5)
    torso = [(shoulder, cx - sw / 2), (shoulder, cx + sw / 2), (waist, cx + 0.4 * sw), (waist, cx - 0.4 * sw)]
    arm_l = [(shoulder, cx - sw / 2), (shoulder + 0.06 * ph, cx - sw / 2 + 0.02 * sw),
             (y(0.46), cx - 0.58 * sw), (y(0.46), cx - 0.72 * sw)]  # fmt: skip
    arm_r = [(x_y[0], 2 * cx - x_y[1]) for x_y in arm_l]
    dress = rng.random() < 0.3
    if dress:  # a dress from the shoulders to the knees, shoes below
        body = _poly(h, w, torso[:2] + [(y(0.8), cx + 0.62 * sw), (y(0.8), cx - 0.62 * sw)])
        body |= _poly(h, w, arm_l) | _poly(h, w, arm_r)
        _paint(img, body, top_color, rng)
        segs.append((10, body))
    else:
        upper = _poly(h, w, torso) | _poly(h, w, arm_l) | _poly(h, w, arm_r)
        _paint(img, upper, top_color, rng)
        segs.append((int(rng.choice([0, 1, 2, 3, 4])), upper))
    # parts that overlap the garment they belong to
    sleeve_l, sleeve_r = _poly(h, w, arm_l), _poly(h, w, arm_r)
    segs += [(31, sleeve_l), (31, sleeve_r)]
    neck = _poly(h, w, [(shoulder, cx - 0.15 * sw), (shoulder, cx + 0.15 * sw), (y(0.22), cx)])
    _paint(img, neck, top_color * 0.85, rng)
    segs.append((33, neck))
    if not dress:
        lower_kind = int(rng.choice([6, 7, 8]))
        bottom = {6: 0.92, 7: 0.66, 8: 0.76}[lower_kind]
        if lower_kind == 8:
            lower = _poly(h, w, [(waist, cx - 0.4 * sw), (waist, cx + 0.4 * sw),
                                 (y(bottom), cx + 0.6 * sw), (y(bottom), cx - 0.6 * sw)])  # fmt: skip
        else:
            lower = _poly(h, w, [(waist, cx - 0.4 * sw), (waist, cx - 0.02 * sw),
                                 (y(bottom), cx - 0.06 * sw), (y(bottom), cx - 0.4 * sw)])  # fmt: skip
            lower |= _poly(h, w, [(waist, cx + 0.02 * sw), (waist, cx + 0.4 * sw),
                                  (y(bottom), cx + 0.4 * sw), (y(bottom), cx + 0.06 * sw)])  # fmt: skip
        _paint(img, lower, rng.uniform(20, 235, 3), rng)
        segs.append((lower_kind, lower))
        if rng.random() < 0.25:  # belt across the waist
            belt = _poly(h, w, [(waist - 0.02 * ph, cx - 0.41 * sw), (waist - 0.02 * ph, cx + 0.41 * sw),
                                (waist + 0.01 * ph, cx + 0.41 * sw), (waist + 0.01 * ph, cx - 0.41 * sw)])  # fmt: skip
            _paint(img, belt, np.array([60.0, 40.0, 25.0]), rng)
            segs.append((19, belt))
    if not dress and rng.random() < 0.25:  # a zipper down the front
        zipper = _poly(h, w, [(y(0.2), cx - 1), (y(0.2), cx + 1), (waist, cx + 1), (waist, cx - 1)])
        segs.append((35, zipper))
    shoe_color = rng.uniform(10, 120, 3)
    for side in (-1, 1):
        shoe = _ell(h, w, y(0.965), cx + side * 0.22 * sw, 0.025 * ph, 0.16 * sw)
        _paint(img, shoe, shoe_color, rng)
        segs.append((23, shoe))
    if rng.random() < 0.25:  # a bag at the hip
        bx = cx + float(rng.choice([-1, 1])) * 0.7 * sw
        bag = _poly(h, w, [(y(0.42), bx - 0.18 * sw), (y(0.42), bx + 0.18 * sw),
                           (y(0.58), bx + 0.2 * sw), (y(0.58), bx - 0.2 * sw)])  # fmt: skip
        _paint(img, bag, rng.uniform(20, 235, 3), rng)
        segs.append((24, bag))
    return [(c, m) for c, m in segs if m.any()]


def _product(
    h: int, w: int, img: np.ndarray, kind: str, rng: np.random.Generator
) -> list[tuple[int, np.ndarray]]:
    """Paint a product shot on a flat backdrop; at most one body region."""
    img[:] = np.clip(rng.uniform(200, 250) + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    color = rng.uniform(20, 200, 3)
    cy, cx = h / 2, w / 2
    if kind == "bag":
        bag = _poly(h, w, [(cy - 0.25 * h, cx - 0.3 * w), (cy - 0.25 * h, cx + 0.3 * w),
                           (cy + 0.3 * h, cx + 0.35 * w), (cy + 0.3 * h, cx - 0.35 * w)])  # fmt: skip
        _paint(img, bag, color, rng)
        return [(24, bag)]
    if kind == "shoes":
        segs = []
        for side in (-1, 1):
            shoe = _ell(h, w, cy, cx + side * 0.22 * w, 0.18 * h, 0.18 * w)
            _paint(img, shoe, color, rng)
            segs.append((23, shoe))
        return segs
    # a flat-lay shirt with its sleeves and neckline: upperbody + parts only
    body = _poly(h, w, [(0.2 * h, cx - 0.22 * w), (0.2 * h, cx + 0.22 * w), (0.85 * h, cx + 0.22 * w),
                        (0.85 * h, cx - 0.22 * w)])  # fmt: skip
    sl = _poly(h, w, [(0.2 * h, cx - 0.22 * w), (0.2 * h, cx - 0.45 * w), (0.45 * h, cx - 0.45 * w),
                      (0.45 * h, cx - 0.22 * w)])  # fmt: skip
    sr = _poly(h, w, [(0.2 * h, cx + 0.22 * w), (0.2 * h, cx + 0.45 * w), (0.45 * h, cx + 0.45 * w),
                      (0.45 * h, cx + 0.22 * w)])  # fmt: skip
    shirt = body | sl | sr
    _paint(img, shirt, color, rng)
    return [(0, shirt), (31, sl), (31, sr), (33, _poly(h, w, [(0.2 * h, cx - 0.08 * w), (0.2 * h, cx + 0.08 * w),
                                                           (0.28 * h, cx)]))]  # fmt: skip


def _size(rng: np.random.Generator, image_size: int) -> tuple[int, int]:
    """(height, width): mostly portrait, like fashion photos; the shorter side is ``image_size``."""
    aspect = float(rng.choice([4 / 3, 3 / 2, 5 / 4, 1.0, 3 / 4], p=[0.35, 0.25, 0.2, 0.12, 0.08]))  # h / w
    if aspect >= 1:
        return round(image_size * aspect), image_size
    return image_size, round(image_size / aspect)


def build_imaterialist_fixture(
    root: str | os.PathLike,
    n_images: int = 14,
    seed: int = 0,
    image_size: int = 64,
    product_every: int = PRODUCT_EVERY,
    jpeg_quality: int = 95,
) -> dict[str, Any]:
    """Write a fixture in the imaterialist-fashion-2020-fgvc7 release format.

    Args:
        root: folder to write ``train.csv``, ``label_descriptions.json`` and ``train/`` into.
        n_images: images written; ``n_images // product_every`` of them are product shots
            (at least one when ``n_images >= 2``).
        seed: everything is derived from it.
        image_size: shorter side of every image, px.
        product_every: every ``product_every``-th image (index ``product_every - 1``, ...) is a product shot.
        jpeg_quality: of ``train/*.jpg``.

    Returns:
        ``{"n_images", "n_person", "n_product", "product_ids", "person_ids", "n_segments"}``.
    """
    root = Path(root)
    (root / "train").mkdir(parents=True, exist_ok=True)
    product_idx = {i for i in range(n_images) if i % product_every == product_every - 1}
    if not product_idx and n_images >= 2:
        product_idx = {n_images - 1}
    rows: list[dict[str, Any]] = []
    product_ids, person_ids = [], []
    for i in range(n_images):
        rng = numpy_rng(seed, "imaterialist-fixture", i)
        image_id = image_id_for(seed, i)
        h, w = _size(rng, image_size)
        img = _background(h, w, rng, image_size)
        if i in product_idx:
            kind = _PRODUCT_KINDS[len(product_ids) % len(_PRODUCT_KINDS)]
            segs = _product(h, w, img, kind, rng)
            product_ids.append(image_id)
        else:
            segs = _person(h, w, img, rng)
            person_ids.append(image_id)
        atomic_save_image(root / "train" / f"{image_id}.jpg", Image.fromarray(img), quality=jpeg_quality)
        for cls, mask in segs:
            garment = CATEGORIES[cls][2] not in ("garment parts", "closures", "decorations")
            attrs = sorted(rng.choice(_GARMENT_ATTRS, size=3, replace=False).tolist()) if garment else []
            rows.append(
                {
                    "ImageId": image_id,
                    "EncodedPixels": rle_encode(mask),
                    "Height": h,
                    "Width": w,
                    "ClassId": cls,
                    "AttributesIds": ",".join(str(a) for a in attrs),
                }
            )
    atomic_write_text(root / "train.csv", pd.DataFrame(rows, columns=list(CSV_COLUMNS)).to_csv(index=False))
    atomic_write_json(
        root / "label_descriptions.json",
        {
            "info": {"year": 2020, "version": "1.0", "description": "harmonylib generated fixture in the "
                     "iMaterialist (Fashion) 2020 at FGVC7 format", "contributor": "harmonylib"},
            "categories": [{"id": i, "name": n, "supercategory": s, "level": 2} for i, n, s in CATEGORIES],
            "attributes": [{"id": i, "name": n, "supercategory": s, "level": 1} for i, n, s in ATTRIBUTES],
        },
    )  # fmt: skip
    return {
        "n_images": n_images,
        "n_person": len(person_ids),
        "n_product": len(product_ids),
        "product_ids": product_ids,
        "person_ids": person_ids,
        "n_segments": len(rows),
    }

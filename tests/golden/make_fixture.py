"""Write the small, deterministic evaluation fixture in the iHarmony4 layout.

    python tests/golden/make_fixture.py OUT_DIR

Writes ``OUT_DIR/data`` (iHarmony4 layout: ``<Subset>/{composite_images,masks,real_images}``,
``<Subset>/<Subset>_test.txt`` and ``IHD_test.txt``), ``OUT_DIR/predictions`` and
``OUT_DIR/manifest.csv`` (one row per composite: name, subset, and the composite, mask, real
and prediction paths relative to ``OUT_DIR``).

Pixel content comes from integer arithmetic only (no random generator, no floating-point
maths), and every file holds PNG data, also those named ``.jpg`` as in iHarmony4 (PIL reads by
content). So the decoded pixels are the same on every machine and the golden CSV next to this
file stays valid. The cases covered:

* binary, soft (anti-aliased, grey-valued) and grey-plateau masks (dithering matters there,
  and ``> 127`` thresholding differs from it);
* a tiny mask that survives the NEAREST resize to 256 and one that vanishes (empty → fMSE NaN);
* a full mask (bMSE NaN, fg_ratio 1 → last bin) and an empty mask file;
* predictions at 256×256 (the authors'), at 512×512, at the ground truth's own size, and one
  identical to the 256 ground truth (MSE 0, PSNR +inf);
* predictions found by each naming rule: ``<stem>.png``, the composite's own name, and inside
  ``<Subset>/``;
* two composites sharing one mask and one real image, unequal subset sizes (so the mean over
  images differs from the mean of subset means), and portrait / upscaled sizes.

Two more prediction folders serve the other metric conventions (``harmonylib.conventions``);
they add files only, so the folders above and their golden CSVs are unchanged:

* ``OUT/predictions_fullres``: every prediction at its ground truth's own size (``pctnet``);
* ``OUT/predictions_float``: the 256 predictions with sub-level offsets (multiples of 1/64),
  as ``.npy`` (every third case), 16-bit PNG (the next), or the plain 8-bit PNG (``issam``).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

RES = 256

# name, subset, (W, H) of real/mask/composite, mask kind, prediction kind, prediction file rule
CASES = [
    ("c100300_1602094_1", "HCOCO", (320, 240), "ellipse", "p256", "stem_png"),
    ("c100300_1602094_2", "HCOCO", (320, 240), "ellipse", "p512", "stem_png"),
    ("c200411_88_1", "HCOCO", (300, 200), "soft", "p256", "stem_png"),
    ("c300007_5_1", "HCOCO", (700, 500), "tiny_vanishing", "p256", "own_name"),
    ("c300008_6_1", "HCOCO", (700, 500), "tiny_surviving", "native", "stem_png"),
    ("c400001_77_1", "HCOCO", (320, 240), "small_ellipse", "p256", "stem_png"),
    ("a0001_1_1", "HAdobe5k", (640, 480), "plateau", "p256", "stem_png"),
    ("a0002_1_1", "HAdobe5k", (256, 256), "full", "p256", "stem_png"),
    ("a0003_2_3", "HAdobe5k", (480, 640), "soft", "identical", "stem_png"),
    ("f0001_1_1", "HFlickr", (180, 260), "ellipse", "p256", "subset_dir"),
    ("f0002_1_1", "HFlickr", (400, 300), "empty", "p256", "stem_png"),
    ("f0003_1_2", "HFlickr", (400, 300), "big_ellipse", "native", "stem_png"),
    ("d21901-20130410-181833_1_9", "Hday2night", (320, 240), "soft", "p256", "stem_png"),
    ("d90000-20140101-120000_1_1", "Hday2night", (300, 300), "ellipse", "p512", "stem_png"),
]


def _hash(h: int, w: int, seed: int) -> np.ndarray:
    """Integer hash noise in [0, 255], (H, W) uint8; uint64 arithmetic wraps identically everywhere."""
    y, x = np.mgrid[0:h, 0:w].astype(np.uint64)
    v = (x * np.uint64(73856093)) ^ (y * np.uint64(19349663)) ^ np.uint64(seed * 83492791 + 12345)
    v = (v * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    v ^= v >> np.uint64(15)
    v = (v * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    return ((v >> np.uint64(11)) & np.uint64(255)).astype(np.uint8)


def _seed(name: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def real_image(size: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth colour gradient plus texture: (H, W, 3) uint8."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    n = _hash(h, w, seed).astype(np.int64)
    r = 30 + x * 180 // max(w - 1, 1) + n % 24
    g = 20 + y * 190 // max(h - 1, 1) + (n // 7) % 24
    b = 60 + (x + y) * 120 // max(w + h - 2, 1) + (n // 3) % 40
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def _vanishing_position(size: tuple[int, int]) -> tuple[int, int]:
    """A pixel that the mask's NEAREST resize to 256 never samples, so a 1-pixel mask there is empty."""
    w, h = size
    for yy in range(h // 3, h):
        for xx in range(w // 3, w):
            m = np.zeros((h, w), np.uint8)
            m[yy, xx] = 255
            small = Image.fromarray(m, "L").convert("1").resize((RES, RES), Image.Resampling.NEAREST)
            if not np.asarray(small).any():
                return xx, yy
    raise AssertionError("no vanishing position")


def mask_image(kind: str, size: tuple[int, int]) -> np.ndarray:
    """The mask file's content: (H, W) uint8 in [0, 255], possibly grey-valued."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    cx, cy = w // 2, h // 2
    ax, ay = max(w // 4, 2), max(h // 4, 2)
    # Normalised ellipse "radius²" scaled by 1024: 1024 on the ellipse's border.
    d2 = ((x - cx) ** 2 * ay * ay + (y - cy) ** 2 * ax * ax) * 1024 // (ax * ax * ay * ay)
    if kind == "ellipse":
        return np.where(d2 <= 1024, 255, 0).astype(np.uint8)
    if kind == "small_ellipse":
        return np.where(d2 <= 512, 255, 0).astype(np.uint8)
    if kind == "big_ellipse":
        return np.where(d2 <= 3000, 255, 0).astype(np.uint8)
    if kind == "soft":
        # Anti-aliased border: 255 inside, a linear grey ramp over the ring 900 < d2 < 1300.
        return np.clip((1300 - d2) * 255 // 400, 0, 255).astype(np.uint8)
    if kind == "plateau":
        # A grey (100) plateau with a soft 255 core: dithering keeps ~40 % of the plateau,
        # thresholding at 127 drops all of it.
        core = np.clip((700 - d2) * 255 // 300, 0, 255)
        plateau = np.where(d2 <= 2000, 100, 0)
        return np.maximum(core, plateau).astype(np.uint8)
    if kind == "full":
        return np.full((h, w), 255, np.uint8)
    if kind == "empty":
        return np.zeros((h, w), np.uint8)
    if kind == "tiny_surviving":
        m = np.zeros((h, w), np.uint8)
        m[100:103, 200:203] = 255  # 3×3 px: some of it is always sampled by the 256 resize
        return m
    if kind == "tiny_vanishing":
        m = np.zeros((h, w), np.uint8)
        xx, yy = _vanishing_position(size)
        m[yy, xx] = 255
        return m
    raise ValueError(kind)


def composite_image(real: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The foreground colour-shifted (a crude colour transfer), blended by the soft mask."""
    r = real.astype(np.int64)
    shifted = np.stack([r[..., 0] * 3 // 4 + 50, r[..., 1] * 5 // 4 - 10, r[..., 2] // 2 + 20], axis=-1)
    shifted = np.clip(shifted, 0, 255)
    m = mask.astype(np.int64)[..., None]
    return ((r * (255 - m) + shifted * m + 127) // 255).astype(np.uint8)


def prediction_full(real: np.ndarray, composite: np.ndarray, seed: int) -> np.ndarray:
    """A plausible harmonised output at full size: close to real, but not in the background.

    The background carries its own error, so pasting the ground-truth (or composite) background
    changes the scores.
    """
    h, w, _ = real.shape
    n = _hash(h, w, seed + 7).astype(np.int64)
    r = real.astype(np.int64)
    c = composite.astype(np.int64)
    out = (r * 3 + c) // 4 + (n % 11)[..., None] - 5
    out[..., 2] += (n // 11) % 5 - 2
    return np.clip(out, 0, 255).astype(np.uint8)


def float_offsets(h: int, w: int, seed: int) -> np.ndarray:
    """(H, W, 3) float32 offsets in [-31/64, 31/64]: exact in float32, integer arithmetic only."""
    n = _hash(h, w * 3, seed + 11).astype(np.int64).reshape(h, w, 3)
    return ((n % 63) - 31).astype(np.float32) / np.float32(64)


def _save_png16(path: Path, arr: np.ndarray) -> None:
    """(H, W, 3) floats on the 0–255 scale as a 16-bit RGB PNG (filter 0), written here by hand."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = arr.shape
    v = np.rint(arr.astype(np.float64) * 65535.0 / 255.0).astype(">u2")
    raw = b"".join(b"\x00" + v[y].tobytes() for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def _save_png(path: Path, arr: np.ndarray, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path, format="PNG")


def make_fixture(out: str | Path) -> list[dict[str, str]]:
    """Write the fixture under ``out``; return the manifest rows (paths relative to ``out``)."""
    out = Path(out)
    data, preds = out / "data", out / "predictions"
    preds_full, preds_float = out / "predictions_fullres", out / "predictions_float"
    rows = []
    written_masks: set[str] = set()
    for k, (name, subset, size, mask_kind, pred_kind, rule) in enumerate(CASES):
        base = name.split("_")[0]
        mask_stem = name.rsplit("_", 1)[0]
        seed = _seed(base)
        real = real_image(size, seed)
        mask = mask_image(mask_kind, size)
        comp = composite_image(real, mask)
        real_p = data / subset / "real_images" / f"{base}.jpg"
        mask_p = data / subset / "masks" / f"{mask_stem}.png"
        comp_p = data / subset / "composite_images" / f"{name}.jpg"
        _save_png(real_p, real, "RGB")
        if str(mask_p) not in written_masks:
            _save_png(mask_p, mask, "L")
            written_masks.add(str(mask_p))
        _save_png(comp_p, comp, "RGB")

        full = Image.fromarray(prediction_full(real, comp, _seed(name)), "RGB")
        if pred_kind == "p256":
            pred = full.resize((RES, RES), Image.Resampling.BILINEAR)
        elif pred_kind == "p512":
            pred = full.resize((512, 512), Image.Resampling.BILINEAR)
        elif pred_kind == "native":
            pred = full
        elif pred_kind == "identical":
            pred = Image.fromarray(real, "RGB").resize((RES, RES), Image.Resampling.BILINEAR)
        else:
            raise ValueError(pred_kind)
        pred_p = {
            "stem_png": preds / f"{name}.png",
            "own_name": preds / f"{name}.jpg",  # PNG data under the composite's own name
            "subset_dir": preds / subset / f"{name}.png",
        }[rule]
        _save_png(pred_p, np.asarray(pred), "RGB")
        full_p = preds_full / f"{name}.png"
        _save_png(full_p, np.asarray(real if pred_kind == "identical" else full), "RGB")
        p8 = np.asarray(pred)
        fl = np.clip(p8.astype(np.float32) + float_offsets(*p8.shape[:2], _seed(name)), 0, 255)
        if k % 3 == 0:
            float_p = preds_float / f"{name}.npy"
            preds_float.mkdir(parents=True, exist_ok=True)
            np.save(float_p, fl)
        elif k % 3 == 1:
            float_p = preds_float / f"{name}.png"
            _save_png16(float_p, fl)
        else:
            float_p = preds_float / f"{name}.png"
            _save_png(float_p, p8, "RGB")
        rows.append(
            {
                "name": name,
                "subset": subset,
                "composite": comp_p.relative_to(out).as_posix(),
                "mask": mask_p.relative_to(out).as_posix(),
                "real": real_p.relative_to(out).as_posix(),
                "prediction": pred_p.relative_to(out).as_posix(),
                "prediction_fullres": full_p.relative_to(out).as_posix(),
                "prediction_float": float_p.relative_to(out).as_posix(),
            }
        )

    subsets = list(dict.fromkeys(r["subset"] for r in rows))
    for s in subsets:
        lines = [Path(r["composite"]).name for r in rows if r["subset"] == s]
        (data / s / f"{s}_test.txt").write_text("\n".join(lines) + "\n")
    ihd = [f"{r['subset']}/composite_images/{Path(r['composite']).name}" for r in rows]
    (data / "IHD_test.txt").write_text("\n".join(ihd) + "\n")
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = make_fixture(sys.argv[1])
    print(f"wrote {len(rows)} samples under {sys.argv[1]}")

"""A deliberately plain reference evaluator: one image at a time, PIL + numpy, no harmonylib.

    python tests/golden/reference_eval.py FIXTURE_DIR OUT.csv [--background gt|composite|none]
                                          [--mask-mode dither|threshold]

It follows the authors' protocol (nicecv/DiffHarmony ``scripts/evaluate/main.py`` with
``--resolution=256 --use_gt_bg``, as described in official-implementation.md §7) line by line,
in float arithmetic, and only adds the edge-case definitions of harmonylib (NaN fMSE for an
empty mask, NaN bMSE for a full one, +inf PSNR for MSE = 0). It was written independently of
``harmonylib.metrics`` and is used to produce and to guard the golden CSVs; the benchmark also
uses it as the baseline.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image

RES = 256


def evaluate_one(pred_path, real_path, mask_path, composite_path, background="gt", mask_mode="dither"):
    """Return dict(fg_ratio, mse, psnr, fmse, bmse) for one sample."""
    # Prediction: RGB, resized to 256 only if it is not 256×256 already.
    pred = Image.open(pred_path).convert("RGB")
    if pred.size != (RES, RES):
        pred = pred.resize((RES, RES), Image.BILINEAR)
    # Ground truth: RGB, resized to 256 (bilinear; PIL antialiases when downscaling).
    real = Image.open(real_path).convert("RGB").resize((RES, RES), Image.BILINEAR)

    # Mask: binarised at full size ("1" dithers), then resized; PIL uses NEAREST for mode "1".
    mask = Image.open(mask_path).convert("L")
    if mask_mode == "dither":
        mask = mask.convert("1")
    else:
        mask = Image.fromarray(np.array(mask) > 127)
    mask = mask.resize((RES, RES), Image.NEAREST)
    m = np.array(mask).astype(np.float32)[:, :, None]  # (256, 256, 1) in {0, 1}

    out = np.array(pred).astype(np.float32)
    gt = np.array(real).astype(np.float32)
    if background == "gt":
        out = out * m + gt * (1 - m)
    elif background == "composite":
        comp = Image.open(composite_path).convert("RGB").resize((RES, RES), Image.BILINEAR)
        out = out * m + np.array(comp).astype(np.float32) * (1 - m)

    sq = (out.astype(np.float64) - gt.astype(np.float64)) ** 2  # (256, 256, 3)
    mse = float(np.mean(sq))
    psnr = 10 * math.log10(255.0**2 / mse) if mse > 0 else math.inf

    fg = m[:, :, 0] > 0.5
    n_fg = int(fg.sum())
    n_bg = RES * RES - n_fg
    fmse = float(sq[fg].sum() / (3 * n_fg)) if n_fg > 0 else math.nan
    bmse = float(sq[~fg].sum() / (3 * n_bg)) if n_bg > 0 else math.nan
    return {"fg_ratio": n_fg / (RES * RES), "mse": mse, "psnr": psnr, "fmse": fmse, "bmse": bmse}


def evaluate_fixture(fixture_dir, background="gt", mask_mode="dither"):
    """Evaluate every manifest row of a fixture made by make_fixture.py; return a list of dicts."""
    fixture_dir = Path(fixture_dir)
    rows = []
    with open(fixture_dir / "manifest.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            scores = evaluate_one(
                fixture_dir / r["prediction"],
                fixture_dir / r["real"],
                fixture_dir / r["mask"],
                fixture_dir / r["composite"],
                background,
                mask_mode,
            )
            rows.append({"image": r["name"], "subset": r["subset"], **scores})
    return rows


def write_csv(rows, path):
    """Floats as repr (round-trips exactly; 'inf' and 'nan' spelled out)."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "subset", "fg_ratio", "mse", "psnr", "fmse", "bmse"])
        for r in rows:
            writer.writerow(
                [r["image"], r["subset"]]
                + [repr(float(r[k])) for k in ("fg_ratio", "mse", "psnr", "fmse", "bmse")]
            )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture_dir")
    ap.add_argument("out")
    ap.add_argument("--background", default="gt", choices=["gt", "composite", "none"])
    ap.add_argument("--mask-mode", default="dither", choices=["dither", "threshold"])
    a = ap.parse_args()
    write_csv(evaluate_fixture(a.fixture_dir, a.background, a.mask_mode), a.out)
    print(f"wrote {a.out}")

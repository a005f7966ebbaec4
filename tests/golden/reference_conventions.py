"""A deliberately plain reference for the peers' metric conventions: one image at a time, no harmonylib.

    python tests/golden/reference_conventions.py FIXTURE_DIR CONVENTION OUT.csv

CONVENTION is issam, pctnet, hdnet or harmonizer. Each is written out below from the peers'
formulas (peers.md §5 and the files it cites), separately from ``harmonylib.conventions``:
the bilinear resize is built as two interpolation matrices by explicit loops (the library
gathers indices), the 16-bit PNG reader handles only what make_fixture.py writes, and every
metric is spelled out per convention. The background is always the ground truth's, pasted with
the convention's mask as weights (the evaluator's default). Used to produce and to guard
``golden_conventions_<name>.csv``.
"""

from __future__ import annotations

import argparse
import csv
import math
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RES = 256
# which prediction folder of the fixture each convention scores
PREDICTION_COLUMN = {
    "issam": "prediction_float",
    "pctnet": "prediction_fullres",
    "hdnet": "prediction",
    "harmonizer": "prediction",
}


def interpolation_matrix(n_in, n_out):
    """(n_out, n_in) weights of OpenCV's INTER_LINEAR along one axis (half-pixel centres, clamped)."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        x = (o + 0.5) * n_in / n_out - 0.5
        left = math.floor(x)
        t = x - left
        if x < 0:
            left, t = 0, 0.0
        if left >= n_in - 1:
            left, t = n_in - 1, 0.0
        right = min(left + 1, n_in - 1)
        m[o, left] += 1 - t
        m[o, right] += t
    return m


def opencv_bilinear(a, n):
    """Resize (H, W[, C]) to (n, n) with interpolation matrices; uint8 rounds half up."""
    if a.shape[:2] == (n, n):
        return a
    my = interpolation_matrix(a.shape[0], n)
    mx = interpolation_matrix(a.shape[1], n)
    f = a.astype(np.float64)
    if f.ndim == 2:
        out = my @ f @ mx.T
    else:
        out = np.stack([my @ f[..., c] @ mx.T for c in range(f.shape[2])], axis=-1)
    if a.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


def read_prediction_float(path):
    """.npy, a 16-bit RGB PNG written with filter 0 (make_fixture.py), or an 8-bit image."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.clip(np.load(path).astype(np.float64), 0, 255)
    data = path.read_bytes()
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    if depth != 16:
        return np.array(Image.open(path).convert("RGB"))
    assert colour == 2
    pos, idat = 8, b""
    while pos < len(data):
        n = struct.unpack(">I", data[pos : pos + 4])[0]
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * 6
    img = np.zeros((h, w, 3))
    for y in range(h):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        assert line[0] == 0, "the reference reads filter-0 rows only"
        img[y] = np.frombuffer(line[1:], ">u2").reshape(w, 3)
    return img * 255.0 / 65535.0


def load(conv, pred_path, real_path, mask_path):
    """(pred, gt, m): float64 (R, R, 3), (R, R, 3), (R, R), per the convention's preparation."""
    real = Image.open(real_path).convert("RGB")
    mask_l = Image.open(mask_path).convert("L")
    if conv == "issam":
        pred = opencv_bilinear(read_prediction_float(pred_path), RES)
        gt = opencv_bilinear(np.array(real), RES)
        m = opencv_bilinear(np.array(mask_l).astype(np.float64) / 255.0, RES)
    elif conv == "pctnet":
        pred = np.array(Image.open(pred_path).convert("RGB"))
        gt = np.array(real)
        if pred.shape != gt.shape:
            raise ValueError(f"{pred_path}: size differs from the ground truth")
        m = np.array(mask_l).astype(np.float64) / 255.0
    else:  # hdnet, harmonizer: PIL bilinear to 256, mask convert("1") then NEAREST
        p = Image.open(pred_path).convert("RGB")
        if p.size != (RES, RES):
            p = p.resize((RES, RES), Image.BILINEAR)
        pred = np.array(p)
        gt = np.array(real.resize((RES, RES), Image.BILINEAR))
        m = np.array(mask_l.convert("1").resize((RES, RES), Image.NEAREST)).astype(np.float64)
    pred, gt = pred.astype(np.float64), gt.astype(np.float64)
    pred = pred * m[:, :, None] + gt * (1 - m[:, :, None])  # ground-truth background
    return pred, gt, m


def evaluate_one(conv, pred_path, real_path, mask_path):
    pred, gt, m = load(conv, pred_path, real_path, mask_path)
    h, w, _ = gt.shape
    sq = (pred - gt) ** 2  # (H, W, 3)
    msq = m[:, :, None] * sq
    full_mse = sq.mean()
    if conv == "issam":
        # iharm/inference/metrics.py: MSE, PSNR(target max, +1e-6), fMSE(+1e-6)
        mse = full_mse
        psnr = 10 * math.log10(gt.max() ** 2 / (mse + 1e-6))
        fmse = msq.sum() / (3 * m.sum() + 1e-6)
    elif conv == "pctnet":
        # PCT-Net iharm/inference/metrics.py: MSE = mean(mask·sq); PSNR from it, peak 255, +1e-6
        mse = msq.mean()
        psnr = 10 * math.log10(255.0**2 / (mse + 1e-6))
        fmse = msq.sum() / (3 * m.sum() + 1e-6)
    elif conv == "hdnet":
        mse = full_mse
        psnr = 10 * math.log10(255.0**2 / mse) if mse > 0 else math.inf
        fmse = full_mse * h * w / m.sum() if m.sum() > 0 else math.nan
    else:  # harmonizer: skimage data_range = pred.max() - pred.min(); fMSE = mse(p·m, g·m)·HW/|fg|
        mse = full_mse
        rng = pred.max() - pred.min()
        psnr = (10 * math.log10(rng**2 / mse) if mse > 0 else math.inf) if rng > 0 else -math.inf
        fmse = (
            ((pred * m[:, :, None] - gt * m[:, :, None]) ** 2).mean() * h * w / m.sum()
            if m.sum()
            else math.nan
        )
    nb = (1 - m).sum()
    bmse = ((1 - m)[:, :, None] * sq).sum() / (3 * nb) if nb > 0 else math.nan
    ratio = float((m > 0.5).sum()) / (h * w)
    return {
        "fg_ratio": ratio,
        "mse": float(mse),
        "psnr": float(psnr),
        "fmse": float(fmse),
        "bmse": float(bmse),
    }


def evaluate_fixture(fixture_dir, conv):
    fixture_dir = Path(fixture_dir)
    rows = []
    with open(fixture_dir / "manifest.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            scores = evaluate_one(
                conv,
                fixture_dir / r[PREDICTION_COLUMN[conv]],
                fixture_dir / r["real"],
                fixture_dir / r["mask"],
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
    ap.add_argument("convention", choices=sorted(PREDICTION_COLUMN))
    ap.add_argument("out")
    a = ap.parse_args()
    write_csv(evaluate_fixture(a.fixture_dir, a.convention), a.out)
    print(f"wrote {a.out}")

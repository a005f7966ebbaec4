"""`harmonylib harmonize` with its defaults makes unseen composites better, as a new user would run it.

The composites are made here, not by the built-in generator: 256 px crops of the vendored photo
set's *test* scenes (never seen in pretraining or training), an ellipse foreground, recoloured
with a per-channel gain and a per-channel gamma -- an edit the generator does not use (it draws
colour transfer, histogram matching, exposure, one gamma, saturation or white balance, one at a
time). The harmonizer runs from the committed mini release (no --pipeline, no training), from a
folder outside the clone, at its default processing size.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harmonylib.cli import main
from harmonylib.data import photo_set

N_PER_PHOTO = 2
SIDE = 256


def _ellipse(rng: np.random.Generator, side: int) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side]
    cy, cx = rng.uniform(0.35, 0.65, 2) * side
    ry, rx = rng.uniform(0.18, 0.32, 2) * side
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _gain_gamma(real: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-channel gain in [0.75, 1.3] and gamma in [0.7, 1.45] on [0, 1] values."""
    gain = rng.uniform(0.75, 1.3, 3)
    gamma = rng.uniform(0.7, 1.45, 3)
    return np.clip(gain * np.power(real, gamma), 0.0, 1.0)


def _composites(tmp_path):
    rng = np.random.default_rng(2024)
    cases = []
    for entry in photo_set.scenes("test"):
        photo = photo_set.open_photo(entry).convert("RGB")
        for k in range(N_PER_PHOTO):
            x = int(rng.integers(0, photo.width - SIDE + 1))
            y = int(rng.integers(0, photo.height - SIDE + 1))
            real = np.asarray(photo.crop((x, y, x + SIDE, y + SIDE)), dtype=np.float64) / 255.0
            mask = _ellipse(rng, SIDE)
            comp = np.where(mask[..., None], _gain_gamma(real, rng), real)
            stem = f"{entry.name}_{k}"
            Image.fromarray(np.round(comp * 255).astype(np.uint8)).save(tmp_path / f"{stem}.png")
            Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L").save(tmp_path / f"{stem}_mask.png")
            cases.append((stem, np.round(real * 255), mask))
    return cases


def _fg_mse(img: np.ndarray, real: np.ndarray, mask: np.ndarray) -> float:
    return float(((img.astype(np.float64) - real) ** 2)[mask].mean())


# [mini-v2]'s target, not met yet: with the v2 release the foreground MSE goes 553 -> 2493 (the base
# VAE and Harmony-VAE ceilings are far above the composite; the forward UNet's samples are the limit,
# results/mini/diagnostics/v2/LEVERS.md). strict: the suite fails the day it passes, so the marker goes.
@pytest.mark.xfail(
    strict=True, reason="mini-v2 open: the forward UNet's samples are worse than the composite"
)
def test_harmonize_defaults_beat_the_composites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any folder: the release is found through the package
    cases = _composites(tmp_path)
    assert len(cases) >= 10
    before, after = [], []
    for stem, real, mask in cases:
        out = tmp_path / f"{stem}_out.png"
        rc = main(
            [
                "harmonize",
                "--image",
                f"{stem}.png",
                "--mask",
                f"{stem}_mask.png",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        assert rc == 0
        pred = np.asarray(Image.open(out).convert("RGB"))
        assert pred.shape == (SIDE, SIDE, 3)
        comp = np.asarray(Image.open(tmp_path / f"{stem}.png").convert("RGB"))
        before.append(_fg_mse(comp, real, mask))
        after.append(_fg_mse(pred, real, mask))
    print(f"foreground MSE: composites {np.mean(before):.1f}, harmonized {np.mean(after):.1f}")
    assert np.mean(after) < np.mean(before)

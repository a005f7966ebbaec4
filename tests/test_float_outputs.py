"""Float predictions from ``harmonize --save-float`` and ``predict_split(float_format="npy")``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harmonylib.cli import main
from harmonylib.data.iharmony4 import read_split
from harmonylib.float_predictions import load_prediction, png_bit_depth
from harmonylib.inference import InferenceSettings, predict_split
from harmonylib.models.tiny import build_tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(0)


def _pair(root):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(root / "img.png")
    m = np.zeros((40, 56), np.uint8)
    m[10:30, 14:42] = 255
    Image.fromarray(m).save(root / "mask.png")
    return root / "img.png", root / "mask.png"


def test_harmonize_save_float_keeps_the_png_and_adds_the_float(pipe, tmp_path, capsys):
    pipe_dir = tmp_path / "pipeline"
    pipe.save_pretrained(pipe_dir)
    img, mask = _pair(tmp_path)
    common = ["harmonize", "--pipeline", str(pipe_dir), "--image", str(img), "--mask", str(mask),
              "--size", "32", "--steps", "2", "--quiet"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "plain.png")]) == 0
    assert main([*common, "--out", str(tmp_path / "f.png"), "--save-float", "npy"]) == 0
    assert main([*common, "--out", str(tmp_path / "h.png"), "--save-float", "png16"]) == 0
    plain = np.asarray(Image.open(tmp_path / "plain.png"))
    # the 8-bit output is unchanged by the option; the float rounds to it
    assert np.array_equal(np.asarray(Image.open(tmp_path / "f.png")), plain)
    fl = load_prediction(tmp_path / "f.npy", allow_float=True)
    assert fl.shape == plain.shape and np.abs(fl - plain).max() <= 0.5 + 1e-4
    assert np.abs(fl - np.round(fl)).max() > 0  # not already quantised
    assert png_bit_depth(tmp_path / "h.png") == 16
    np.testing.assert_allclose(load_prediction(tmp_path / "h.png", allow_float=True), fl, atol=255 / 65535)
    rc = main([*common, "--out", str(tmp_path / "h.jpg"), "--save-float", "png16"])
    assert rc == 2 and "must be .png" in capsys.readouterr().err


def test_predict_split_writes_npy_beside_unchanged_pngs(pipe, smoke_data_root, tmp_path):
    samples = read_split(smoke_data_root, "test")[:3]
    settings = InferenceSettings(size=64, output_resolution=48, seed=1)
    kw = dict(rank=0, world_size=1, progress=False)
    plain = predict_split(pipe, samples, tmp_path / "plain", settings, **kw)
    fl = predict_split(pipe, samples, tmp_path / "float", settings, float_format="npy", **kw)
    for s in samples:
        png = np.asarray(Image.open(fl / f"{s.name}.png"))
        assert np.array_equal(png, np.asarray(Image.open(plain / f"{s.name}.png")))
        arr = np.load(fl / f"{s.name}.npy")
        assert arr.shape == (48, 48, 3) and arr.dtype == np.float32
        assert np.abs(arr - png).max() < 2.0  # resized before vs after rounding
    assert (fl / "DONE").is_file()
    # a rerun that asks for floats in a folder without them makes them (the PNGs are skipped)
    predict_split(pipe, samples, plain, settings, float_format="npy", **kw)
    assert all((plain / f"{s.name}.npy").is_file() for s in samples)
    with pytest.raises(ValueError, match="png16"):
        predict_split(pipe, samples, tmp_path / "x", settings, float_format="png16", **kw)

"""The peers' metric conventions: golden CSVs, a hand-computed case, bins, float predictions, CLI.

``tests/golden/golden_conventions_<name>.csv`` hold per-image values computed once by
``tests/golden/reference_conventions.py`` (a plain one-image-at-a-time loop written apart from
``harmonylib.conventions``) on the fixture of ``tests/golden/make_fixture.py``:

    python tests/golden/make_fixture.py /tmp/fx
    python tests/golden/reference_conventions.py /tmp/fx issam tests/golden/golden_conventions_issam.csv
    (and pctnet, hdnet, harmonizer)
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import struct
import types
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmonylib import conventions as C
from harmonylib import evaluation as E
from harmonylib import float_predictions as F
from harmonylib.config import EvalConfig

GOLDEN_DIR = Path(__file__).parent / "golden"
VALUE_COLUMNS = ["fg_ratio", "mse", "psnr", "fmse", "bmse"]


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"golden_{name}", GOLDEN_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_fixture = _load("make_fixture")
reference = _load("reference_conventions")


@dataclass(frozen=True)
class FakeSample:
    name: str
    subset: str
    composite: Path
    mask: Path
    real: Path


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fixture")
    make_fixture.make_fixture(root)
    return root


@pytest.fixture(scope="module")
def samples(fixture_dir) -> list[FakeSample]:
    with open(fixture_dir / "manifest.csv", newline="") as fh:
        return [
            FakeSample(r["name"], r["subset"], *(fixture_dir / r[k] for k in ("composite", "mask", "real")))
            for r in csv.DictReader(fh)
        ]


def assert_frames_close(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got["image"]) == list(want["image"])
    for col in VALUE_COLUMNS:
        g, w = got[col].to_numpy(np.float64), want[col].to_numpy(np.float64)
        assert np.array_equal(np.isnan(g), np.isnan(w)), col
        assert np.array_equal(np.isinf(g), np.isinf(w)), col
        ok = np.isfinite(w)
        # atol: pasting a prediction equal to the target through a soft mask leaves ~1e-31
        np.testing.assert_allclose(g[ok], w[ok], rtol=1e-6, atol=1e-9, err_msg=col)


# ---------------------------------------------------------------------------- golden

PEERS = ["issam", "pctnet", "hdnet", "harmonizer"]


@pytest.mark.parametrize("name", PEERS)
def test_evaluator_reproduces_golden_csv(samples, fixture_dir, name):
    folder = fixture_dir / reference.PREDICTION_COLUMN[name].replace("prediction", "predictions")
    got = E.evaluate_predictions(samples, folder, EvalConfig(convention=name), progress=False, workers=2)
    assert list(got.columns) == list(E.COLUMNS) and not got["missing"].any()
    assert_frames_close(got, pd.read_csv(GOLDEN_DIR / f"golden_conventions_{name}.csv"))


@pytest.mark.parametrize("name", ["issam", "hdnet"])
def test_reference_loop_reproduces_golden_csv(fixture_dir, name):
    got = pd.DataFrame(reference.evaluate_fixture(fixture_dir, name))
    assert_frames_close(got, pd.read_csv(GOLDEN_DIR / f"golden_conventions_{name}.csv"))


def test_golden_conventions_cover_soft_empty_and_full_masks():
    issam = pd.read_csv(GOLDEN_DIR / "golden_conventions_issam.csv").set_index("image")
    hdnet = pd.read_csv(GOLDEN_DIR / "golden_conventions_hdnet.csv").set_index("image")
    assert issam.loc["f0002_1_1", "fmse"] == 0.0  # empty mask: +1e-6 gives 0
    assert math.isnan(hdnet.loc["f0002_1_1", "fmse"])  # empty mask: |fg| = 0
    assert issam.loc["a0002_1_1", "fg_ratio"] == 1.0 and math.isnan(issam.loc["a0002_1_1", "bmse"])
    # the tiny mask that vanishes under NEAREST keeps some weight under a bilinear resize
    assert issam.loc["c300007_5_1", "fmse"] > 0 and math.isnan(hdnet.loc["c300007_5_1", "fmse"])
    # soft masks: the soft-weighted fMSE differs from the binarised one
    assert issam.loc["c200411_88_1", "fmse"] != pytest.approx(hdnet.loc["c200411_88_1", "fmse"], rel=1e-3)


def test_diffharmony_definition_matches_the_fast_path(samples, fixture_dir):
    """``score_sample`` under ``diffharmony`` gives the authors' golden numbers, so the stated
    definition is the one the fast path computes."""
    want = pd.read_csv(GOLDEN_DIR / "golden_metrics.csv")
    paths = E.find_predictions(samples, fixture_dir / "predictions")
    rows = [
        C.score_sample(s, p, C.get_convention("diffharmony")) for s, p in zip(samples, paths, strict=True)
    ]
    got = pd.DataFrame(rows).assign(image=[s.name for s in samples])
    assert_frames_close(got, want)


def test_pctnet_refuses_a_prediction_at_another_size(samples, fixture_dir):
    with pytest.raises(ValueError, match=r"c100300_1602094_1\.png: prediction is 256x256.*320x240"):
        E.evaluate_predictions(
            samples, fixture_dir / "predictions", EvalConfig(convention="pctnet"), progress=False
        )


def test_unknown_convention_lists_the_known_ones(samples, fixture_dir):
    with pytest.raises(ValueError, match="issam"):
        E.evaluate_predictions(
            samples, fixture_dir / "predictions", EvalConfig(convention="nope"), progress=False
        )


# ---------------------------------------------------------------------------- by hand


def test_a_tiny_case_where_the_conventions_disagree():
    """2×2 pixels, worked out from the peers' formulas (peers.md §5).

    Target g: every value 100, except pixel (0,0) = 200 (all channels), so target.max() = 200.
    Prediction p: g, except (0,0) = 190 (error 10 per channel) and (1,1) = 120 (error 20).
    Squared errors summed over the 3 channels: (0,0) 3·100 = 300, (1,1) 3·400 = 1200, else 0.
    Soft mask M = [[1, .5], [0, 0]]: ΣM = 1.5, Σ M·d = 300. The binary conventions see their
    binarised mask [[1, 0], [0, 0]]: |fg| = 1.

    * plain MSE = (300 + 1200) / (4·3) = 125; PCT-Net's masked MSE = 300 / 12 = 25.
    * diffharmony: PSNR = 10·log10(255²/125) = 27.1617; fMSE = 300 / (3·1) = 100.
    * hdnet: PSNR as diffharmony; fMSE = MSE·HW/|fg| = 125·4/1 = 500.
    * harmonizer: peak = p.max() − p.min() = 190 − 100 = 90, PSNR = 10·log10(8100/125) = 18.1158;
      fMSE = 100.
    * issam: peak = 200, PSNR = 10·log10(40000/(125 + 1e-6)) = 25.0515;
      fMSE = 300 / (3·1.5 + 1e-6) = 66.667.
    * pctnet: PSNR = 10·log10(65025/(25 + 1e-6)) = 34.1514; fMSE = 66.667.
    """
    g = np.full((2, 2, 3), 100.0)
    g[0, 0] = 200.0
    p = g.copy()
    p[0, 0] = 190.0
    p[1, 1] = 120.0
    soft = np.array([[1.0, 0.5], [0.0, 0.0]])
    binary = np.array([[1.0, 0.0], [0.0, 0.0]])
    want = {  # convention: (mask, mse, psnr, fmse)
        "diffharmony": (binary, 125.0, 27.1617, 100.0),
        "hdnet": (binary, 125.0, 27.1617, 500.0),
        "harmonizer": (binary, 125.0, 18.1158, 100.0),
        "issam": (soft, 125.0, 25.0515, 66.6667),
        "pctnet": (soft, 25.0, 34.1514, 66.6667),
    }
    for name, (mask, mse, psnr, fmse) in want.items():
        got = C.score_arrays(p, g, mask, C.get_convention(name))
        assert got["mse"] == pytest.approx(mse, rel=1e-9), name
        assert got["psnr"] == pytest.approx(psnr, abs=1e-4), name
        assert got["fmse"] == pytest.approx(fmse, abs=1e-4), name
        assert got["fg_ratio"] == 0.25, name  # one pixel of four above 0.5

    # An empty mask: 0 under the +1e-6 conventions, NaN (counted apart) under the others.
    empty = np.zeros((2, 2))
    assert C.score_arrays(p, g, empty, C.get_convention("issam"))["fmse"] == 0.0
    assert math.isnan(C.score_arrays(p, g, empty, C.get_convention("hdnet"))["fmse"])
    # Identical images: +inf without epsilon; 10·log10(200²/1e-6) = 106.02 with iSSAM's.
    assert C.score_arrays(g, g, binary, C.get_convention("diffharmony"))["psnr"] == math.inf
    assert C.score_arrays(g, g, soft, C.get_convention("issam"))["psnr"] == pytest.approx(106.0206, abs=1e-4)


def test_bins_follow_each_convention():
    r = np.array([0.0, 0.05, 0.15, 1.0])
    dh, issam, hdnet = (
        C.fg_bin_members(r, n).astype(int).tolist() for n in ("diffharmony", "issam", "hdnet")
    )
    assert dh == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]  # [lo, hi), r = 1 in the last
    assert issam == [[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]]  # closed: edges count twice
    assert hdnet == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]  # (lo, hi]: r = 0 in none
    grid = np.linspace(0, 1, 201)
    assert (C.fg_bin_members(grid, "diffharmony").argmax(1) == E.fg_bin_index(grid)).all()
    df = pd.DataFrame({"image": ["a", "b"], "subset": "HCOCO", "fg_ratio": [0.05, 0.5], "mse": [1.0, 2.0],
                       "psnr": 30.0, "fmse": 1.0, "bmse": 0.0, "missing": False})  # fmt: skip
    by = E.aggregate_by_fg_bins(df, "issam").set_index(["subset", "fg_bin"])
    assert by.loc[("All", "0-5%"), "n"] == 1 and by.loc[("All", "5-15%"), "n"] == 1


def test_opencv_bilinear_matches_the_interpolation_matrices():
    rng = np.random.default_rng(0)
    for shape in [(7, 5, 3), (300, 170), (256, 512, 3), (3, 3)]:
        a = rng.uniform(0, 255, shape)
        np.testing.assert_allclose(
            C.resize_bilinear_opencv(a, 11), reference.opencv_bilinear(a, 11), atol=1e-9
        )
    u = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert np.array_equal(C.resize_bilinear_opencv(u, 16), reference.opencv_bilinear(u, 16))


# ---------------------------------------------------------------------------- float files


def _filtered_png16(v: np.ndarray, filters: list[int]) -> bytes:
    """A 16-bit RGB PNG whose row y uses PNG filter ``filters[y]``, encoded by a plain loop."""
    h, w, _ = v.shape
    rows = [bytearray(v[y].astype(">u2").tobytes()) for y in range(h)]
    bpp, raw = 6, bytearray()
    for y, kind in enumerate(filters):
        cur, up = rows[y], rows[y - 1] if y else bytearray(len(rows[y]))
        out = bytearray([kind])
        for x in range(len(cur)):
            a = cur[x - bpp] if x >= bpp else 0
            b, c = up[x], (up[x - bpp] if x >= bpp else 0)
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            paeth = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            pred = [0, a, b, (a + b) // 2, paeth][kind]
            out.append((cur[x] - pred) % 256)
        raw += out

    def chunk(k, d):
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))

    head = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + head + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")


def test_png16_reader_undoes_every_filter(tmp_path):
    v = np.random.default_rng(1).integers(0, 65536, (5, 4, 3))
    path = tmp_path / "f.png"
    path.write_bytes(_filtered_png16(v, [0, 1, 2, 3, 4]))
    np.testing.assert_allclose(F.read_png16(path), v * 255.0 / 65535.0, atol=1e-12)


def test_float_predictions_round_trip_and_bad_files_name_themselves(tmp_path):
    a = np.random.default_rng(2).uniform(-3, 260, (6, 7, 3))
    F.save_float_prediction(tmp_path / "p.npy", a)
    F.save_float_prediction(tmp_path / "p.png", a)
    clipped = np.clip(a, 0, 255)
    np.testing.assert_allclose(F.load_prediction(tmp_path / "p.npy", True), clipped, atol=1e-4)
    np.testing.assert_allclose(
        F.load_prediction(tmp_path / "p.png", True), clipped, atol=255 / 65535 / 2 + 1e-9
    )
    assert F.png_bit_depth(tmp_path / "p.png") == 16
    assert F.load_prediction(tmp_path / "p.png", False).dtype == np.uint8  # uint8 conventions
    np.save(tmp_path / "bad.npy", np.zeros((4, 4)))
    with pytest.raises(F.FloatPredictionError, match=r"bad\.npy: expected a \(H, W, 3\)"):
        F.load_prediction(tmp_path / "bad.npy", True)


def test_issam_prefers_a_float_prediction(samples, fixture_dir, tmp_path):
    import shutil

    preds = tmp_path / "preds"
    shutil.copytree(fixture_dir / "predictions", preds)
    s = samples[0]
    u8 = E.evaluate_predictions(samples[:1], preds, EvalConfig(convention="issam"), progress=False)
    p8 = np.asarray(F.load_prediction(preds / f"{s.name}.png", False), np.float64)
    F.save_float_prediction(preds / f"{s.name}.npy", p8 + 0.25)
    fl = E.evaluate_predictions(samples[:1], preds, EvalConfig(convention="issam"), progress=False)
    assert E.find_predictions(samples[:1], preds, float_first=True) == [preds / f"{s.name}.npy"]
    assert fl["mse"].iloc[0] != u8["mse"].iloc[0]
    # the authors' convention never reads the .npy
    dh = E.evaluate_predictions(samples[:1], preds, progress=False)
    assert dh["mse"].iloc[0] == pytest.approx(pd.read_csv(GOLDEN_DIR / "golden_metrics.csv")["mse"].iloc[0])


# ---------------------------------------------------------------------------- CLI


def test_cli_convention_writes_its_definition(fixture_dir, tmp_path, capsys):
    from harmonylib.cli import main

    out = tmp_path / "hd.csv"
    argv = ["evaluate", "--data-root", str(fixture_dir / "data"), "--predictions",
            str(fixture_dir / "predictions"), "--out", str(out), "--no-progress", "--convention", "hdnet"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "convention=hdnet" in printed and "MSE·H·W / ΣM" in printed
    got = pd.read_csv(out)
    want = pd.read_csv(GOLDEN_DIR / "golden_conventions_hdnet.csv")
    assert_frames_close(got.set_index("image").loc[want["image"]].reset_index(), want)
    prov = json.loads((tmp_path / "hd.provenance.json").read_text())
    assert prov["convention"] == "hdnet" and "HDNet" in prov["convention_definition"]
    assert prov["config"]["convention"] == "hdnet"
    # pctnet on 256 predictions: an error naming the file, exit status 1, no CSV
    bad = tmp_path / "pct.csv"
    assert main([*argv[:5], "--out", str(bad), "--no-progress", "--convention", "pctnet"]) == 1
    assert "prediction is 256x256" in capsys.readouterr().err and not bad.exists()


# ---------------------------------------------------------------------------- side table


def test_side_table_scores_composite_and_methods_under_each_convention(samples, fixture_dir):
    from harmonylib.convention_table import convention_side_table, pivot_side_table

    # pctnet needs full-size predictions: the fixture's full-res folder stands in for a method
    table = convention_side_table(
        samples,
        {"method": fixture_dir / "predictions_fullres"},
        conventions=["diffharmony", "issam", "pctnet"],
    )
    assert list(table["method"].unique()) == ["Composite", "method"]
    assert len(table) == 2 * 3 and (table["n"] == len(samples)).all()
    t = table.set_index(["method", "convention"])
    want = pd.read_csv(GOLDEN_DIR / "golden_conventions_pctnet.csv")
    assert t.loc[("method", "pctnet"), "mse"] == pytest.approx(want["mse"].mean())
    # the convention alone moves the numbers
    assert t.loc[("Composite", "issam"), "fmse"] != pytest.approx(t.loc[("Composite", "diffharmony"), "fmse"])
    wide = pivot_side_table(table)
    assert (
        wide.shape == (2, 9) and wide.loc["method", ("mse", "pctnet")] == t.loc[("method", "pctnet"), "mse"]
    )

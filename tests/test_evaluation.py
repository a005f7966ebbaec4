"""The evaluator against the golden CSVs, its cache, its error paths, aggregation and the CLI.

The golden CSVs in ``tests/golden/`` hold literal per-image values computed once by
``tests/golden/reference_eval.py`` (a plain one-image-at-a-time loop) on the fixture written by
``tests/golden/make_fixture.py``. To regenerate them (only if the protocol changes on purpose):

    python tests/golden/make_fixture.py /tmp/fx
    python tests/golden/reference_eval.py /tmp/fx tests/golden/golden_metrics.csv
    (and the variants: --background composite|none, --mask-mode threshold; see GOLDEN below)
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmonylib import evaluation as E
from harmonylib.config import EvalConfig
from harmonylib.evaluation import ground_truth

GOLDEN_DIR = Path(__file__).parent / "golden"
# golden file -> (background, mask_mode)
GOLDEN = {
    "golden_metrics.csv": ("gt", "dither"),
    "golden_metrics_bg-composite.csv": ("composite", "dither"),
    "golden_metrics_bg-none.csv": ("none", "dither"),
    "golden_metrics_mask-threshold.csv": ("gt", "threshold"),
}
VALUE_COLUMNS = ["fg_ratio", "mse", "psnr", "fmse", "bmse"]


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"golden_{name}", GOLDEN_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_fixture = _load("make_fixture")
reference_eval = _load("reference_eval")


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
            FakeSample(
                r["name"],
                r["subset"],
                fixture_dir / r["composite"],
                fixture_dir / r["mask"],
                fixture_dir / r["real"],
            )
            for r in csv.DictReader(fh)
        ]


def assert_frames_close(got: pd.DataFrame, want: pd.DataFrame, rel: float = 1e-6) -> None:
    """Same images in the same order; values within ``rel``; NaN == NaN and inf == inf."""
    assert list(got["image"]) == list(want["image"])
    assert list(got["subset"]) == list(want["subset"])
    for col in VALUE_COLUMNS:
        g, w = got[col].to_numpy(np.float64), want[col].to_numpy(np.float64)
        assert np.array_equal(np.isnan(g), np.isnan(w)), col
        assert np.array_equal(np.isposinf(g), np.isposinf(w)), col
        ok = np.isfinite(w)
        np.testing.assert_allclose(g[ok], w[ok], rtol=rel, atol=0, err_msg=col)


# ---------------------------------------------------------------------------- golden


def test_golden_fixture_covers_the_edge_cases():
    df = pd.read_csv(GOLDEN_DIR / "golden_metrics.csv")
    assert len(df) == len(make_fixture.CASES)
    assert np.isinf(df["psnr"]).any()  # identical prediction (and empty masks under gt paste)
    assert df["fmse"].isna().any() and df["bmse"].isna().any()
    assert (df["fg_ratio"] == 1.0).any() and (df["fg_ratio"] == 0.0).any()
    assert set(E.fg_bin_index(df["fg_ratio"])) == {0, 1, 2}


@pytest.mark.parametrize("golden", list(GOLDEN))
def test_evaluator_reproduces_golden_csv(samples, fixture_dir, golden):
    background, mask_mode = GOLDEN[golden]
    cfg = EvalConfig(background=background, mask_mode=mask_mode)
    got = E.evaluate_predictions(samples, fixture_dir / "predictions", cfg, progress=False)
    assert list(got.columns) == list(E.COLUMNS)
    assert not got["missing"].any()
    assert_frames_close(got, pd.read_csv(GOLDEN_DIR / golden))


@pytest.mark.parametrize("golden", ["golden_metrics.csv", "golden_metrics_mask-threshold.csv"])
def test_reference_loop_reproduces_golden_csv(fixture_dir, golden):
    # Guards the fixture: a change in the generator (or in PIL's decoding) shows up here first.
    background, mask_mode = GOLDEN[golden]
    got = pd.DataFrame(reference_eval.evaluate_fixture(fixture_dir, background, mask_mode))
    assert_frames_close(got, pd.read_csv(GOLDEN_DIR / golden))


def test_results_do_not_depend_on_thread_count_or_order(samples, fixture_dir):
    preds = fixture_dir / "predictions"
    one = E.evaluate_predictions(samples, preds, progress=False, workers=1)
    many = E.evaluate_predictions(samples, preds, progress=False, workers=3)
    pd.testing.assert_frame_equal(one, many)
    shuffled = [samples[i] for i in np.random.default_rng(0).permutation(len(samples))]
    again = E.evaluate_predictions(shuffled, preds, progress=False, workers=2)
    pd.testing.assert_frame_equal(again.set_index("image").loc[one["image"]].reset_index(), one)


def test_background_switch_changes_only_what_it_should(samples, fixture_dir):
    preds = fixture_dir / "predictions"
    gt = E.evaluate_predictions(samples, preds, EvalConfig(background="gt"), progress=False)
    raw = E.evaluate_predictions(samples, preds, EvalConfig(background="none"), progress=False)
    # The foreground is scored the same; pasting the GT background zeroes the background error.
    assert_frames_close(
        gt[["image", "subset", "fmse"]].assign(fg_ratio=0, mse=0, psnr=0, bmse=0),
        raw[["image", "subset", "fmse"]].assign(fg_ratio=0, mse=0, psnr=0, bmse=0),
    )
    has_bg = gt["fg_ratio"] < 1
    assert (gt.loc[has_bg, "bmse"] == 0).all()
    assert (raw.loc[has_bg, "bmse"] > 0).any()
    assert (gt["mse"] <= raw["mse"] + 1e-12).all()


# ---------------------------------------------------------------------------- cache


def test_ground_truth_cache_persists_and_is_reused(samples, fixture_dir, tmp_path, monkeypatch):
    cache = E.GroundTruthCache(tmp_path / "cache", workers=2)
    first = E.evaluate_predictions(samples, fixture_dir / "predictions", cache=cache, progress=False)
    files = list((tmp_path / "cache").glob("gt-*.npz"))
    assert len(files) == 1

    # A new cache object (a new process) reads the .npz: ground truth is never decoded again.
    def no_decoding(*a, **k):
        raise AssertionError("ground truth decoded although cached")

    monkeypatch.setattr(ground_truth, "load_mask_l", no_decoding)  # where the cache decodes masks
    fresh = E.GroundTruthCache(tmp_path / "cache")
    second = E.evaluate_predictions(samples, fixture_dir / "predictions", cache=fresh, progress=False)
    pd.testing.assert_frame_equal(first, second)
    # Warm in memory too.
    third = E.evaluate_predictions(samples, fixture_dir / "predictions", cache=fresh, progress=False)
    pd.testing.assert_frame_equal(first, third)


def test_cache_adds_composites_when_needed_and_key_tracks_content(samples, fixture_dir, tmp_path):
    cache = E.GroundTruthCache(tmp_path / "cache")
    gt = cache.get(samples)
    assert gt.composite_bg_sum is None
    gt2 = cache.get(samples, with_composite=True)
    assert gt2.composite_bg_sum is not None and gt2.composite_bg_sum.shape == (len(samples),)
    assert (gt2.composite_bg_sum > 0).any()
    # Persisted with it: a fresh cache needs no composite decoding.
    again = E.GroundTruthCache(tmp_path / "cache").get(samples, with_composite=True)
    np.testing.assert_array_equal(again.composite_bg_sum, gt2.composite_bg_sum)
    # Another mask mode, or another list, is another entry.
    assert E.ground_truth_key(samples, 256, "dither") != E.ground_truth_key(samples, 256, "threshold")
    assert E.ground_truth_key(samples, 256, "dither") != E.ground_truth_key(samples[:-1], 256, "dither")


def test_cache_key_changes_when_a_file_changes(samples, tmp_path):
    copy = tmp_path / "copy"
    s = samples[0]
    copy.mkdir()
    paths = {k: copy / f"{k}_{Path(getattr(s, k)).name}" for k in ("composite", "mask", "real")}
    for k, p in paths.items():
        shutil.copy(getattr(s, k), p)
    sample = FakeSample(s.name, s.subset, **paths)
    before = E.ground_truth_key([sample], 256, "dither")
    paths["real"].write_bytes(paths["real"].read_bytes() + b"\0")  # size changes
    assert E.ground_truth_key([sample], 256, "dither") != before


# ---------------------------------------------------------------------------- predictions


def test_prediction_lookup_order(tmp_path):
    comp = tmp_path / "data" / "HCOCO" / "composite_images" / "c1_2_3.jpg"
    s = FakeSample("c1_2_3", "HCOCO", comp, comp, comp)
    preds = tmp_path / "preds"
    (preds / "HCOCO").mkdir(parents=True)
    assert E.find_predictions([s], preds) == [None]
    for p in (
        preds / "HCOCO" / "c1_2_3.jpg",
        preds / "HCOCO" / "c1_2_3.png",
        preds / "c1_2_3.jpg",
        preds / "c1_2_3.png",
    ):
        p.touch()
        assert E.find_predictions([s], preds) == [p]  # each newly added file has priority
    with pytest.raises(FileNotFoundError, match="does not exist"):
        E.find_predictions([s], tmp_path / "nope")


def test_missing_predictions_are_an_error_listing_them(samples, fixture_dir, tmp_path):
    preds = tmp_path / "preds"
    shutil.copytree(fixture_dir / "predictions", preds)
    gone = ["a0001_1_1", "d21901-20130410-181833_1_9"]
    for name in gone:
        (preds / f"{name}.png").unlink()
    with pytest.raises(E.MissingPredictionsError) as info:
        E.evaluate_predictions(samples, preds, progress=False)
    msg = str(info.value)
    assert f"2 of {len(samples)} predictions missing" in msg
    assert all(name in msg for name in gone)
    assert info.value.missing == ["a0001_1_1.jpg", "d21901-20130410-181833_1_9.jpg"]

    df = E.evaluate_predictions(samples, preds, EvalConfig(allow_missing=True), progress=False)
    assert df["missing"].sum() == 2 and set(df.loc[df["missing"], "image"]) == set(gone)
    assert df.loc[df["missing"], "mse"].isna().all()
    full = pd.read_csv(GOLDEN_DIR / "golden_metrics.csv")
    assert_frames_close(
        df[~df["missing"]].reset_index(drop=True), full[~full["image"].isin(gone)].reset_index(drop=True)
    )
    agg = E.aggregate(df).set_index("subset")
    assert agg.loc["All", "n_missing"] == 2 and agg.loc["All", "n"] == len(samples) - 2
    assert agg.loc["HAdobe5k", "n_missing"] == 1 and agg.loc["HAdobe5k", "n"] == 2


def test_missing_list_is_capped(tmp_path):
    (tmp_path / "preds").mkdir()
    fakes = [
        FakeSample(f"c{i}_1_1", "HCOCO", tmp_path / f"c{i}_1_1.jpg", tmp_path, tmp_path) for i in range(45)
    ]
    with pytest.raises(E.MissingPredictionsError, match=r"45 of 45 predictions missing") as info:
        E.evaluate_predictions(fakes, tmp_path / "preds", progress=False)
    assert "... and 25 more" in str(info.value)
    assert "c19_1_1.jpg" in str(info.value) and "c20_1_1.jpg" not in str(info.value)


# ---------------------------------------------------------------------------- aggregation


def _frame(rows):
    df = pd.DataFrame(rows, columns=["image", "subset", "fg_ratio", "mse", "psnr", "fmse", "bmse"])
    df["missing"] = False
    return df


def test_overall_is_the_mean_over_images_not_of_subset_means():
    df = _frame(
        [
            ("a1", "HAdobe5k", 0.2, 10.0, 30.0, 50.0, 1.0),
            ("c1", "HCOCO", 0.2, 20.0, 30.0, 50.0, 1.0),
            ("c2", "HCOCO", 0.2, 20.0, 30.0, 50.0, 1.0),
            ("c3", "HCOCO", 0.2, 20.0, 30.0, 50.0, 1.0),
        ]
    )
    agg = E.aggregate(df).set_index("subset")
    assert list(agg.index) == ["HCOCO", "HAdobe5k", "All"]  # paper order, then All
    assert agg.loc["All", "mse"] == pytest.approx(17.5)  # (10 + 3·20) / 4
    assert agg.loc["All", "mse"] != pytest.approx((10.0 + 20.0) / 2)  # not the mean of subset means
    assert agg.loc["HCOCO", "n"] == 3 and agg.loc["All", "n"] == 4


def test_nan_fmse_and_infinite_psnr_are_counted_not_averaged():
    df = _frame(
        [
            ("c1", "HCOCO", 0.0, 0.0, math.inf, math.nan, 0.0),  # empty mask, identical
            ("c2", "HCOCO", 0.3, 4.0, 40.0, 10.0, 2.0),
            ("c3", "HCOCO", 1.0, 6.0, 30.0, 6.0, math.nan),  # full mask
        ]
    )
    row = E.aggregate(df).set_index("subset").loc["All"]
    assert row["fmse"] == pytest.approx(8.0) and row["n_fmse_nan"] == 1
    assert row["bmse"] == pytest.approx(1.0) and row["n_bmse_nan"] == 1
    assert row["psnr"] == pytest.approx(35.0) and row["n_psnr_inf"] == 1  # finite values only
    assert row["mse"] == pytest.approx(10.0 / 3)  # MSE includes the identical image
    assert row["n"] == 3


def test_fg_bins_put_ratio_one_in_the_last_bin():
    assert list(E.fg_bin_index([0.0, 0.049, 0.05, 0.1499, 0.15, 0.9, 1.0])) == [0, 0, 1, 1, 2, 2, 2]
    df = _frame(
        [
            ("c1", "HCOCO", 1.0, 1.0, 40.0, 1.0, math.nan),
            ("c2", "HCOCO", 0.01, 3.0, 30.0, 3.0, 1.0),
            ("a1", "HAdobe5k", 0.10, 5.0, 35.0, 5.0, 1.0),
        ]
    )
    bins = E.aggregate_by_fg_bins(df).set_index(["subset", "fg_bin"])
    assert len(bins) == 3 * len(E.FG_BIN_LABELS)  # HCOCO, HAdobe5k, All × 3 bins, empty ones kept
    assert bins.loc[("HCOCO", "15-100%"), "n"] == 1
    assert bins.loc[("HCOCO", "0-5%"), "n"] == 1
    assert bins.loc[("All", "5-15%"), "mse"] == 5.0
    assert bins.loc[("HAdobe5k", "0-5%"), "n"] == 0 and math.isnan(bins.loc[("HAdobe5k", "0-5%"), "mse"])
    assert bins.xs("All")["n"].sum() == len(df)


def test_empty_input_gives_empty_frames(tmp_path):
    df = E.evaluate_predictions([], tmp_path, progress=False)
    assert list(df.columns) == list(E.COLUMNS) and len(df) == 0
    agg = E.aggregate(df)
    assert agg["n"].tolist() == [0] and math.isnan(agg["mse"].iloc[0])


# ---------------------------------------------------------------------------- CLI


def _run_cli(argv):
    from harmonylib.cli import main

    return main(["evaluate", *argv])


def test_cli_with_the_real_reader(fixture_dir, tmp_path, capsys):
    out = tmp_path / "res" / "ours.csv"
    rc = _run_cli(
        [
            "--data-root",
            str(fixture_dir / "data"),
            "--predictions",
            str(fixture_dir / "predictions"),
            "--out",
            str(out),
            "--no-progress",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "All" in printed and "15-100%" in printed and "background=gt" in printed
    got = pd.read_csv(out)
    want = pd.read_csv(GOLDEN_DIR / "golden_metrics.csv")
    # The reader orders samples by its list; compare by image.
    assert_frames_close(got.set_index("image").loc[want["image"]].reset_index(), want)
    assert (out.parent / "ours.provenance.json").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # atomic: no temp left


def test_cli_switches_and_missing_error(fixture_dir, samples, tmp_path, monkeypatch, capsys):
    # A stand-in reader, so the CLI's own behaviour is tested whatever the data module does.
    fake = types.ModuleType("harmonylib.data.iharmony4")
    fake.read_split = lambda roots, split, subsets=None, **k: list(samples)
    fake.DataIntegrityError = type("DataIntegrityError", (ValueError,), {})
    monkeypatch.setitem(sys.modules, "harmonylib.data.iharmony4", fake)
    parser = argparse.ArgumentParser()
    E.add_parser(parser.add_subparsers())

    def _run_cli(argv):
        args = parser.parse_args(["evaluate", *argv])
        return args.func(args)

    out = tmp_path / "raw.csv"
    rc = _run_cli(
        [
            "--data-root",
            "unused",
            "--predictions",
            str(fixture_dir / "predictions"),
            "--out",
            str(out),
            "--background",
            "none",
            "--no-progress",
        ]
    )
    assert rc == 0 and "background=none" in capsys.readouterr().out
    assert_frames_close(pd.read_csv(out), pd.read_csv(GOLDEN_DIR / "golden_metrics_bg-none.csv"))

    preds = tmp_path / "preds"
    shutil.copytree(fixture_dir / "predictions", preds)
    (preds / "a0001_1_1.png").unlink()
    out2 = tmp_path / "missing.csv"
    argv = ["--data-root", "unused", "--predictions", str(preds), "--out", str(out2), "--no-progress"]
    assert _run_cli(argv) == 1
    assert "a0001_1_1.jpg" in capsys.readouterr().err and not out2.exists()
    assert _run_cli([*argv, "--allow-missing"]) == 0
    assert pd.read_csv(out2)["missing"].sum() == 1


def test_per_sample_prediction_paths_equal_a_folder(tmp_path, smoke_data_root):
    """Table 1's Composite row passes the composites as per-sample paths; same numbers as a folder."""
    import shutil

    from harmonylib.data.iharmony4 import read_split

    samples = read_split(smoke_data_root, "test")
    folder = tmp_path / "preds"
    folder.mkdir()
    for s in samples:
        shutil.copy(s.composite, folder / s.composite.name)
    by_paths = E.evaluate_predictions(samples, [s.composite for s in samples], progress=False)
    by_folder = E.evaluate_predictions(samples, folder, progress=False)
    pd.testing.assert_frame_equal(by_paths, by_folder)
    with pytest.raises(ValueError, match="prediction paths for"):
        E.evaluate_predictions(samples, [samples[0].composite], progress=False)

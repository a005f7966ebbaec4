"""The built-in dataset: determinism, held-out photos, fg-ratio mix, sizes, names; and recolouring."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonylib.config import SUBSETS, DataConfig, load_config
from harmonylib.data import recolor as rc
from harmonylib.data.builtin import (
    BUILD_FILE,
    FG_MIX_COUNTS,
    PHOTOS,
    BuiltinDataError,
    build_builtin,
    ensure_builtin,
    ensure_dataset,
    fg_bin,
    fg_ratio_256,
    read_build_info,
    subset_sizes,
)
from harmonylib.data.iharmony4 import read_split

SMOKE = load_config("smoke").data.builtin
NAME_RE = {
    "HCOCO": r"c\d+_\d+_\d+",
    "HAdobe5k": r"a\d{4}_\d+_\d+",
    "HFlickr": r"f\d+_\d+_\d+",
    "Hday2night": r"d\d+-\d{8}-\d{6}_\d+_\d+",
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != BUILD_FILE
    }


def _stable_info(root: Path) -> dict:
    info = read_build_info(root)
    return {k: v for k, v in info.items() if k not in ("build_time", "build_seconds")}


def test_same_seed_same_bytes_other_seed_differs(smoke_data_root, tmp_path):
    again = tmp_path / "again"
    build_builtin(SMOKE, again)
    ref = _files(smoke_data_root)
    assert len(ref) > 100
    assert _files(again) == ref
    assert _stable_info(again) == _stable_info(smoke_data_root)
    other = tmp_path / "other"
    build_builtin(dataclasses.replace(SMOKE, seed=1), other)
    got = _files(other)
    images = [k for k in ref if k.endswith((".jpg", ".png"))]
    assert sum(got.get(k) == ref[k] for k in images) < len(images) / 2


def test_counts_minimums_and_ordering(smoke_data_root):
    info = read_build_info(smoke_data_root)
    for split, n, mn in (
        ("train", SMOKE.n_train, SMOKE.min_train_per_subset),
        ("test", SMOKE.n_test, SMOKE.min_test_per_subset),
    ):
        samples = read_split(smoke_data_root, split)
        assert len(samples) == n == info["counts"][split]["total"]
        counts = [sum(s.subset == sub for s in samples) for sub in SUBSETS]
        assert counts == [info["counts"][split][s] for s in SUBSETS]
        assert all(c >= mn for c in counts)
        assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4


@pytest.mark.parametrize("n, mn", [(2400, 120), (400, 40), (48, 2), (24, 2), (65742, 311)])
def test_subset_sizes(n, mn):
    sizes = subset_sizes(n, mn, "train")
    assert sum(sizes.values()) == n and min(sizes.values()) >= mn
    v = [sizes[s] for s in SUBSETS]
    assert all(a > b for a, b in zip(v, v[1:], strict=False))


def test_subset_sizes_too_small():
    with pytest.raises(ValueError, match="too few|cannot"):
        subset_sizes(9, 2, "test")


def test_names_parse_and_all_list_styles_agree(smoke_data_root):
    for split in ("train", "test"):
        ihd = read_split(smoke_data_root, split, style="ihd")
        for style in ("jsonl", "subset"):
            assert sorted(s.composite for s in read_split(smoke_data_root, split, style=style)) == sorted(
                s.composite for s in ihd
            )
        for s in ihd:
            assert re.fullmatch(NAME_RE[s.subset], s.name), s.name
    # train and test never share a real or mask id
    train = {s.real_id for s in read_split(smoke_data_root, "train", check=False)}
    test = {s.real_id for s in read_split(smoke_data_root, "test", check=False)}
    assert not train & test


def test_held_out_photos(smoke_data_root):
    info = read_build_info(smoke_data_root)
    train, test = set(info["photos"]["train"]), set(info["photos"]["test"])
    assert train and test and not train & test
    assert test == {p.name for p in PHOTOS if p.split == "test"}
    assert {"motorcycle_left", "motorcycle_right"} <= train  # one scene, one split


def test_fg_ratio_mix_matches_iharmony4_test(smoke_data_root):
    fracs = np.array(FG_MIX_COUNTS) / sum(FG_MIX_COUNTS)
    info = read_build_info(smoke_data_root)
    for split in ("train", "test"):
        samples = read_split(smoke_data_root, split)
        bins = [fg_bin(fg_ratio_256(np.asarray(Image.open(s.mask)) > 127)) for s in samples]
        counts = np.bincount(bins, minlength=3)
        assert np.all(np.abs(counts - len(samples) * fracs) < 1.0), counts  # within rounding
        assert list(counts) == [info["fg_ratio_counts"][split][lab] for lab in ("0-5%", "5-15%", "15-100%")]


def test_masks_binary_and_composites_as_iharmony4(smoke_data_root):
    samples = read_split(smoke_data_root, "test")
    outside, inside = [], []
    for s in samples:
        m = np.asarray(Image.open(s.mask))
        assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
        comp = np.asarray(Image.open(s.composite), dtype=np.float64)
        real = np.asarray(Image.open(s.real), dtype=np.float64)
        assert comp.shape[:2] == real.shape[:2] == m.shape
        assert min(m.shape) == SMOKE.image_size
        assert max(m.shape) in (SMOKE.image_size, round(SMOKE.image_size * 4 / 3))
        d = np.abs(comp - real).mean(-1)
        outside.append(d[m == 0].mean())
        inside.append(d[m == 255].mean())
    assert np.mean(outside) < 3.0  # JPEG noise only
    assert np.mean(inside) > 4 * np.mean(outside)


def test_composite_row_in_calibrated_band(smoke_data_root):
    """The composites scored as predictions land near the paper's Composite row (All).

    The generator's strength is calibrated on mini to the paper's Table 1 Composite row (All: PSNR
    34.35, fMSE 594.67; see harmonylib.data.builtin's docstring). Smoke's 24 test composites are
    too few to match closely, so the band is wide: fMSE within a factor of 2, PSNR within +-3 dB. The
    uncalibrated version-1 generator (fMSE about 2200, PSNR about 30.6 on mini) falls outside it.
    """
    from harmonylib.evaluation import aggregate, evaluate_predictions

    cfg = load_config("smoke")
    samples = read_split(smoke_data_root, "test")
    df = evaluate_predictions(samples, [s.composite for s in samples], cfg.eval, progress=False)
    row = aggregate(df).set_index("subset").loc["All"]
    assert row["n"] == SMOKE.n_test and row["n_psnr_inf"] == 0
    assert 594.67 / 2 < row["fmse"] < 594.67 * 2, row["fmse"]
    assert abs(row["psnr"] - 34.35) < 3.0, row["psnr"]


def test_shared_masks_and_reals(smoke_data_root):
    samples = read_split(smoke_data_root, "train")
    by_mask = {}
    for s in samples:
        by_mask.setdefault(s.mask, []).append(s.name)
    assert max(len(v) for v in by_mask.values()) > 1
    ks = sorted(int(n.rsplit("_", 1)[1]) for v in by_mask.values() for n in v)
    assert 1 <= ks[0] and ks[-1] <= SMOKE.max_composites_per_mask


def test_ensure_builtin_reuses_rebuilds_and_refuses(tmp_path):
    root = tmp_path / "smoke"
    dcfg = DataConfig(kind="builtin", root=str(root), builtin=SMOKE)
    assert ensure_builtin(dcfg) == root
    stamp = read_build_info(root)["build_time"]
    marker = root / "HCOCO" / "IHD_marker"
    marker.write_text("x")
    ensure_builtin(dcfg)  # current: untouched
    assert marker.exists() and read_build_info(root)["build_time"] == stamp
    ensure_builtin(dataclasses.replace(dcfg, builtin=dataclasses.replace(SMOKE, seed=3)))
    assert not marker.exists()
    assert read_build_info(root)["seed"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    foreign = tmp_path / "mine"
    (foreign / "HCOCO").mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(BuiltinDataError, match="not a built-in dataset"):
        ensure_builtin(dataclasses.replace(dcfg, root=str(foreign)))
    assert (foreign / "precious.txt").read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (ensure_builtin(dataclasses.replace(dcfg, root=str(empty))) / BUILD_FILE).is_file()


def test_ensure_dataset(tmp_path, iharmony4_root):
    cfg = load_config("paper", {"data.root": str(iharmony4_root)})
    assert ensure_dataset(cfg) == iharmony4_root
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ensure_dataset(load_config("paper", {"data.root": str(tmp_path / "nope")}))
    cfg = load_config("smoke", {"data.root": str(tmp_path / "s")})
    root = ensure_dataset(cfg)
    assert json.loads((root / BUILD_FILE).read_text())["config"]["n_train"] == 48


def test_cli_build_data(tmp_path, capsys):
    from harmonylib.cli import main

    assert main(["build-data", "--profile", "smoke", "--root", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "HCOCO" in out and "fg-ratio mix" in out and "chelsea" in out


# ----------------------------------------------------------------------------- recolouring


def _img(seed=0, shape=(12, 16, 3)):
    return np.random.default_rng(seed).uniform(0.1, 0.9, shape)


def _mask(shape=(12, 16)):
    m = np.zeros(shape, bool)
    m[3:9, 4:12] = True
    return m


@pytest.mark.parametrize("method", rc.RECOLOR_METHODS)
def test_recolor_changes_only_the_region(method):
    img, m = _img(), _mask()
    out = rc.recolor(img, m, method, np.random.default_rng(0), reference=_img(1, (10, 10, 3)) ** 2)
    assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out[~m], img[~m])
    assert np.abs(out[m] - img[m]).mean() > 0.01
    again = rc.recolor(img, m, method, np.random.default_rng(0), reference=_img(1, (10, 10, 3)) ** 2)
    np.testing.assert_array_equal(out, again)


def test_blend_toward_hits_the_target_and_never_overshoots():
    img, m = _img(), _mask()
    full = rc.adjust_exposure(img, m, 1.5)
    full_fmse = np.mean((255 * (full - img)[m]) ** 2)
    out, alpha = rc.blend_toward(img, full, m, full_fmse / 4)
    assert alpha == pytest.approx(0.5)
    np.testing.assert_array_equal(out[~m], img[~m])
    assert np.mean((255 * (out - img)[m]) ** 2) == pytest.approx(full_fmse / 4)
    out, alpha = rc.blend_toward(img, full, m, full_fmse * 4)  # weaker than the target: kept whole
    assert alpha == 1.0
    np.testing.assert_array_equal(out, full)


def test_recolor_errors():
    with pytest.raises(ValueError, match="allowed.*reinhard"):
        rc.recolor(_img(), _mask(), "sepia", np.random.default_rng(0))
    with pytest.raises(ValueError, match="reference"):
        rc.recolor(_img(), _mask(), "reinhard", np.random.default_rng(0))


def test_reinhard_transfers_lab_statistics():
    from skimage import color

    m = _mask()
    src = 0.5 + 0.2 * (_img(0) - 0.5)  # in gamut before and after, so no clipping
    ref = np.array([0.6, 0.4, 0.3]) + 0.1 * (_img(2, (20, 20, 3)) - 0.5)
    out = rc.reinhard_transfer(src, m, ref, None)
    got, want = color.rgb2lab(out)[m], color.rgb2lab(ref).reshape(-1, 3)
    np.testing.assert_allclose(got.mean(0), want.mean(0), atol=1.0)
    np.testing.assert_allclose(got.std(0), want.std(0), rtol=0.1, atol=0.5)


def test_histogram_match_matches_quantiles():
    src, m = _img(0), _mask()
    ref = _img(3, (30, 30, 3)) ** 3
    out = rc.histogram_match(src, m, ref, None)
    for c in range(3):
        np.testing.assert_allclose(np.median(out[m][:, c]), np.median(ref[..., c]), atol=0.05)

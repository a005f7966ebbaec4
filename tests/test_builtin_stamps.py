"""Stamp foregrounds in the built-in train split (data.builtin.stamps): val and test never move."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harmonylib.config import load_config
from harmonylib.data.builtin import COMPOSITES_FILE, build_builtin, fg_bin
from harmonylib.data.builtin.stamps import paste_stamp
from harmonylib.reproducibility import numpy_rng

SMOKE = load_config("smoke").data.builtin


def _bytes(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern)) if p.is_file()}


@pytest.mark.parametrize("b", [0, 1, 2])
def test_paste_stamp_lands_in_the_bin_and_keeps_the_rest(b):
    rng = np.random.default_rng(0)
    real = rng.uniform(0, 1, size=(64, 85, 3))
    got = paste_stamp(real, b, numpy_rng(0, "test-stamp", b))
    assert got is not None
    pasted, mask, method, ratio = got
    assert method.startswith("stamp:") and fg_bin(ratio) == b
    assert pasted.shape == real.shape and mask.shape == real.shape[:2] and mask.dtype == bool
    assert 0.0 <= pasted.min() and pasted.max() <= 1.0
    # the stamp changes its own pixels (and a soft edge), never pixels far from it
    ys, xs = np.nonzero(mask)
    far = np.ones(mask.shape, dtype=bool)
    far[max(ys.min() - 2, 0) : ys.max() + 3, max(xs.min() - 2, 0) : xs.max() + 3] = False
    np.testing.assert_array_equal(pasted[far], real[far])
    assert np.abs(pasted[mask] - real[mask]).mean() > 0.05
    # the same stream gives the same paste
    again = paste_stamp(real, b, numpy_rng(0, "test-stamp", b))
    np.testing.assert_array_equal(again[0], pasted)


def test_stamp_foregrounds_change_train_only(smoke_data_root, tmp_path):
    root = tmp_path / "stamped"
    build_builtin(dataclasses.replace(SMOKE, stamp_foregrounds=1.0), root)
    # the lists and the test split are byte for byte the smoke build's
    assert _bytes(root, "*.txt") == _bytes(smoke_data_root, "*.txt")
    rows = pd.read_csv(root / COMPOSITES_FILE)
    ref = pd.read_csv(smoke_data_root / COMPOSITES_FILE)
    pd.testing.assert_frame_equal(
        rows[rows.split != "train"].reset_index(drop=True), ref[ref.split != "train"].reset_index(drop=True)
    )
    for r in rows[rows.split != "train"].itertuples():
        comp = f"{r.subset}/composite_images/{r.name}.jpg"
        assert (root / comp).read_bytes() == (smoke_data_root / comp).read_bytes()
    # train: every one-mask real holds a stamp (p = 1), each in its planned bin
    train = rows[rows.split == "train"]
    stamped = train[train.mask_method.str.startswith("stamp:")]
    assert len(stamped) > len(train) / 4
    assert (stamped.fg_ratio.map(fg_bin) == stamped.bin).all()
    # a stamped composite differs from its real inside the mask only
    r = stamped.iloc[0]
    stem = r["name"].rsplit("_", 1)[0]
    real_id = stem.rsplit("_", 1)[0]
    comp = np.asarray(Image.open(root / r.subset / "composite_images" / f"{r['name']}.jpg"), dtype=float)
    real = np.asarray(Image.open(root / r.subset / "real_images" / f"{real_id}.jpg"), dtype=float)
    mask = np.asarray(Image.open(root / r.subset / "masks" / f"{stem}.png")) > 127
    assert np.abs(comp - real)[~mask].mean() < 3.0 < np.abs(comp - real)[mask].mean()


def test_stamp_foregrounds_zero_keeps_every_byte(smoke_data_root, tmp_path):
    root = tmp_path / "zero"
    build_builtin(dataclasses.replace(SMOKE, stamp_foregrounds=0.0), root)
    assert _bytes(root, "*.jpg") == _bytes(smoke_data_root, "*.jpg")
    assert _bytes(root, "*.png") == _bytes(smoke_data_root, "*.png")


def test_stamp_foregrounds_out_of_range_is_refused(tmp_path):
    with pytest.raises(ValueError, match="stamp_foregrounds must lie in"):
        build_builtin(dataclasses.replace(SMOKE, stamp_foregrounds=1.5), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()

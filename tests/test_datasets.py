"""Torch datasets: ranges, shapes, the three resize modes, mask binarisation, cache equivalence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from harmonylib.data.datasets import (
    HarmonyDataset,
    PreResizedCache,
    load_resized,
)
from harmonylib.data.iharmony4 import read_split
from harmonylib.imageproc import target_geometry, threshold_mask


@pytest.fixture(scope="module")
def smoke_test_samples(smoke_data_root):
    return read_split(smoke_data_root, "test")


def test_threshold_mask_is_the_model_input_rule():
    u8 = np.array([0, 127, 128, 255], np.uint8)
    np.testing.assert_array_equal(threshold_mask(u8), [0, 0, 1, 1])
    np.testing.assert_array_equal(threshold_mask(u8 / 255.0), [0, 0, 1, 1])
    np.testing.assert_array_equal(threshold_mask(np.array([0.499, 0.5])), [0, 1])
    t = threshold_mask(torch.tensor([0.2, 0.7]))
    assert t.dtype == torch.float32 and t.tolist() == [0, 1]
    assert threshold_mask(torch.tensor([127, 128], dtype=torch.uint8)).tolist() == [0, 1]
    assert threshold_mask(Image.fromarray(u8[None], "L")).tolist() == [[0, 0, 1, 1]]


@pytest.mark.parametrize(
    "w, h, size, mode, want",
    [
        (85, 64, 64, "square", ((64, 64), None)),
        (85, 64, 64, "center_crop", ((85, 64), (10, 0, 74, 64))),
        (64, 85, 32, "center_crop", ((32, 42), (0, 5, 32, 37))),
        (85, 64, 64, "keep_aspect", ((88, 64), None)),
        (600, 400, 100, "keep_aspect", ((152, 96), None)),
    ],
)
def test_target_geometry(w, h, size, mode, want):
    assert target_geometry(w, h, size, mode) == want


@pytest.mark.parametrize("mode", ["square", "center_crop", "keep_aspect"])
def test_items_shapes_and_ranges(smoke_test_samples, mode):
    ds = HarmonyDataset(smoke_test_samples, 32, resize=mode)
    assert len(ds) == len(smoke_test_samples)
    for i in range(len(ds)):
        item = ds[i]
        c, r, m = item["composite"], item["real"], item["mask"]
        assert c.dtype == r.dtype == m.dtype == torch.float32
        assert c.shape[0] == r.shape[0] == 3 and m.shape[0] == 1
        assert c.shape[1:] == r.shape[1:] == m.shape[1:]
        if mode == "keep_aspect":
            assert c.shape[1] % 8 == 0 and c.shape[2] % 8 == 0 and min(c.shape[1:]) == 32
        else:
            assert tuple(c.shape[1:]) == (32, 32)
        assert -1 <= c.min() and c.max() <= 1 and -1 <= r.min() and r.max() <= 1
        assert set(m.unique().tolist()) <= {0.0, 1.0} and m.sum() > 0
        assert item["name"] == smoke_test_samples[i].name and item["index"] == i
        assert item["subset"] == smoke_test_samples[i].subset


def test_square_values_match_pil(smoke_test_samples):
    s = smoke_test_samples[0]
    item = HarmonyDataset([s], 48)[0]
    want = np.asarray(Image.open(s.real).convert("RGB").resize((48, 48), Image.BILINEAR), np.float32)
    np.testing.assert_allclose(item["real"].permute(1, 2, 0).numpy(), want / 127.5 - 1, atol=1e-6)
    mask = np.asarray(Image.open(s.mask).resize((48, 48), Image.BILINEAR)) > 127
    np.testing.assert_array_equal(item["mask"][0].numpy(), mask.astype(np.float32))


def test_center_crop_is_a_crop_of_the_shorter_side_resize(smoke_test_samples):
    s = next(x for x in smoke_test_samples if Image.open(x.real).width != Image.open(x.real).height)
    comp, real, mask = load_resized(s, 32, "center_crop")
    img = Image.open(s.real).convert("RGB")
    (rw, rh), box = target_geometry(img.width, img.height, 32, "center_crop")
    np.testing.assert_array_equal(real, np.asarray(img.resize((rw, rh), Image.BILINEAR).crop(box)))
    assert comp.shape == (32, 32, 3) and mask.shape == (32, 32)


def test_cache_gives_identical_items(smoke_test_samples):
    for mode in ("square", "keep_aspect"):
        plain = HarmonyDataset(smoke_test_samples, 40, resize=mode)
        cached = HarmonyDataset(smoke_test_samples, 40, resize=mode, cache=True).preload()
        assert cached.cache.nbytes > 0
        for i in (0, 5, len(plain) - 1):
            a, b = plain[i], cached[i]
            for k in ("composite", "real", "mask"):
                assert torch.equal(a[k], b[k])
            assert a["name"] == b["name"]
    shared = PreResizedCache(smoke_test_samples, 40, "square")
    ds = HarmonyDataset(smoke_test_samples, 40, cache=shared)
    assert torch.equal(ds[3]["real"], plain_square_real(smoke_test_samples, 3))
    with pytest.raises(ValueError, match="cache"):
        HarmonyDataset(smoke_test_samples, 32, cache=shared)


def plain_square_real(samples, i):
    return HarmonyDataset(samples, 40)[i]["real"]


def test_dataloader_batches(smoke_test_samples):
    ds = HarmonyDataset(smoke_test_samples, 32, cache=True)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["composite"].shape == (4, 3, 32, 32) and batch["mask"].shape == (4, 1, 32, 32)
    assert list(batch["index"]) == [0, 1, 2, 3]


def test_bad_arguments(smoke_test_samples):
    with pytest.raises(ValueError, match="allowed"):
        HarmonyDataset(smoke_test_samples, 32, resize="stretch")
    with pytest.raises(ValueError, match="at least 8"):
        HarmonyDataset(smoke_test_samples, 4)


def test_size_mismatch_is_reported(tmp_path, iharmony4_factory):
    root = iharmony4_factory(tmp_path / "r")
    s = read_split(root, "test")[0]
    Image.new("L", (5, 5)).save(s.mask)
    with pytest.raises(ValueError, match="sizes differ"):
        HarmonyDataset([s], 16)[0]

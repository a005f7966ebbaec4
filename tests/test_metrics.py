"""Per-image metrics and the protocol steps, against scikit-image and at their limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

from harmonylib import metrics as M


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _pair(seed: int = 0, shape=(32, 24, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)


# ---------------------------------------------------------------------------- limits


def test_mse_of_identical_images_is_zero_and_psnr_infinite():
    a, _ = _pair()
    assert M.mse(a, a) == 0.0
    assert M.psnr(a, a) == math.inf
    assert M.psnr_from_mse(0.0) == math.inf


def test_fmse_empty_mask_is_nan_and_bmse_full_mask_is_nan():
    a, b = _pair()
    empty = np.zeros(a.shape[:2])
    full = np.ones(a.shape[:2])
    assert math.isnan(M.fmse(a, b, empty))
    assert math.isnan(M.bmse(a, b, full))
    # The other side is then the whole-image MSE.
    assert M.bmse(a, b, empty) == pytest.approx(M.mse(a, b), rel=1e-12)
    assert M.fmse(a, b, full) == pytest.approx(M.mse(a, b), rel=1e-12)


def test_fg_ratio():
    m = np.zeros((10, 10))
    m[:5, :2] = 1
    assert M.fg_ratio(m) == 0.1
    assert M.fg_ratio(m[..., None]) == 0.1


def test_shape_mismatch_is_an_error():
    a, b = _pair()
    with pytest.raises(ValueError, match="shape"):
        M.mse(a, b[:-1])
    with pytest.raises(ValueError, match="mask shape"):
        M.fmse(a, b, np.ones((3, 3)))


# ---------------------------------------------------------------------------- vs scikit-image


@pytest.mark.parametrize("seed", range(4))
def test_mse_and_psnr_match_skimage(seed):
    a, b = _pair(seed)
    # skimage's signature is (image_true, image_test); the authors call it on float32 arrays.
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    assert M.mse(a, b) == pytest.approx(mean_squared_error(a32, b32), rel=1e-12)
    assert M.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b32, a32, data_range=255), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_fmse_bmse_match_the_authors_formula(seed):
    # Authors: fMSE = MSE(out·M, gt·M)·H·W/ΣM, bMSE the same with 1−M (official-implementation.md §7).
    a, b = _pair(seed)
    m = (_rng(seed + 100).random(a.shape[:2]) < 0.3).astype(np.float32)
    a32, b32, m3 = a.astype(np.float32), b.astype(np.float32), m[..., None]
    hw = m.size
    f = mean_squared_error(a32 * m3, b32 * m3) * hw / m.sum()
    bg = mean_squared_error(a32 * (1 - m3), b32 * (1 - m3)) * hw / (1 - m).sum()
    assert M.fmse(a, b, m) == pytest.approx(f, rel=1e-9)
    assert M.bmse(a, b, m) == pytest.approx(bg, rel=1e-9)


# ---------------------------------------------------------------------------- batch path


def test_batch_metrics_equal_per_image_functions_including_edge_masks():
    rng = _rng(7)
    n = 6
    pred = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    real = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    mask = rng.random((n, 16, 16)) < 0.4
    mask[1] = False  # empty
    mask[2] = True  # full
    pred[3] = real[3]  # identical
    got = M.batch_metrics(pred, real, mask)
    for i in range(n):
        assert got["mse"][i] == pytest.approx(M.mse(pred[i], real[i]), rel=1e-12, abs=0)
        assert got["psnr"][i] == pytest.approx(M.psnr(pred[i], real[i]), rel=1e-12)
        assert got["fg_ratio"][i] == M.fg_ratio(mask[i])
        for key, fn in (("fmse", M.fmse), ("bmse", M.bmse)):
            want = fn(pred[i], real[i], mask[i])
            if math.isnan(want):
                assert math.isnan(got[key][i])
            else:
                assert got[key][i] == pytest.approx(want, rel=1e-12)
    assert math.isnan(got["fmse"][1]) and math.isnan(got["bmse"][2])
    assert got["mse"][3] == 0.0 and got["psnr"][3] == math.inf


def test_batch_metrics_wants_uint8():
    a = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(TypeError, match="uint8"):
        M.batch_metrics(a, a, np.zeros((1, 4, 4), bool))


# ---------------------------------------------------------------------------- protocol steps


def test_resize_rgb_leaves_256_alone_and_resizes_bilinear_otherwise():
    a, _ = _pair(shape=(256, 256, 3))
    assert np.array_equal(M.resize_rgb(Image.fromarray(a)), a)
    b, _ = _pair(shape=(100, 300, 3))
    want = np.asarray(Image.fromarray(b).resize((256, 256), Image.Resampling.BILINEAR))
    assert np.array_equal(M.resize_rgb(Image.fromarray(b)), want)


def test_binary_mask_is_the_same_under_dither_and_threshold():
    m = np.zeros((300, 200), np.uint8)
    m[50:200, 40:150] = 255
    img = Image.fromarray(m, "L")
    d = M.evaluation_mask(img, 256, "dither")
    t = M.evaluation_mask(img, 256, "threshold")
    assert d.dtype == bool and d.shape == (256, 256)
    assert np.array_equal(d, t)


def test_grey_mask_is_dithered_not_thresholded():
    # A flat grey 100 mask: Floyd–Steinberg keeps about 100/255 of the pixels, ">127" none.
    img = Image.fromarray(np.full((256, 256), 100, np.uint8), "L")
    d = M.evaluation_mask(img, 256, "dither")
    assert d.mean() == pytest.approx(100 / 255, abs=0.01)
    assert not M.evaluation_mask(img, 256, "threshold").any()
    with pytest.raises(ValueError, match="mask mode"):
        M.evaluation_mask(img, 256, "soft")


def test_mask_is_binarised_before_the_nearest_resize():
    # The authors dither at the file's resolution, then resize NEAREST (PIL's rule for mode "1").
    rng = _rng(3)
    m = Image.fromarray(rng.integers(0, 256, (513, 411), dtype=np.uint8), "L")
    want = np.asarray(m.convert("1").resize((256, 256), Image.Resampling.NEAREST))
    assert np.array_equal(M.evaluation_mask(m, 256, "dither"), want)


def test_paste_background_and_prepare_switches():
    rng = _rng(5)
    pred = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    real = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    comp = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    mask_arr = np.zeros((256, 256), np.uint8)
    mask_arr[64:128, 32:200] = 255
    mask = Image.fromarray(mask_arr, "L")
    fg = mask_arr > 0

    p, r, m = M.prepare_protocol_arrays(pred, real, mask)  # default: gt background
    assert np.array_equal(m, fg)
    assert np.array_equal(p[fg], np.asarray(pred)[fg]) and np.array_equal(p[~fg], np.asarray(real)[~fg])
    assert M.bmse(p, r, m) == 0.0

    p, _, _ = M.prepare_protocol_arrays(pred, real, mask, comp, background="composite")
    assert np.array_equal(p[~fg], np.asarray(comp)[~fg]) and np.array_equal(p[fg], np.asarray(pred)[fg])

    p, _, _ = M.prepare_protocol_arrays(pred, real, mask, background="none")
    assert np.array_equal(p, np.asarray(pred))

    with pytest.raises(ValueError, match="composite_img"):
        M.prepare_protocol_arrays(pred, real, mask, background="composite")
    with pytest.raises(ValueError, match="background"):
        M.prepare_protocol_arrays(pred, real, mask, background="real")


@pytest.mark.parametrize("size", [(700, 500), (256, 256), (180, 260), (513, 411)])
def test_binary_mask_fast_path_equals_dithering(size):
    # A 0/255 mask is unchanged by Floyd–Steinberg, so evaluation_mask skips it; check it is equal.
    w, h = size
    rng = _rng(w)
    blocks = rng.random((h // 7 + 1, w // 7 + 1)) < 0.4
    m = np.kron(blocks, np.ones((7, 7), bool))[:h, :w]
    m[rng.random((h, w)) < 0.02] ^= True  # isolated pixels too
    img = Image.fromarray(m.astype(np.uint8) * 255, "L")
    want = np.asarray(img.convert("1").resize((256, 256), Image.Resampling.NEAREST))
    assert np.array_equal(M.evaluation_mask(img, 256, "dither"), want)
    thr = np.asarray(Image.fromarray(np.asarray(img) > 127).resize((256, 256), Image.Resampling.NEAREST))
    assert np.array_equal(M.evaluation_mask(img, 256, "threshold"), thr)


def test_squared_error_sums_are_exact_integers():
    rng = _rng(11)
    pred = rng.integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    real = rng.integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    mask = rng.random((3, 20, 30)) < 0.3
    pred[0, 0, 0], real[0, 0, 0] = 255, 0  # the largest error, 255², must not wrap
    fg, total = M.squared_error_sums(pred, real, mask)
    sq = (pred.astype(np.int64) - real) ** 2
    assert fg.dtype == np.int64 and total.dtype == np.int64
    np.testing.assert_array_equal(total, sq.sum(axis=(1, 2, 3)))
    np.testing.assert_array_equal(fg, (sq * mask[..., None]).sum(axis=(1, 2, 3)))
    one_fg, one_total = M.squared_error_sums(pred[1], real[1], mask[1])  # a single image
    assert one_fg == fg[1] and one_total == total[1]

"""Random multi-scale photo crops: deterministic, indexable, upsampled content, alpha handled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from harmonylib.data.photo_crops import PhotoCropDataset
from harmonylib.io import ImageReadError


def _photo(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8), mode)


@pytest.fixture
def photo_paths(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(160, 120), (90, 200), (40, 30)]):
        p = tmp_path / f"p{i}.png"
        _photo(w, h, i).save(p)
        paths.append(str(p))
    return paths


def test_crops_are_a_fixed_function_of_seed_and_index(photo_paths):
    a = PhotoCropDataset(photo_paths, 32, 50, seed=3)
    b = PhotoCropDataset(photo_paths, 32, 50, seed=3)
    c = PhotoCropDataset(photo_paths, 32, 50, seed=4)
    assert len(a) == 50
    item = a[7]
    assert item["image"].shape == (3, 32, 32) and item["index"] == 7
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    # any order, any instance: the same crop for the same (seed, index)
    for i in (7, 0, 49, 7):
        assert torch.equal(a[i]["image"], b[i]["image"])
    assert not torch.equal(a[7]["image"], c[7]["image"])
    with pytest.raises(IndexError):
        a[50]


def test_crops_cover_photos_scales_and_upscales(photo_paths):
    ds = PhotoCropDataset(photo_paths, 32, 300, seed=0, upscales=(1, 2))
    plans = [ds.plan(i) for i in range(len(ds))]
    assert {p.photo for p in plans} == {0, 1, 2}
    assert {p.upscale for p in plans} == {1, 2}
    assert 0.3 < np.mean([p.flip for p in plans]) < 0.7
    big = [p for p in plans if p.photo == 0]
    sides = [p.side for p in big]
    # from native pixels (side = content) to (nearly) the whole photo's shorter side
    assert min(sides) <= 20 and max(sides) >= 100
    for p in plans:
        w, h = ds.photo(p.photo).size
        assert 0 <= p.x0 <= w - p.side and 0 <= p.y0 <= h - p.side
    # the small photo (40x30) is used whole for content 32 (and so upsampled)
    assert all(p.side <= 30 for p in plans if p.photo == 2)


def test_upsampled_crops_hold_only_half_resolution_content(photo_paths):
    ds = PhotoCropDataset(photo_paths, 32, 200, seed=1, upscales=(2,), hflip=False)
    up = ds[0]["image"][None]  # (1, 3, 32, 32)
    # bilinear x2 content: downsampling by 2 and back loses much less than for a native crop
    native = PhotoCropDataset(photo_paths, 32, 200, seed=1, upscales=(1,), hflip=False)

    def _detail(x: torch.Tensor) -> float:
        small = torch.nn.functional.avg_pool2d(x, 2)
        return float(
            (torch.nn.functional.interpolate(small, scale_factor=2, mode="bilinear") - x).abs().mean()
        )

    d_up = np.mean([_detail(ds[i]["image"][None]) for i in range(20)])
    d_nat = np.mean([_detail(native[i]["image"][None]) for i in range(20)])
    assert up.shape == (1, 3, 32, 32) and d_up < 0.6 * d_nat


def test_alpha_photos_are_composited_over_a_drawn_colour(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = 255  # white, fully transparent: must never show
    p = tmp_path / "stamp.png"
    Image.fromarray(rgba, "RGBA").save(p)
    ds = PhotoCropDataset([p], 16, 10, seed=0, upscales=(1,))
    for i in range(10):
        img, bg = ds[i]["image"], ds.plan(i).background
        expect = torch.tensor(bg, dtype=torch.float32) / 127.5 - 1.0
        torch.testing.assert_close(img[:, 0, 0], expect)


def test_bad_inputs_name_the_problem(tmp_path, photo_paths):
    with pytest.raises(ValueError, match="empty"):
        PhotoCropDataset([], 32, 4)
    with pytest.raises(ValueError, match="divide"):
        PhotoCropDataset(photo_paths, 32, 4, upscales=(3,))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.png"):
        PhotoCropDataset([bad], 32, 4)[0]
    with pytest.raises(ImageReadError, match="missing.png"):
        PhotoCropDataset([tmp_path / "missing.png"], 32, 4)[0]


def test_pil_images_and_max_photo_side():
    ds = PhotoCropDataset([_photo(400, 300, 0)], 32, 5, max_photo_side=100)
    assert min(ds.photo(0).size) == 100 and ds[0]["image"].shape == (3, 32, 32)


def test_photo_paths_from_a_config(tmp_path, photo_paths):
    from harmonylib.config import PhotoCropConfig
    from harmonylib.data.photo_crops import photo_crop_dataset
    from harmonylib.data.photo_crops import photo_paths as resolve_photos

    got = resolve_photos(PhotoCropConfig(source="paths", paths=(str(tmp_path / "p*.png"),)))
    assert [str(p) for p in got] == sorted(photo_paths)
    ds = photo_crop_dataset(PhotoCropConfig(source="paths", paths=tuple(photo_paths), n_crops=5), 32, 0)
    assert len(ds) == 5 and ds[4]["image"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="matches no file"):
        resolve_photos(PhotoCropConfig(source="paths", paths=(str(tmp_path / "none*.jpg"),)))
    builtin = resolve_photos(PhotoCropConfig(source="builtin"))
    assert len(builtin) >= 3 and all(p.is_file() for p in builtin)

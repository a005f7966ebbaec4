"""Training-time augmentation of the harmony classifier (classifier_data.augment_pairs) and its config."""

import functools

import pytest
import torch

from harmonylib.config import load_config
from harmonylib.training import objectives
from harmonylib.training.classifier_data import augment_pairs


def _pairs(n_pairs=3, h=16, w=20, same=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    comps = torch.rand((n_pairs, 3, h, w), generator=g) * 2 - 1
    reals = comps.clone() if same else torch.rand((n_pairs, 3, h, w), generator=g) * 2 - 1
    return torch.cat([comps, reals])


ALL_ON = dict(hflip=True, crop_scale=0.5, color=0.3)


def test_off_is_identity():
    x = _pairs()
    assert augment_pairs(x, torch.Generator().manual_seed(0)) is x


def test_shape_range_and_determinism():
    x = _pairs()
    a = augment_pairs(x, torch.Generator().manual_seed(1), **ALL_ON)
    b = augment_pairs(x, torch.Generator().manual_seed(1), **ALL_ON)
    c = augment_pairs(x, torch.Generator().manual_seed(2), **ALL_ON)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("opts", [dict(hflip=True), dict(crop_scale=0.4), dict(color=0.4), ALL_ON])
def test_composite_and_its_real_share_the_transform(opts):
    # identical composite and real stay identical: the transform is per pair, carries no label
    x = _pairs(n_pairs=4, same=True)
    y = augment_pairs(x, torch.Generator().manual_seed(3), **opts)
    assert torch.allclose(y[:4], y[4:])
    assert not torch.allclose(y, x)


def test_hflip_only_mirrors():
    x = _pairs(n_pairs=8)
    y = augment_pairs(x, torch.Generator().manual_seed(0), hflip=True)
    for i in range(16):
        assert torch.equal(y[i], x[i]) or torch.equal(y[i], torch.flip(x[i], dims=(2,)))
    assert not torch.equal(y, x)


def test_color_is_global_and_keeps_a_uniform_image_uniform():
    x = torch.full((2, 3, 8, 8), 0.2)
    y = augment_pairs(x, torch.Generator().manual_seed(0), color=0.5)
    assert torch.allclose(y, y[:, :, :1, :1].expand_as(y))


def test_bad_arguments():
    with pytest.raises(ValueError):
        augment_pairs(torch.zeros(3, 3, 8, 8), None, hflip=True)
    with pytest.raises(ValueError):
        augment_pairs(_pairs(), None, crop_scale=0.0)
    with pytest.raises(ValueError):
        augment_pairs(_pairs(), None, color=1.0)


def test_classifier_loss_uses_augment_with_the_generator():
    seen = {}

    def aug(images, generator):
        seen["g"] = generator
        return torch.zeros_like(images)

    images = _pairs(n_pairs=2)
    labels = torch.tensor([1, 1, 0, 0])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 20, 2))
    g = torch.Generator().manual_seed(0)
    loss_aug, _ = objectives.classifier_loss(model, {"images": images, "labels": labels}, g, augment=aug)
    loss_zero, _ = objectives.classifier_loss(model, {"images": torch.zeros_like(images), "labels": labels})
    assert seen["g"] is g
    assert torch.allclose(loss_aug, loss_zero)


def test_config_fields_and_recipe_binding(monkeypatch):
    from harmonylib.training import recipes

    cfg = load_config("smoke")
    rc = cfg.train.classifier
    assert (rc.augment_hflip, rc.augment_crop_scale, rc.augment_color) == (False, 1.0, 0.0)  # smoke: off
    cfg = load_config(
        "smoke",
        {
            "train.classifier.augment_hflip": True,
            "train.classifier.augment_crop_scale": 0.7,
            "train.classifier.augment_color": 0.2,
        },
    )
    monkeypatch.setattr(recipes, "harmony_dataset", lambda *a, **k: [])
    spec = recipes.build_classifier_spec(cfg)
    obj = spec.objective
    assert isinstance(obj, functools.partial)
    aug = obj.keywords["augment"]
    assert aug.func is augment_pairs
    assert aug.keywords == {"hflip": True, "crop_scale": 0.7, "color": 0.2}


def test_masks_get_their_images_crop_and_flip_but_no_colour():
    from harmonylib.training.classifier_data import augment_pairs, pair_collate

    g = torch.Generator().manual_seed(0)
    n = 6
    images = torch.rand(2 * n, 3, 16, 20, generator=g) * 2 - 1
    masks = torch.zeros(2 * n, 1, 16, 20)
    masks[:, :, 4:12, 2:9] = 1.0
    # the mask drawn into channel 0 of an otherwise flat image goes through the same geometry
    probe = torch.cat([masks, masks, masks], dim=1) * 2 - 1
    kw = {"hflip": True, "crop_scale": 0.5, "color": 0.0}
    img_out, mask_out = augment_pairs(images, torch.Generator().manual_seed(3), masks=masks, **kw)
    assert img_out.shape == images.shape and mask_out.shape == masks.shape
    torch.testing.assert_close(augment_pairs(images, torch.Generator().manual_seed(3), **kw), img_out)
    geo = augment_pairs(probe, torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close((geo[:, :1] + 1) / 2, mask_out)
    torch.testing.assert_close(mask_out[:n], mask_out[n:])  # a composite and its real: one mask
    _, m_col = augment_pairs(images, torch.Generator().manual_seed(3), masks=masks, color=0.5)
    assert torch.equal(m_col, masks)  # colour jitter never touches a mask
    items = [{"composite": images[i], "real": images[n + i], "mask": masks[i], "index": i} for i in range(n)]
    batch = pair_collate(items)
    assert batch["masks"].shape == (2 * n, 1, 16, 20) and torch.equal(batch["masks"][:n], batch["masks"][n:])

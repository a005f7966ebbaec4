"""The SD-inpainting stand-in objective: input layout, masks, and that it trains."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from harmonylib.models.tiny import build_tiny_unet, build_tiny_vae, tiny_empty_prompt_embedding
from harmonylib.training.inpainting import (
    DEFAULT_MASK_MIX,
    MASK_KINDS,
    check_mask_mix,
    inpainting_loss,
    masked_image,
    posterior_moments,
    random_inpainting_mask,
    random_inpainting_masks,
)


def _images(b: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1  # (B, 3, S, S) in [-1, 1]


class _SpyUNet(torch.nn.Module):
    """Records the UNet input; predicts zeros."""

    def __init__(self):
        super().__init__()
        self.seen = None
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, encoder_hidden_states):
        self.seen = (x.detach().clone(), t.clone(), encoder_hidden_states)
        return type("Out", (), {"sample": x[:, :4] * self.w})()


def test_masked_image_is_zero_in_the_hole_only():
    img = _images()
    mask = random_inpainting_masks(2, 32, 32, torch.Generator().manual_seed(3), (0.0, 1.0, 0.0))
    out = masked_image(img, mask)
    hole = mask.expand_as(img) > 0.5
    assert (out[hole] == 0).all()
    assert torch.equal(out[~hole], img[~hole])


def test_unet_input_layout_matches_diffusers_inpainting():
    vae = build_tiny_vae(0).eval()
    prompt = tiny_empty_prompt_embedding(0).embeds.detach()
    spy = _SpyUNet()
    img = _images()
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:24, 4:20] = 1.0
    loss, logs = inpainting_loss(
        spy,
        {"image": img, "mask": mask},
        torch.Generator().manual_seed(0),
        noise_scheduler=DDPMScheduler(num_train_timesteps=1000),
        prompt_embeds=prompt,
        scaling_factor=0.5,
        vae=vae,
        sample_posterior=False,
    )
    x, t, ehs = spy.seen
    assert x.shape == (2, 9, 4, 4)  # 32 px / tiny VAE factor 8
    # channel 4: the mask, nearest-resized to the latent grid (diffusers' prepare_mask_latents)
    assert torch.equal(x[:, 4:5], torch.nn.functional.interpolate(mask, size=(4, 4)))
    # channels 5..8: latents of image * (mask < 0.5), times the scaling factor
    with torch.no_grad():
        zm = vae.encode(img * (mask < 0.5)).latent_dist.mode() * 0.5
    torch.testing.assert_close(x[:, 5:], zm)
    assert ehs.shape == (2, 77, 32) and t.shape == (2,)
    assert loss.ndim == 0 and logs["mse"] == pytest.approx(float(loss.detach()))


def test_cached_moments_give_the_same_loss_as_pixels():
    vae = build_tiny_vae(0).eval()
    unet = build_tiny_unet(0)
    kw = dict(
        noise_scheduler=DDPMScheduler(num_train_timesteps=1000),
        prompt_embeds=tiny_empty_prompt_embedding(0).embeds.detach(),
        scaling_factor=0.7,
    )
    img = _images(size=64)
    mask = random_inpainting_masks(2, 64, 64, torch.Generator().manual_seed(1))
    pix, _ = inpainting_loss(
        unet, {"image": img, "mask": mask}, torch.Generator().manual_seed(5), vae=vae, **kw
    )
    with torch.no_grad():
        cached = {
            "moments": posterior_moments(vae, img),
            "masked_moments": posterior_moments(vae, masked_image(img, mask)),
            "mask_latents": torch.nn.functional.interpolate(mask, size=(8, 8)),
        }
    lat, _ = inpainting_loss(unet, cached, torch.Generator().manual_seed(5), **kw)
    torch.testing.assert_close(pix, lat)


def test_masks_are_deterministic_and_cover_the_mix():
    a = random_inpainting_masks(6, 40, 48, torch.Generator().manual_seed(11))
    b = random_inpainting_masks(6, 40, 48, torch.Generator().manual_seed(11))
    c = random_inpainting_masks(6, 40, 48, torch.Generator().manual_seed(12))
    assert a.shape == (6, 1, 40, 48) and torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0}

    g = torch.Generator().manual_seed(0)
    n = 800
    draws = [random_inpainting_mask(64, 64, g) for _ in range(n)]
    counts = {k: sum(1 for _, kind in draws if kind == k) for k in MASK_KINDS}
    for k, p in zip(MASK_KINDS, DEFAULT_MASK_MIX, strict=True):
        sd = (p * (1 - p) / n) ** 0.5
        assert abs(counts[k] / n - p) < 4 * sd, (k, counts)
    for m, kind in draws:
        cover = float(m.mean())
        if kind == "full":
            assert cover == 1.0
        else:
            assert 0.0 < cover < 1.0, (kind, cover)  # a real hole, never the whole image
    partial = [float(m.mean()) for m, k in draws if k != "full"]
    assert min(partial) < 0.1 and max(partial) > 0.5  # small and large holes both occur


def test_mask_mix_is_checked():
    assert check_mask_mix((0.0, 0.5, 0.5)) == (0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="mask_mix"):
        check_mask_mix((0.5, 0.6, 0.0))
    with pytest.raises(ValueError, match="mask_mix"):
        check_mask_mix((1.0, 0.0))
    g = torch.Generator().manual_seed(0)
    assert all(random_inpainting_mask(16, 16, g, (0.0, 0.0, 1.0))[1] == "strokes" for _ in range(20))


def test_loss_decreases_on_a_tiny_unet():
    vae = build_tiny_vae(0).eval()
    unet = build_tiny_unet(0)
    kw = dict(
        noise_scheduler=DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear"),
        prompt_embeds=tiny_empty_prompt_embedding(0).embeds.detach(),
        scaling_factor=1.0,
    )
    img = _images(4, 64)
    mask = random_inpainting_masks(4, 64, 64, torch.Generator().manual_seed(2))
    with torch.no_grad():
        batch = {
            "moments": posterior_moments(vae, img),
            "masked_moments": posterior_moments(vae, masked_image(img, mask)),
            "mask_latents": torch.nn.functional.interpolate(mask, size=(8, 8)),
        }
    opt = torch.optim.Adam(unet.parameters(), lr=2e-3)

    def _eval() -> float:
        with torch.no_grad():
            return sum(float(inpainting_loss(unet, batch, torch.Generator().manual_seed(100 + i), **kw)[0])
                       for i in range(4)) / 4  # fmt: skip

    before = _eval()
    for step in range(25):
        loss, _ = inpainting_loss(unet, batch, torch.Generator().manual_seed(step), **kw)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _eval()
    assert after < 0.85 * before, (before, after)  # measured 1.126 -> 0.800


def test_latent_cache_rows_are_crop_mask_pairs(tmp_path):
    import numpy as np
    from PIL import Image

    from harmonylib.data.photo_crops import PhotoCropDataset
    from harmonylib.training.latent_cache import (
        InpaintingLatentDataset,
        build_inpainting_latent_cache,
        crop_mask,
    )

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    crops = PhotoCropDataset([photo], 64, 3, seed=0)
    vae = build_tiny_vae(0).eval()
    kw = dict(masks_per_crop=2, mask_mix=DEFAULT_MASK_MIX, seed=5, batch_size=2)
    cache = build_inpainting_latent_cache(crops, vae, tmp_path / "c", key="k1", **kw)
    ds = InpaintingLatentDataset(cache)
    assert len(ds) == 6
    for j in (0, 3, 5):
        i, k = divmod(j, 2)
        item = ds[j]
        img = crops[i]["image"][None]
        mask = crop_mask(i, k, 64, 5, DEFAULT_MASK_MIX)[None]  # (1, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(item["moments"], posterior_moments(vae, img)[0], atol=2e-3, rtol=2e-3)
            want = posterior_moments(vae, masked_image(img, mask))[0]
        torch.testing.assert_close(item["masked_moments"], want, atol=2e-3, rtol=2e-3)
        assert torch.equal(item["mask_latents"], torch.nn.functional.interpolate(mask, size=(8, 8))[0])
    assert build_inpainting_latent_cache(crops, vae, cache, key="k1", **kw) == cache  # reused
    with pytest.raises(ValueError, match="k1"):
        build_inpainting_latent_cache(crops, vae, cache, key="k2", **kw)

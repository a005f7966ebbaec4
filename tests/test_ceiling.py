"""The autoencoder ceiling (harmonylib.ceiling): the real image through the VAE, cached per key."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from harmonylib.ceiling import DONE_FILE, reconstruct, write_ceiling_predictions
from harmonylib.models.tiny import build_tiny_pipeline


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_pipeline(seed=0, harmony_vae=False)


def _samples(tmp_path, n=3, size=(40, 24)):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        real = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        comp = np.clip(real.astype(int) + 40, 0, 255).astype(np.uint8)
        mask = np.zeros(real.shape[:2], np.uint8)
        mask[4:16, 8:30] = 255
        paths = {k: tmp_path / f"{k}{i}.png" for k in ("real", "composite", "mask")}
        Image.fromarray(real).save(paths["real"])
        Image.fromarray(comp).save(paths["composite"])
        Image.fromarray(mask).save(paths["mask"])
        out.append(SimpleNamespace(name=f"s{i}", **paths))
    return out


def test_plain_ceiling_is_the_vae_round_trip(tmp_path, tiny):
    samples = _samples(tmp_path)
    folder = write_ceiling_predictions(
        samples, tmp_path / "c", tiny.vae, size=32, out_resolution=None, key={"k": 1}
    )
    # an independent round trip of one image: PIL bilinear squash, posterior mode, decode
    img = Image.open(samples[1].real).convert("RGB").resize((32, 32), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        y = tiny.vae.decode(tiny.vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    want = ((y[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    got = np.asarray(Image.open(folder / "s1.png"))
    assert got.shape == (32, 32, 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_ceiling_cached_resumed_and_refuses_another_key(tmp_path, tiny):
    samples = _samples(tmp_path)
    folder = tmp_path / "c"
    write_ceiling_predictions(samples[:2], folder, tiny.vae, 32, 16, {"k": 1})
    assert not (folder / DONE_FILE).exists() or len(list(folder.glob("*.png"))) == 2
    first = (folder / "s0.png").stat().st_mtime_ns
    write_ceiling_predictions(samples, folder, tiny.vae, 32, 16, {"k": 1})  # resumes: only s2 is new
    assert (folder / "s0.png").stat().st_mtime_ns == first
    assert sorted(p.name for p in folder.glob("*.png")) == ["s0.png", "s1.png", "s2.png"]
    assert Image.open(folder / "s2.png").size == (16, 16)
    assert (folder / DONE_FILE).is_file()
    with pytest.raises(FileExistsError, match="another folder"):
        write_ceiling_predictions(samples, folder, tiny.vae, 64, 16, {"k": 2})


def test_harmony_vae_ceiling_needs_its_condition(tiny):
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match="composite and the mask"):
        reconstruct(tiny.vae, x, harmony_vae=object())


def test_harmony_vae_ceiling_decodes_with_the_composite(tmp_path, tiny):
    hvae = build_tiny_pipeline(seed=0, harmony_vae=True).vae
    samples = _samples(tmp_path, n=2)
    a = write_ceiling_predictions(samples, tmp_path / "h", tiny.vae, 32, None, {"k": 1}, harmony_vae=hvae)
    b = write_ceiling_predictions(samples, tmp_path / "p", tiny.vae, 32, None, {"k": 1})
    ha, pb = (np.asarray(Image.open(f / "s0.png")) for f in (a, b))
    assert ha.shape == pb.shape == (32, 32, 3)
    # zero-initialised skip convs (paper §3.2): at init the Harmony-VAE decodes like the base VAE
    assert np.array_equal(ha, pb)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in hvae.added_skip_convs():
            conv.weight.copy_(0.2 * torch.randn(conv.weight.shape, generator=gen))
    c = write_ceiling_predictions(samples, tmp_path / "h2", tiny.vae, 32, None, {"k": 1}, harmony_vae=hvae)
    assert not np.array_equal(np.asarray(Image.open(c / "s0.png")), pb)  # the condition reaches the decoder

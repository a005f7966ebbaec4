"""Harmony-VAE on the denoised latent z'_0 (train.harmony_vae.latent: denoised; paper §3.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonylib.config import load_config
from harmonylib.training.base_models import build_base_unet
from harmonylib.training.denoised_latents import (
    DenoisedLatentDataset,
    build_denoised_cache,
    denoised_cache,
    forward_denoiser,
)
from harmonylib.training.objectives import harmony_vae_loss
from harmonylib.training.recipes import build_harmony_vae_model, harmony_dataset
from harmonylib.training.runs import ensure_trained, run_config, run_hash


def _adopted_unet(folder, seed: int = 0):
    """A tiny forward UNet saved as a released folder (smoke trains its own; here one is adopted)."""
    unet = build_base_unet("tiny", seed)
    unet.save_pretrained(folder)
    return folder


@pytest.fixture
def denoised_cfg(smoke_data_root, tmp_path):
    unet = _adopted_unet(tmp_path / "released" / "unet")
    return lambda **over: load_config(
        "smoke",
        {
            "data.root": str(smoke_data_root),
            "train.unet.adopt": str(unet),
            "train.harmony_vae.latent": "denoised",
            **over,
        },
    )


def test_cache_holds_the_pipelines_own_samples_and_is_reused(denoised_cfg, tmp_path):
    cfg = denoised_cfg()
    rc = cfg.train.harmony_vae
    ds = harmony_dataset(cfg, rc.resolution, rc.resize)
    folder = build_denoised_cache(cfg, ds, tmp_path / "cache", batch_size=5)
    files = sorted(folder.rglob("*.npy"))
    assert len(files) == len(ds)
    # item 3, sampled alone with its own generator, is the cached latent (batching changes nothing)
    item = ds[3]
    pipe = forward_denoiser(cfg)
    from harmonylib.reproducibility import derive_seed, make_generator

    gen = make_generator(derive_seed(cfg.seed, "denoised", item["name"]))
    z = pipe([((item["composite"] + 1) / 2).clamp(0, 1)], [item["mask"][0].numpy()], generator=[gen],
             size_mode="square", size=rc.resolution, output_type="latent", num_inference_steps=5).images  # fmt: skip
    cached = DenoisedLatentDataset(ds, folder)[3]["latent"]
    assert cached.shape == z.shape[1:] and cached.dtype == torch.float32
    torch.testing.assert_close(cached, z[0] / pipe.vae.config.scaling_factor, rtol=1e-4, atol=1e-5)
    # a finished cache is reused as it is
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert build_denoised_cache(cfg, ds, tmp_path / "cache") == folder
    assert {f: f.stat().st_mtime_ns for f in files} == stamps


def test_another_unet_is_another_cache_and_another_run(denoised_cfg, tmp_path):
    cfg = denoised_cfg()
    other = denoised_cfg(**{"train.unet.adopt": str(_adopted_unet(tmp_path / "other" / "unet", seed=1))})
    assert denoised_cache(cfg, tmp_path).path != denoised_cache(other, tmp_path).path
    assert run_hash(cfg, "harmony_vae") != run_hash(other, "harmony_vae")
    assert "denoiser" in run_config(cfg, "harmony_vae")
    real = denoised_cfg(**{"train.harmony_vae.latent": "real"})
    assert "denoiser" not in run_config(real, "harmony_vae")
    assert run_hash(real, "harmony_vae") != run_hash(cfg, "harmony_vae")


def test_objective_decodes_the_given_latent(denoised_cfg):
    cfg = denoised_cfg()
    rc = cfg.train.harmony_vae
    vae = build_harmony_vae_model(cfg).eval()
    ds = harmony_dataset(cfg, rc.resolution, rc.resize)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ("composite", "real", "mask")}
    z = torch.randn(2, 4, rc.resolution // 8, rc.resolution // 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss, _ = harmony_vae_loss(vae, {**batch, "latent": z}, torch.Generator().manual_seed(1))
        cond = torch.cat([batch["composite"], batch["mask"]], dim=1)
        recon = vae.decode_with_cond(z, cond, generator=torch.Generator().manual_seed(1)).sample
        loss_far, _ = harmony_vae_loss(vae, {**batch, "latent": z + 3.0}, torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(recon, batch["real"]))
    assert not torch.isclose(loss, loss_far)


def test_ensure_trained_on_denoised_latents(denoised_cfg, tmp_path):
    cfg = denoised_cfg()
    run = ensure_trained(cfg, "harmony_vae", run_dir=tmp_path / "runs" / "hv", progress=False)
    assert run.status == "completed" and np.isfinite(run.final_loss)
    caches = list((tmp_path / "cache").glob("denoised-*"))
    assert len(caches) == 1 and (caches[0] / "DENOISED_DONE.json").is_file()


def test_denoised_needs_an_adopted_forward_unet(smoke_data_root, tmp_path):
    cfg = load_config("smoke", {"data.root": str(smoke_data_root), "train.harmony_vae.latent": "denoised"})
    with pytest.raises(ValueError, match="train.unet.adopt"):
        run_hash(cfg, "harmony_vae")
    inverse = load_config(
        "smoke",
        {"train.harmony_vae.latent": "denoised", "train.harmony_vae.direction": "inverse",
         "train.unet.adopt": str(_adopted_unet(tmp_path / "unet"))},
    )  # fmt: skip
    with pytest.raises(ValueError, match="forward"):
        run_hash(inverse, "harmony_vae")

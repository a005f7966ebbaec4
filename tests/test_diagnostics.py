"""harmonylib.diagnostics: x0 error vs the copy baseline, ceilings per size, splits, and the CLI."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from harmonylib.ceiling import write_ceiling_predictions
from harmonylib.config import EvalConfig
from harmonylib.data.iharmony4 import read_split
from harmonylib.diagnostics import (
    available_splits,
    ceiling_scores,
    composite_scores,
    mean_se,
    pick,
    unet_x0_errors,
)
from harmonylib.diagnostics.__main__ import main
from harmonylib.diagnostics.common import check_splits
from harmonylib.evaluation import evaluate_predictions
from harmonylib.models.tiny import build_tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(seed=0, harmony_vae=False)


@pytest.fixture(scope="module")
def samples(smoke_data_root, tmp_path_factory):
    """4 smoke test composites cropped to 64 x 64, so at size 64 nothing is resized."""
    out, root = [], tmp_path_factory.mktemp("square")
    for s in read_split(smoke_data_root, "test")[:4]:
        paths = {}
        for kind in ("real", "composite", "mask"):
            img = Image.open(getattr(s, kind))
            paths[kind] = root / f"{s.name}_{kind}.png"  # PNG: no second JPEG loss
            img.crop((0, 0, 64, 64)).save(paths[kind])
        out.append(SimpleNamespace(name=s.name, subset=s.subset, **paths))
    return out


def _latent(vae, path):
    """Independent route: the 64 px smoke image as is (no resize at size 64), posterior mode, scaled."""
    x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        return vae.encode(x / 127.5 - 1).latent_dist.mode() * vae.config.scaling_factor  # (1, 4, 8, 8)


def test_copy_baseline_is_the_foreground_latent_difference(pipe, samples):
    df = unet_x0_errors(pipe, samples, size=64, num_inference_steps=5, seed=0)
    assert len(df) == 5 * len(samples) and list(df["level"][:5]) == [0, 1, 2, 3, 4]
    assert df["timestep"][:5].tolist() == pytest.approx([999.0, 749.25, 499.5, 249.75, 0.0])
    assert df["sigma"].iloc[0] == pytest.approx(14.61, abs=0.01)
    for s in samples:
        zr, zc = _latent(pipe.vae, s.real), _latent(pipe.vae, s.composite)
        m = torch.from_numpy((np.asarray(Image.open(s.mask).convert("L")) > 127).astype(np.float32))[
            None, None
        ]
        fg = F.interpolate(m, size=(8, 8), mode="nearest")  # (1, 1, 8, 8)
        want = float(((zc - zr) ** 2 * fg).sum() / (4 * fg.sum()))
        got = df.loc[df["image"] == s.name, "copy_mse"]
        assert got.nunique() == 1  # the copy does not depend on the noise level
        assert got.iloc[0] == pytest.approx(want, rel=1e-5, abs=1e-9)
        assert (df.loc[df["image"] == s.name, "n_fg_latent"] == int(fg.sum())).all()


class _TrueNoiseUNet(torch.nn.Module):
    """Returns the exact ε of x_t = z_real + σ ε, recovered from its scaled input channels."""

    def __init__(self, z_real: torch.Tensor, scheduler):
        super().__init__()
        self.z_real, self.scheduler = z_real, scheduler
        self.dtype = torch.float32

    def forward(self, x, t, encoder_hidden_states=None):
        sigma = float(np.interp(float(t), np.arange(1000), self.scheduler_sigmas()))
        x_t = x[:, :4].double() * math.sqrt(sigma**2 + 1)  # undo scale_model_input
        return SimpleNamespace(sample=((x_t - self.z_real.double()) / sigma).float())

    def scheduler_sigmas(self):
        a = self.scheduler.alphas_cumprod.double().numpy()
        return ((1 - a) / a) ** 0.5  # the Euler sigma of every training timestep


def test_a_unet_that_outputs_the_true_noise_has_no_x0_error(pipe, samples):
    z_real = torch.cat([_latent(pipe.vae, s.real) for s in samples])  # (4, 4, 8, 8)
    oracle = SimpleNamespace(
        vae=pipe.vae,
        unet=_TrueNoiseUNet(z_real, pipe.scheduler),
        scheduler=pipe.scheduler,
        vae_scale_factor=pipe.vae_scale_factor,
        _execution_device=torch.device("cpu"),
        _prompt_embeds=pipe._prompt_embeds,
    )
    df = unet_x0_errors(oracle, samples, size=64, batch_size=len(samples))
    scale = float((z_real**2).mean())
    assert df["unet_x0_mse"].max() < 1e-8 * max(scale, 1.0)
    # and the real UNet is far from that at the first level (random weights)
    real = unet_x0_errors(pipe, samples, size=64)
    assert (real.loc[real["level"] == 0, "unet_x0_mse"] > 1.0).all()


def test_x0_errors_do_not_depend_on_batch_size_and_are_seeded(pipe, samples):
    a = unet_x0_errors(pipe, samples, size=64, seed=3, batch_size=4)
    b = unet_x0_errors(pipe, samples, size=64, seed=3, batch_size=1)
    c = unet_x0_errors(pipe, samples, size=64, seed=4, batch_size=4)
    assert a["image"].tolist() == b["image"].tolist()
    np.testing.assert_allclose(a["unet_x0_mse"], b["unet_x0_mse"], rtol=1e-5)
    # the copy error is a small difference of two latents: float noise of batched convs, 1e-9 absolute
    np.testing.assert_allclose(a["copy_mse"], b["copy_mse"], rtol=1e-4, atol=1e-8)
    assert not np.allclose(a["unet_x0_mse"], c["unet_x0_mse"])  # the seed moves the noise
    with pytest.raises(ValueError, match="multiple of 8"):
        unet_x0_errors(pipe, samples, size=60)


def test_ceiling_per_size_equals_ceiling_module(tmp_path, pipe, samples):
    cfg = EvalConfig()
    df = ceiling_scores(samples, pipe.vae, [32, 64], tmp_path / "w", vae_key="tiny", eval_cfg=cfg)
    assert set(df["size"]) == {32, 64} and set(df["row"]) == {"VAE ceiling"}
    for size in (32, 64):
        folder = write_ceiling_predictions(
            samples, tmp_path / f"ref{size}", pipe.vae, size, 256, {"size": size}
        )
        want = evaluate_predictions(samples, folder, cfg, progress=False)
        got = df[df["size"] == size]
        np.testing.assert_allclose(got["psnr"].to_numpy(), want["psnr"].to_numpy())
        np.testing.assert_allclose(got["fmse"].to_numpy(), want["fmse"].to_numpy())
    comp = composite_scores(samples, cfg)
    assert comp["size"].isna().all() and (comp["row"] == "Composite").all()


def test_splits_come_from_the_dataset_lists(tmp_path, smoke_data_root):
    assert available_splits(smoke_data_root)[:1] == ["train"] and "test" in available_splits(smoke_data_root)
    (tmp_path / "IHD_test.txt").write_text("")
    (tmp_path / "IHD_train.txt").write_text("")
    (tmp_path / "IHD_val.txt").write_text("")
    (tmp_path / "extra.jsonl").write_text("")
    assert available_splits(tmp_path) == ["train", "val", "test", "extra"]
    assert check_splits(["val"], tmp_path) == ["val"]
    with pytest.raises(ValueError, match="holdout"):
        check_splits(["holdout"], tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no split list"):
        available_splits(tmp_path / "empty")


def test_pick_and_mean_se():
    xs = list(range(50))
    assert pick(xs, 10, 0, "val") == pick(xs, 10, 0, "val") != pick(xs, 10, 0, "test")
    assert pick(xs, None, 0, "val") == xs and len(pick(xs, 10, 0, "val")) == 10
    n, m, se = mean_se([1.0, 2.0, 3.0, float("nan"), float("inf")])
    assert (n, m) == (3, 2.0) and se == pytest.approx(1.0 / math.sqrt(3))


def test_cli_writes_csvs_and_states_skips(tmp_path, smoke_data_root, capsys):
    from harmonylib.models.pixel_baseline import build_pixel_harmonizer

    build_pixel_harmonizer("smoke").save_pretrained(tmp_path / "pixel")
    argv = ["--profile", "smoke", "--data-root", str(smoke_data_root), "--out", str(tmp_path / "out"),
            "--work", str(tmp_path / "work"), "--runs-dir", str(tmp_path / "none"), "--n", "3",
            "--sizes", "32", "64", "--measure", "ceiling", "pixel", "--pixel-baseline", str(tmp_path / "pixel")]  # fmt: skip
    assert main(argv) == 0
    out = tmp_path / "out"
    ceil = pd.read_csv(out / "diagnostics_ceilings.csv")
    assert set(ceil["split"]) == set(available_splits(smoke_data_root))
    assert set(ceil["row"]) == {"Composite", "VAE ceiling"}
    assert {"psnr", "psnr_se", "fmse", "fmse_se", "n"} <= set(ceil.columns) and (ceil["n"] == 3).all()
    px = pd.read_csv(out / "diagnostics_pixel_baseline.csv")
    assert set(px["row"]) == {"Composite", "Pixel baseline"}
    summary = (out / "diagnostics.md").read_text()
    assert "harmony_vae_ceiling" in summary and "no Harmony-VAE" in summary
    prov = (out / "diagnostics.provenance.json").read_text()
    assert '"test_list"' in prov and '"train_list"' in prov
    # a user's mistake: one line, exit code 2
    assert main([*argv, "--splits", "holdout"]) == 2
    assert "holdout" in capsys.readouterr().err

"""harmonylib.diagnostics.trajectory: x0 along the sampler's own path, foreground and background."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonylib.diagnostics import trajectory_errors
from harmonylib.diagnostics.summary import render_summary
from harmonylib.diagnostics.trajectory import FINAL_STEP, summarise_trajectory
from harmonylib.models.tiny import build_tiny_pipeline
from tests.test_diagnostics import _latent, _TrueNoiseUNet, samples  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_pipeline(seed=0, harmony_vae=False)


def test_rows_steps_and_copy_baseline(pipe, samples):  # noqa: F811
    df = trajectory_errors(pipe, samples, size=64, num_inference_steps=5, seed=0)
    assert len(df) == len(samples) * 6
    assert df["step"].tolist()[:6] == ["0", "1", "2", "3", "4", FINAL_STEP]
    assert df.groupby("image", sort=False)["copy_fg_mse"].nunique().eq(1).all()
    # the recorded first-step timestep is the sampler's first (999 on the SD schedule)
    assert df.loc[df["step"] == "0", "timestep"].eq(999.0).all()
    assert df.loc[df["step"] == FINAL_STEP, "timestep"].isna().all()
    # the pipeline's scheduler is left as it was: its step is the class's again
    assert "step" not in vars(pipe.scheduler)


def test_a_unet_that_knows_the_real_latent_samples_it_exactly(samples):  # noqa: F811
    oracle_pipe = build_tiny_pipeline(seed=0, harmony_vae=False)
    z_real = torch.cat([_latent(oracle_pipe.vae, s.real) for s in samples])  # (4, 4, 8, 8)
    oracle = _TrueNoiseUNet(z_real, oracle_pipe.scheduler)
    oracle.config, oracle.device = oracle_pipe.unet.config, torch.device("cpu")
    oracle_pipe.unet = oracle
    df = trajectory_errors(oracle_pipe, samples, size=64, batch_size=len(samples))
    scale = max(float((z_real**2).mean()), 1.0)
    assert df["fg_mse"].max() < 1e-6 * scale and df["bg_mse"].max() < 1e-6 * scale
    assert df["copy_fg_mse"].max() > 100 * df["fg_mse"].max()  # the composites differ from the reals


def test_trajectory_does_not_depend_on_batch_size_and_is_seeded(pipe, samples):  # noqa: F811
    a = trajectory_errors(pipe, samples, size=64, seed=3, batch_size=4)
    b = trajectory_errors(pipe, samples[::-1], size=64, seed=3, batch_size=1)
    c = trajectory_errors(pipe, samples, size=64, seed=4, batch_size=4)
    b = b.set_index(["image", "step"]).loc[list(zip(a["image"], a["step"], strict=True))].reset_index()
    np.testing.assert_allclose(a["fg_mse"], b["fg_mse"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(a["bg_mse"], b["bg_mse"], rtol=1e-4, atol=1e-7)
    assert not np.allclose(a["fg_mse"], c["fg_mse"])
    with pytest.raises(ValueError, match="multiple of 8"):
        trajectory_errors(pipe, samples, size=60)


def test_summary_renders_the_trajectory(pipe, samples):  # noqa: F811
    per = trajectory_errors(pipe, samples, size=64).assign(split="test")
    summ = summarise_trajectory(per)
    assert summ["step"].tolist() == ["0", "1", "2", "3", "4", FINAL_STEP]
    assert summ["beats_copy"].between(0, 1).all()
    res = type("R", (), {"summaries": {"trajectory": summ}, "skipped": {}})()
    meta = {
        "profile": "smoke",
        "splits": {"test": 4},
        "settings": {"seed": 0, "x0_sizes": [64], "steps": 5, "sizes": [64]},
    }
    text = render_summary(res, meta)
    assert "sampler's own trajectory" in text and "| test | 64 | final | – |" in text

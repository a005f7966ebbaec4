"""Run folders and ensure_trained on the smoke profile: every recipe, DONE reuse, variants, config errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from harmonylib.cache import CacheFolder, ForeignKeyError
from harmonylib.config import Config, ConfigError, load_config, to_dict
from harmonylib.models.harmony_vae import HarmonyVAE
from harmonylib.training.recipes import build_harmony_vae_model, train_samples
from harmonylib.training.runs import ensure_trained, read_done, run_folder, run_hash, run_name
from harmonylib.training.stage1_cache import Stage1Dataset, build_stage1_cache


@pytest.fixture
def smoke_cfg(smoke_data_root):
    return lambda **over: load_config("smoke", {"data.root": str(smoke_data_root), **over})


def _stub_stage1(composite, mask, generators):
    """A stand-in for the frozen DiffHarmony pipeline: shrink the composite, plus seeded noise."""
    noise = torch.stack([torch.randn(composite.shape[1:], generator=g) for g in generators])
    return (0.5 * composite + 0.01 * noise).clamp(-1, 1)


# ---- profiles -----------------------------------------------------------------------------------


def test_paper_profile_spells_out_the_defaults():
    paper = load_config("paper")
    assert to_dict(paper.train) == to_dict(Config().train)
    hv = paper.train.harmony_vae
    # paper §5.2
    assert (hv.loop.optim.lr, hv.loop.optim.warmup_ratio, hv.loop.epochs) == (1e-4, 0.02, 10)
    assert (hv.loop.optim.weight_decay, hv.loop.optim.betas, hv.loop.ema.decay) == (0.0, (0.9, 0.999), 0.999)
    assert (hv.resolution, hv.resize, hv.loss) == (256, "center_crop", "l2")
    un = paper.train.unet
    assert (un.loop.optim.weight_decay, un.loop.ema.decay, un.resolution, un.loop.batch_size) == (
        1e-2,
        0.9999,
        512,
        16,
    )


def test_small_profiles_scale_down():
    for name in ("smoke", "mini"):
        cfg = load_config(name)
        for recipe in ("unet", "harmony_vae", "refinement", "classifier", "autoencoder"):
            sec = getattr(cfg.train, recipe)
            assert sec.resolution == 64 and sec.loop.mixed_precision == "no"
    # a partial override keeps the recipe's own defaults for the rest of the section
    cfg = load_config("mini", {"train.harmony_vae.loop.optim.lr": 2e-4})
    assert (
        cfg.train.harmony_vae.loop.optim.warmup_ratio == 0.02
        and cfg.train.harmony_vae.loop.ema.decay == 0.999
    )


@pytest.mark.parametrize(
    "key,value,msg",
    [
        ("train.unet.loop.batchsize", 3, r"unknown key\(s\) \['batchsize'\] in train.unet.loop"),
        ("train.harmony_vae.variant", "ecd_zeros", "train.harmony_vae.variant: 'ecd_zeros' is not one of"),
        ("train.unet.loop.optim.lr", "fast", "train.unet.loop.optim.lr: expected a number"),
        ("train.classifier.loop.max_steps", 2.5, "train.classifier.loop.max_steps: 2.5 matches none"),
    ],
)
def test_bad_training_config_fails_naming_the_key(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config("smoke", {key: value})


def test_cli_rejects_bad_config_before_any_work(tmp_path, capsys):
    from harmonylib.training.__main__ import main

    run_dir = tmp_path / "run"
    code = main(
        [
            "--profile",
            "smoke",
            "--recipe",
            "unet",
            "--set",
            "train.unet.loop.optim.betas=[0.9]",
            "--run-dir",
            str(run_dir),
        ]
    )
    assert code == 2 and "train.unet.loop.optim.betas: expected 2 items" in capsys.readouterr().err
    assert not run_dir.exists()


# ---- ensure_trained ---------------------------------------------------------------------------


def test_harmony_vae_run_folder_and_reuse(smoke_cfg, tmp_path):
    cfg = smoke_cfg()
    run_dir = tmp_path / run_name(cfg, "harmony_vae")
    assert run_dir.name == "harmony_vae-forward-ecd_zero"
    run = ensure_trained(cfg, "harmony_vae", run_dir=run_dir, progress=False)
    assert run.status == "completed" and run.steps == 4 and np.isfinite(run.final_loss)
    for f in (
        "config.yaml",
        "run.json",
        "provenance.json",
        "metrics.csv",
        "DONE",
        f"{run_dir.name}_loss.png",
        "weights/live/diffusion_pytorch_model.safetensors",
        "weights/live/config.json",
        "weights/ema/diffusion_pytorch_model.safetensors",
        "checkpoints/checkpoint-2",
    ):
        assert (run_dir / f).exists(), f
    assert read_done(run_dir)["config_hash"] == run_hash(cfg, "harmony_vae")
    assert isinstance(run.load_model(), HarmonyVAE)
    # Same config: loaded, not retrained.
    seen = []
    again = ensure_trained(cfg, "harmony_vae", run_dir=run_dir, progress=False, on_step_end=seen.append)
    assert seen == [] and again.config_hash == run.config_hash
    # Evaluation settings do not decide a training run.
    assert run_hash(smoke_cfg(**{"eval.background": "none"}), "harmony_vae") == run.config_hash
    # Another training config: the old folder is moved aside and the run retrains.
    other = smoke_cfg(**{"train.harmony_vae.loss": "l1"})
    ensure_trained(other, "harmony_vae", run_dir=run_dir, progress=False, on_step_end=seen.append)
    assert seen == [1, 2, 3, 4] and read_done(run_dir)["config_hash"] == run_hash(other, "harmony_vae")
    assert len(list(tmp_path.glob(f"{run_dir.name}.replaced-{run.config_hash}-*"))) == 1


def test_run_folder_is_a_cache_folder_that_reads_existing_markers_and_refuses_a_foreign_key(tmp_path):
    # an existing finished run folder, markers as runs and releases have always written them
    (tmp_path / "run.json").write_text(json.dumps({"recipe": "unet", "run_name": "r", "config_hash": "h1"}))
    done = {"recipe": "unet", "config_hash": "h1", "status": "completed", "steps": 4, "final_loss": 0.5}
    (tmp_path / "DONE").write_text(json.dumps(done))
    folder = run_folder(tmp_path, "h1")
    assert isinstance(folder, CacheFolder) and folder.is_done() and folder.foreign() is None
    folder.open()  # resuming with the same hash is fine
    other = run_folder(tmp_path, "h2")
    assert not other.is_done() and other.foreign() == "h1"
    with pytest.raises(ForeignKeyError, match="h1"):
        other.open()
    # the DONE record is written as before: the whole record, sorted-key JSON
    record = {**done, "steps": 5}
    folder.mark_done(record)
    assert (tmp_path / "DONE").read_text() == json.dumps(record, indent=2, sort_keys=True) + "\n"


def test_table5_variants_initialise_and_freeze_as_named(smoke_cfg, tmp_path):
    ec_random = build_harmony_vae_model(smoke_cfg(**{"train.harmony_vae.variant": "ec_random"}))
    assert all(c.weight.abs().sum() > 0 for c in ec_random.added_skip_convs())
    assert ec_random.conditional_encoder.add_conv_in.weight.abs().sum() > 0
    assert not any(p.requires_grad for p in ec_random.decoder.parameters())
    ecd_zero = build_harmony_vae_model(smoke_cfg())
    assert all(c.weight.abs().sum() == 0 for c in ecd_zero.added_skip_convs())
    assert all(p.requires_grad for p in ecd_zero.decoder.parameters())
    # ec_zero trains E_c only: the decoder leaves training unchanged.
    cfg = smoke_cfg(**{"train.harmony_vae.variant": "ec_zero"})
    run = ensure_trained(cfg, "harmony_vae", run_dir=tmp_path / "ec", progress=False)
    trained = run.load_model(ema=False)
    init = build_harmony_vae_model(cfg)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            trained.decoder.state_dict().values(), init.decoder.state_dict().values(), strict=True
        )
    )
    assert not torch.equal(trained.latent_skip_conv.weight, init.latent_skip_conv.weight)


def test_harmony_vae_divergence_is_recorded_as_nan(smoke_cfg, tmp_path):
    cfg = smoke_cfg(
        **{
            "train.harmony_vae.variant": "ecd_random",
            "train.harmony_vae.loop.optim.lr": 1e30,  # absurd on purpose
            "train.harmony_vae.loop.optim.max_grad_norm": None,
        }
    )
    run = ensure_trained(cfg, "harmony_vae", run_dir=tmp_path / "div", progress=False)
    assert run.diverged and np.isnan(run.final_loss)
    done = json.loads((tmp_path / "div/DONE").read_text())
    assert done["status"] == "diverged" and np.isnan(done["final_loss"])


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_unet_recipe_runs(smoke_cfg, tmp_path, direction):
    cfg = smoke_cfg(**{"train.unet.direction": direction})
    run = ensure_trained(cfg, "unet", run_dir=tmp_path / "unet", progress=False)
    assert run.status == "completed" and run.steps == 4
    unet = run.load_model()
    assert unet.config.in_channels == 9


def test_classifier_recipe_reports_accuracy_and_auc(smoke_cfg, tmp_path):
    run = ensure_trained(smoke_cfg(), "classifier", run_dir=tmp_path / "clf", progress=False)
    m = run.test_metrics
    assert 0 <= m["accuracy"] <= 1 and 0 <= m["roc_auc"] <= 1 and m["n_images"] == 2 * 24
    assert json.loads((tmp_path / "clf/test_metrics.json").read_text()) == m
    assert (tmp_path / "clf/weights/live/model.safetensors").is_file()
    assert run.load_model().fc.out_features == 2


def test_stage1_cache_is_deterministic_and_feeds_refinement(smoke_cfg, tmp_path, monkeypatch):
    cfg = smoke_cfg()
    samples = train_samples(cfg)[:6]
    kw = dict(resolution=32, stage1_resolution=64, seed=0, key="stub", batch_size=4)
    a = build_stage1_cache(samples, _stub_stage1, tmp_path / "a", **kw)
    b = build_stage1_cache(samples, _stub_stage1, tmp_path / "b", **kw)
    for s in samples:
        pa, pb = a / s.subset / f"{s.name}.png", b / s.subset / f"{s.name}.png"
        assert np.array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb)))
        assert Image.open(pa).size == (32, 32)
    with pytest.raises(ValueError, match="holds stage-1 outputs of 'stub'"):
        build_stage1_cache(samples, _stub_stage1, a, **{**kw, "key": "other"})
    from harmonylib.data.datasets import HarmonyDataset

    item = Stage1Dataset(HarmonyDataset(samples, 32), a)[0]
    assert item["stage1"].shape == (3, 32, 32) and item["stage1"].abs().max() <= 1
    # The refinement recipe, end to end (the cache goes under HARMONYLIB_HOME/results).
    monkeypatch.setenv("HARMONYLIB_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="pass stage1="):
        ensure_trained(cfg, "refinement", run_dir=tmp_path / "ref", stage1_key="stub", progress=False)
    run = ensure_trained(
        cfg, "refinement", run_dir=tmp_path / "ref", stage1=_stub_stage1, stage1_key="stub", progress=False
    )
    assert run.status == "completed" and "stage1_mse" in run.metrics().columns
    assert run_hash(cfg, "refinement", "stub") != run_hash(cfg, "refinement", "other-stage1")


def test_missing_weights_folder_fails_before_the_run_folder_is_made(smoke_cfg, tmp_path):
    cfg = smoke_cfg(**{"train.harmony_vae.vae": str(tmp_path / "no-such-vae")})
    with pytest.raises(FileNotFoundError, match="train.harmony_vae.vae: .*no-such-vae does not exist"):
        ensure_trained(cfg, "harmony_vae", run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_autoencoder_recipe_gives_a_diffusers_vae(smoke_cfg, tmp_path):
    from diffusers import AutoencoderKL

    run = ensure_trained(smoke_cfg(), "autoencoder", run_dir=tmp_path / "ae", progress=False)
    assert run.status == "completed" and {"l1", "kl"} <= set(run.metrics().columns)
    vae = run.load_model()
    assert isinstance(vae, AutoencoderKL) and list(vae.config.block_out_channels) == [8, 16, 32, 32]

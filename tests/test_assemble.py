"""Pipeline assembly on the smoke profile: missing runs are trained, the saved folder reloads in a
fresh process and the harmonize CLI runs with it; the UNet, VAE and text condition are the ones
training used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harmonylib import assemble
from harmonylib.assemble import (
    LatentSpaceMismatchWarning,
    assemble_pipeline,
    base_vae,
    pipeline_dir,
    read_assembly,
    same_latent_space,
    save_assembled,
    unet_prompt_embeds,
)
from harmonylib.config import load_config
from harmonylib.io import load_mask_l, load_rgb
from harmonylib.reproducibility import derive_seed, make_generator
from harmonylib.training.runs import read_done

ROOT = Path(__file__).resolve().parents[1]


def _smoke(data_root: Path, **overrides):
    return load_config("smoke", {"data.root": str(data_root), **overrides})


@pytest.fixture(scope="module")
def assembled(tmp_path_factory, smoke_data_root):
    """The smoke forward DiffHarmony++ pipeline, saved under a fresh results root (runs trained)."""
    out = tmp_path_factory.mktemp("assemble") / "results"
    cfg = _smoke(smoke_data_root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentSpaceMismatchWarning)
        dest = save_assembled(cfg, out_dir=out)
    return cfg, out, dest


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_assembled_trains_missing_runs(assembled):
    cfg, out, dest = assembled
    assert dest == out / "runs" / "pipeline" == pipeline_dir(cfg, out_dir=out)
    for run in ("unet-forward", "harmony_vae-forward-ecd_zero"):
        assert read_done(out / "runs" / run)["status"] == "completed"
    index = json.loads((dest / "model_index.json").read_text())
    assert index["vae"][1] == "HarmonyVAE" and index["direction"] == "forward"
    sources = read_assembly(dest)
    assert sources["unet"]["kind"] == "run" and sources["unet"]["run_dir"] == str(
        out / "runs" / "unet-forward"
    )
    assert sources["vae"]["kind"] == "run"
    # the encoder check reports what it sees (smoke's two random base VAEs come from different seeds)
    assert sources["latent_space_match"] == same_latent_space(
        base_vae(cfg, "harmony_vae"), base_vae(cfg, "unet")
    )
    assert (dest / "provenance.json").is_file()
    # written atomically: no temporary folder left beside it
    assert sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(".")) == []


def test_save_assembled_reuses_same_assembly_and_force_rewrites(assembled):
    cfg, out, dest = assembled
    stamp = (dest / "model_index.json").stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentSpaceMismatchWarning)
        assert save_assembled(cfg, out_dir=out) == dest
        assert (dest / "model_index.json").stat().st_mtime_ns == stamp
        assert save_assembled(cfg, out_dir=out, force=True) == dest
    assert (dest / "model_index.json").stat().st_mtime_ns != stamp
    assert sorted(p.name for p in dest.parent.iterdir() if p.name.startswith(".")) == []


def test_assembled_components_are_the_trained_ones(assembled):
    from harmonylib.training.runs import TrainedRun

    cfg, out, dest = assembled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentSpaceMismatchWarning)
        pipe = assemble_pipeline(cfg, out_dir=out)
    unet_run = TrainedRun.from_done(out / "runs" / "unet-forward", read_done(out / "runs" / "unet-forward"))
    assert _state_equal(pipe.unet, unet_run.load_model(ema=True))
    hvae_dir = out / "runs" / "harmony_vae-forward-ecd_zero"
    assert _state_equal(pipe.vae, TrainedRun.from_done(hvae_dir, read_done(hvae_dir)).load_model(ema=True))
    assert torch.equal(pipe.empty_prompt_embedding.embeds, unet_prompt_embeds(cfg))
    assert pipe.scheduler.config.timestep_spacing == "linspace"


def test_saved_pipeline_reloads_in_fresh_process_via_harmonize_cli(assembled, smoke_data_root, tmp_path):
    from harmonylib.data.iharmony4 import read_split
    from harmonylib.pipeline import DiffHarmonyPipeline

    cfg, out, dest = assembled
    sample = read_split(smoke_data_root, "test")[0]
    result = tmp_path / "harmonized.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARMONYLIB_HOME": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "harmonylib", "harmonize", "--pipeline", str(dest), "--image", str(sample.composite),
         "--mask", str(sample.mask), "--out", str(result), "--quiet"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = np.asarray(Image.open(result).convert("RGB"))
    composite = load_rgb(sample.composite)
    assert got.shape == (composite.height, composite.width, 3)
    # same result as this process's own load of the folder, with the CLI's per-image seed
    pipe = DiffHarmonyPipeline.from_pretrained(dest)
    pipe.set_progress_bar_config(disable=True)
    want = pipe(
        composite, load_mask_l(sample.mask), generator=make_generator(derive_seed(0, sample.composite.stem))
    )
    diff = np.abs(got.astype(int) - np.asarray(want.images[0]).astype(int))
    assert diff.max() <= 1


def test_default_folder_is_the_harmonize_default():
    from harmonylib.harmonize_cli import default_pipeline_dir

    assert pipeline_dir(load_config("mini")) == default_pipeline_dir()
    assert pipeline_dir(load_config("mini"), "inverse", harmony_vae=False).name == "pipeline-inverse-sd_vae"


def test_cli_inverse_plain_vae(smoke_data_root, tmp_path, capsys):
    out = tmp_path / "results"
    dest = tmp_path / "inverse_pipe"
    rc = assemble.main(["--profile", "smoke", "--data-root", str(smoke_data_root), "--results-dir", str(out),
                        "--direction", "inverse", "--no-harmony-vae", "--out", str(dest), "--no-progress"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    index = json.loads((dest / "model_index.json").read_text())
    assert index["direction"] == "inverse" and index["vae"][1] == "AutoencoderKL"
    assert read_done(out / "runs" / "unet-inverse")["status"] == "completed"
    assert not (out / "runs" / "harmony_vae-inverse-ecd_zero").exists()  # no Harmony-VAE was asked for
    # the plain VAE is the one the UNet was trained on
    from harmonylib.pipeline import DiffHarmonyPipeline

    cfg = _smoke(smoke_data_root)
    assert _state_equal(DiffHarmonyPipeline.from_pretrained(dest).vae, base_vae(cfg, "unet"))


def test_cli_errors(capsys):
    assert assemble.main(["--profile", "nonsense"]) == 2
    assert "unknown profile" in capsys.readouterr().err
    assert assemble.main(["--profile", "smoke", "--unet", "adopted"]) == 2
    assert "unet='adopted' needs" in capsys.readouterr().err


@pytest.mark.parametrize("arch", ["tiny", "mini"])
def test_prompt_embeds_match_the_unet_recipe(smoke_data_root, arch):
    from harmonylib.training.recipes import build_unet_spec

    cfg = _smoke(smoke_data_root, **{"train.unet.arch": arch})
    assert torch.equal(unet_prompt_embeds(cfg), build_unet_spec(cfg).objective.keywords["prompt_embeds"])


def _committed_like_folder(root: Path) -> Path:
    """A folder laid out like the committed mini weights: unet/ and empty_prompt_embedding/."""
    from harmonylib.models.tiny import build_tiny_unet, tiny_empty_prompt_embedding

    folder = root / "weights" / "mini"
    build_tiny_unet(123).save_pretrained(folder / "unet")
    tiny_empty_prompt_embedding(7).save_pretrained(folder / "empty_prompt_embedding")
    return folder


def test_adopted_unet_for_forward_only(smoke_data_root, tmp_path, monkeypatch):
    from diffusers import UNet2DConditionModel

    from harmonylib.training.recipes import build_unet_spec

    folder = _committed_like_folder(tmp_path)
    # init alone is a starting point, trained on; adopt names the UNet used as it is
    assert assemble.adopted_unet_dir(_smoke(smoke_data_root, **{"train.unet.init": str(folder)})) is None
    cfg = _smoke(smoke_data_root, **{"train.unet.init": str(folder), "train.unet.adopt": str(folder)})
    out = tmp_path / "results"
    assert assemble.adopted_unet_dir(cfg) == (folder / "unet").resolve()
    with pytest.raises(FileNotFoundError, match="holds no UNet config.json"):
        assemble.adopted_unet_dir(_smoke(smoke_data_root, **{"train.unet.adopt": str(tmp_path)}))

    pipe = assemble_pipeline(cfg, harmony_vae=False, out_dir=out)
    assert pipe.assembly_sources["unet"]["kind"] == "adopted"
    assert _state_equal(pipe.unet, UNet2DConditionModel.from_pretrained(folder / "unet"))
    assert torch.equal(
        pipe.empty_prompt_embedding.embeds, build_unet_spec(cfg).objective.keywords["prompt_embeds"]
    )
    assert not (out / "runs" / "unet-forward").exists()  # nothing trained

    trained = assemble_pipeline(cfg, harmony_vae=False, out_dir=out, unet="trained")
    assert (
        trained.assembly_sources["unet"]["kind"] == "run"
        and (out / "runs" / "unet-forward" / "DONE").is_file()
    )
    inverse = assemble_pipeline(cfg, "inverse", harmony_vae=False, out_dir=out)
    assert inverse.assembly_sources["unet"]["kind"] == "run" and inverse.config.direction == "inverse"
    with pytest.raises(ValueError, match="unet='adopted' needs direction='forward'"):
        assemble_pipeline(cfg, "inverse", harmony_vae=False, out_dir=out, unet="adopted")


def test_same_latent_space():
    from harmonylib.models.harmony_vae import HarmonyVAE
    from harmonylib.models.tiny import build_tiny_vae

    vae = build_tiny_vae(0)
    assert same_latent_space(vae, build_tiny_vae(0))
    assert same_latent_space(HarmonyVAE.from_vae(vae), vae)
    assert not same_latent_space(vae, build_tiny_vae(1))


def test_mismatched_latent_space_warns(smoke_data_root, tmp_path):
    # smoke: the UNet's random base VAE and the Harmony-VAE's differ unless they share a seed
    cfg = _smoke(smoke_data_root)
    if same_latent_space(base_vae(cfg, "harmony_vae"), base_vae(cfg, "unet")):
        pytest.skip("the smoke profile's UNet and Harmony-VAE share their base VAE")
    with pytest.warns(LatentSpaceMismatchWarning, match="encoder differs"):
        assemble_pipeline(cfg, out_dir=tmp_path / "results")

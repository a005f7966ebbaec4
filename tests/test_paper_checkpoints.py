"""The paper profile adopts DiffHarmony's released UNet from the authors' bundle (paper §5.2).

A tiny fixture in the authors' layout (docs/paper_checkpoints.md): ``checkpoints/base/`` (an
SD-inpainting-style folder of ``.bin`` pickles whose ``unet/`` is DiffHarmony's UNet),
``condition_vae/``, ``sd-vae-ft-mse/`` and SD's ``stable-diffusion-inpainting/``, all tiny random
models saved as diffusers folders with the authors' key names. ``harmonylib assemble --profile
paper`` then builds the pipeline from them, as the doc's one command says.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from PIL import Image
from test_loading import _perturb_skips, _save_bin, write_authors_layout

from harmonylib import assemble
from harmonylib.assemble import read_assembly
from harmonylib.config import load_config
from harmonylib.models.tiny import build_tiny_harmony_vae, build_tiny_unet, build_tiny_vae
from harmonylib.paths import HOME_ENV
from harmonylib.pipeline import DiffHarmonyPipeline

RELEASED_UNET = "checkpoints/base/unet"


def _state_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def authors_home(tmp_path, monkeypatch):
    """A project home holding the authors' checkpoints where the paper profile looks for them."""
    home = tmp_path / "home"
    ckpt = home / "checkpoints"
    vae = build_tiny_vae(seed=0)
    released = build_tiny_unet(seed=11)  # "DiffHarmony's released UNet"
    embeds = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(5))
    paths = write_authors_layout(
        ckpt,
        None,
        vae,
        _perturb_skips(build_tiny_harmony_vae(seed=0, vae=vae)),
        vae,
        embeds,
        base_unet=released,
    )
    # SD-inpainting: the same layout with its own (untrained-for-harmonization) UNet
    sd = ckpt / "stable-diffusion-inpainting"
    shutil.copytree(paths["base"], sd)
    shutil.rmtree(sd / "unet")
    _save_bin(build_tiny_unet(seed=12), sd / "unet")
    monkeypatch.setenv(HOME_ENV, str(home))
    return {"home": home, "released": released, "vae": vae, "embeds": embeds, **paths}


def test_paper_profile_adopts_the_released_unet_by_default():
    paper = load_config("paper")
    assert paper.train.unet.adopt == RELEASED_UNET
    assert paper.train.unet.init == "checkpoints/stable-diffusion-inpainting"  # retraining starts here
    assert load_config("paper", {"train.unet.adopt": None}).train.unet.adopt is None  # retraining: an option
    # smoke trains its forward UNet; mini adopts its committed one; pretraining adopts none
    assert load_config("smoke").train.unet.adopt is None
    assert load_config("mini").train.unet.adopt == "harmonylib/weights/mini/unet"
    for profile in ("smoke", "mini", "paper"):
        assert load_config(profile).pretrain.unet.adopt is None


def test_assemble_paper_from_the_authors_layout(authors_home, capsys):
    """The doc's command with --no-harmony-vae: DiffHarmony from the release, nothing trained."""
    home = authors_home["home"]
    assert assemble.main(["--profile", "paper", "--no-harmony-vae", "--no-progress"]) == 0
    dest = home / "results" / "paper" / "runs" / "pipeline-sd_vae"
    assert f"{dest}: unet adopted, vae base" in capsys.readouterr().out
    sources = read_assembly(dest)
    assert sources["unet"]["kind"] == "adopted"
    assert sources["unet"]["path"] == str((home / RELEASED_UNET).resolve())
    assert not (home / "results" / "paper" / "runs" / "unet-forward").exists()  # nothing retrained

    pipe = DiffHarmonyPipeline.from_pretrained(dest)
    assert _state_equal(pipe.unet, authors_home["released"])  # the released UNet, as it is
    assert not _state_equal(
        pipe.unet, UNet2DConditionModel.from_pretrained(home / "checkpoints/stable-diffusion-inpainting/unet")
    )
    assert _state_equal(pipe.vae, AutoencoderKL.from_pretrained(authors_home["vae"]))  # sd-vae-ft-mse
    # the empty prompt comes from SD-inpainting (train.unet.init), cached beside it
    assert torch.equal(pipe.empty_prompt_embedding.embeds.detach(), authors_home["embeds"])
    img = Image.new("RGB", (64, 64), (120, 60, 30))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    out = pipe(img, mask, num_inference_steps=2, size=64, size_mode="square").images[0]
    assert out.size == (64, 64)


def test_assemble_paper_with_harmony_vae(authors_home, iharmony4_root, capsys):
    """The full command: the adopted UNet and a Harmony-VAE trained from sd-vae-ft-mse (one step here)."""
    home = authors_home["home"]
    sets = ["train.harmony_vae.loop.max_steps=1", "train.harmony_vae.loop.batch_size=2",
            "train.harmony_vae.loop.mixed_precision='no'", "train.harmony_vae.resolution=32"]  # fmt: skip
    argv = ["--profile", "paper", "--data-root", str(iharmony4_root), "--cpu", "--no-progress"]
    assert assemble.main(argv + [a for s in sets for a in ("--set", s)]) == 0
    sources = read_assembly(home / "results" / "paper" / "runs" / "pipeline")
    assert sources["unet"]["kind"] == "adopted" and sources["vae"]["kind"] == "run"
    assert sources["latent_space_match"]  # the Harmony-VAE encodes as the UNet's VAE does


def test_missing_release_says_where_it_goes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    assert assemble.main(["--profile", "paper", "--no-harmony-vae", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "train.unet.adopt = 'checkpoints/base/unet'" in err
    assert "docs/paper_checkpoints.md" in err and "--set train.unet.adopt=null" in err

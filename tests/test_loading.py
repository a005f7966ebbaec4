"""Loading pipelines: save_pretrained round trip (fresh process) and the authors' folder layout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel

from harmonylib.models.harmony_vae import HarmonyVAE
from harmonylib.models.scheduler import make_scheduler
from harmonylib.models.tiny import (
    build_tiny_harmony_vae,
    build_tiny_pipeline,
    build_tiny_unet,
    build_tiny_vae,
)
from harmonylib.models.unet import EMPTY_PROMPT_EMBEDS_FILE, EmptyPromptEmbedding, save_empty_prompt_embeds
from harmonylib.pipeline import DiffHarmonyPipeline, load_vae
from harmonylib.reproducibility import make_generator

REPO = Path(__file__).resolve().parents[1]

# model_index.json of runwayml/stable-diffusion-inpainting, the authors' checkpoints/base root
SD_INPAINT_MODEL_INDEX = {
    "_class_name": "StableDiffusionInpaintPipeline",
    "_diffusers_version": "0.6.0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}

# The SD-inpainting scheduler config as released (an old PNDM config: no timestep_spacing key)
SD_INPAINT_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}


def _save_bin(model, folder: Path) -> None:
    """Write a model as the authors' base/ holds it: config.json + a torch.save'd state dict."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_config(folder)
    torch.save(model.state_dict(), folder / "diffusion_pytorch_model.bin")


def _perturb_skips(vae: HarmonyVAE, seed: int = 7) -> HarmonyVAE:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in vae.added_skip_convs():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.1)
    return vae


def write_authors_layout(
    root: Path, unet, base_vae, harmony_vae, ft_vae, embeds, cache: bool = True, base_unet=None
) -> dict:
    """The released layout: SD-inpainting base (.bin), a fine-tuned UNet, condition_vae, sd-vae-ft-mse.

    ``unet=None`` writes no fine-tuned UNet folder; ``base_unet`` defaults to a tiny random UNet.
    """
    base = root / "base"
    base.mkdir(parents=True)
    (base / "model_index.json").write_text(json.dumps(SD_INPAINT_MODEL_INDEX))
    _save_bin(base_unet if base_unet is not None else build_tiny_unet(seed=123), base / "unet")
    _save_bin(base_vae, base / "vae")
    (base / "scheduler").mkdir()
    (base / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD_INPAINT_SCHEDULER))
    for sub, name in (("text_encoder", "config.json"), ("tokenizer", "vocab.json"), ("safety_checker", "config.json"),
                      ("feature_extractor", "preprocessor_config.json")):  # fmt: skip
        (base / sub).mkdir()
        (base / sub / name).write_text("{}")  # present but never loaded (needs transformers)
    if cache:
        save_empty_prompt_embeds(base / EMPTY_PROMPT_EMBEDS_FILE, embeds)
    if unet is not None:
        unet.save_pretrained(root / "unet" / "weights-100")  # a trainer's weights-N folder (safetensors)
    harmony_vae.save_pretrained(root / "condition_vae")
    cfg_path = root / "condition_vae" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["_class_name"] = "ConditionVAE"  # as the authors' folder says
    for key in ("skip_init", "mask_conv_init"):  # keys the authors' config lacks
        cfg.pop(key, None)
    cfg_path.write_text(json.dumps(cfg))
    ft_vae.save_pretrained(root / "sd-vae-ft-mse")
    return {"base": base, "unet": root / "unet" / "weights-100", "cvae": root / "condition_vae",
            "vae": root / "sd-vae-ft-mse"}  # fmt: skip


@pytest.fixture(scope="module")
def authors(tmp_path_factory):
    root = tmp_path_factory.mktemp("authors")
    vae = build_tiny_vae(seed=0)
    unet = build_tiny_unet(seed=1)
    hvae = _perturb_skips(build_tiny_harmony_vae(seed=0, vae=vae))
    embeds = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(2))
    paths = write_authors_layout(root, unet, vae, hvae, vae, embeds)
    expected = DiffHarmonyPipeline(
        vae=hvae, unet=unet, scheduler=make_scheduler(SD_INPAINT_SCHEDULER),
        empty_prompt_embedding=EmptyPromptEmbedding.from_tensor(embeds),
    )  # fmt: skip
    return paths, expected


def _inputs():
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[8:40, 16:48] = 255
    return img, mask


def _run(p: DiffHarmonyPipeline) -> np.ndarray:
    img, mask = _inputs()
    p.set_progress_bar_config(disable=True)
    return p(img, mask, generator=make_generator(3), output_type="np").images


# ---- (a) save_pretrained / from_pretrained --------------------------------------------------------


def test_round_trip_in_a_fresh_process(tmp_path):
    pipe = build_tiny_pipeline(refinement=True, direction="inverse")
    _perturb_skips(pipe.vae)
    want = _run(pipe)
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["vae"] == ["harmonylib.models.harmony_vae", "HarmonyVAE"]
    assert index["empty_prompt_embedding"] == ["harmonylib.models.unet", "EmptyPromptEmbedding"]
    assert index["direction"] == "inverse"
    img, mask = _inputs()
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "mask.npy", mask)
    script = textwrap.dedent(
        """
        import sys, numpy as np, torch
        torch.set_num_threads(1)
        from harmonylib.pipeline import DiffHarmonyPipeline
        from harmonylib.reproducibility import make_generator
        d = sys.argv[1]
        p = DiffHarmonyPipeline.from_pretrained(d + "/pipe")
        p.set_progress_bar_config(disable=True)
        assert type(p.vae).__name__ == "HarmonyVAE" and p.config.direction == "inverse"
        assert p.refinement_unet is not None
        out = p(np.load(d + "/img.npy"), np.load(d + "/mask.npy"), generator=make_generator(3), output_type="np",
                direction="inverse").images
        np.save(d + "/out.npy", out)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), want, atol=1e-6)


def test_from_pretrained_errors(tmp_path, authors):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        DiffHarmonyPipeline.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json.*from_authors_layout"):
        DiffHarmonyPipeline.from_pretrained(tmp_path / "empty")
    with pytest.raises(ValueError, match="StableDiffusionInpaintPipeline.*from_authors_layout"):
        DiffHarmonyPipeline.from_pretrained(authors[0]["base"])

    pipe = build_tiny_pipeline()
    pipe.save_pretrained(tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / "unet")
    with pytest.raises(FileNotFoundError, match=r"unet.*component 'unet'"):
        DiffHarmonyPipeline.from_pretrained(tmp_path / "p")

    pipe.save_pretrained(tmp_path / "q")  # unet folder holding a VAE
    shutil.rmtree(tmp_path / "q" / "unet")
    shutil.copytree(tmp_path / "q" / "vae", tmp_path / "q" / "unet")
    index = json.loads((tmp_path / "q" / "model_index.json").read_text())
    index["unet"] = ["harmonylib.models.harmony_vae", "HarmonyVAE"]
    (tmp_path / "q" / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(TypeError, match=r"q.*component 'unet' must be a UNet2DConditionModel"):
        DiffHarmonyPipeline.from_pretrained(tmp_path / "q")


# ---- (b) the authors' layout ----------------------------------------------------------------------


def test_authors_layout_loads_and_matches(authors):
    paths, expected = authors
    pipe = DiffHarmonyPipeline.from_authors_layout(
        paths["base"], unet_dir=paths["unet"], harmony_vae_dir=paths["cvae"]
    )
    assert isinstance(pipe.vae, HarmonyVAE) and pipe.tokenizer is None and pipe.text_encoder is None
    pipe.scheduler.set_timesteps(5)
    assert pipe.scheduler.timesteps.tolist() == pytest.approx([999.0, 749.25, 499.5, 249.75, 0.0])
    np.testing.assert_allclose(_run(pipe), _run(expected), atol=1e-6)


def test_authors_layout_variants(authors, tmp_path):
    paths, _ = authors
    # plain DiffHarmony: the fine-tuned UNet with sd-vae-ft-mse; the base's .bin UNet by default
    plain = DiffHarmonyPipeline.from_authors_layout(
        paths["base"], unet_dir=paths["unet"], vae_dir=paths["vae"]
    )
    assert type(plain.vae) is AutoencoderKL
    base_only = DiffHarmonyPipeline.from_authors_layout(paths["base"], torch_dtype=torch.bfloat16)
    assert isinstance(base_only.unet, UNet2DConditionModel) and base_only.unet.dtype == torch.bfloat16
    assert base_only.empty_prompt_embedding.embeds.dtype == torch.bfloat16
    # the VAE class comes from config.json, not from the folder name
    shutil.copytree(paths["cvae"], tmp_path / "sd-vae-ft-mse")
    shutil.copytree(paths["vae"], tmp_path / "condition_vae")
    assert isinstance(load_vae(tmp_path / "sd-vae-ft-mse"), HarmonyVAE)
    assert type(load_vae(tmp_path / "condition_vae")) is AutoencoderKL
    with pytest.raises(ValueError, match=r"condition_vae.*'AutoencoderKL'.*harmony_vae"):
        DiffHarmonyPipeline.from_authors_layout(paths["base"], harmony_vae_dir=tmp_path / "condition_vae")
    # a saved-pipeline-style folder holding unet/ works as unet_dir
    plain.save_pretrained(tmp_path / "saved")
    again = DiffHarmonyPipeline.from_authors_layout(paths["base"], unet_dir=tmp_path / "saved")
    assert again.unet.config.in_channels == 9


def test_authors_layout_errors(authors, tmp_path, monkeypatch):
    paths, _ = authors
    with pytest.raises(FileNotFoundError, match="missing_base"):
        DiffHarmonyPipeline.from_authors_layout(tmp_path / "missing_base")
    with pytest.raises(FileNotFoundError, match="no_unet.*'unet'"):
        DiffHarmonyPipeline.from_authors_layout(paths["base"], unet_dir=tmp_path / "no_unet")
    with pytest.raises(ValueError, match="condition_vae.*component 'unet'"):
        DiffHarmonyPipeline.from_authors_layout(paths["base"], unet_dir=paths["cvae"])
    # no cached embedding and no transformers: a clear error
    uncached = tmp_path / "uncached"
    shutil.copytree(paths["base"], uncached)
    (uncached / EMPTY_PROMPT_EMBEDS_FILE).unlink()
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"transformers.*empty_prompt_embeds"):
        DiffHarmonyPipeline.from_authors_layout(uncached, cache_dir=tmp_path / "cache")
    # ... unless the embedding is given
    embeds = torch.zeros(1, 77, 32)
    p = DiffHarmonyPipeline.from_authors_layout(
        uncached, empty_prompt_embeds=embeds, cache_dir=tmp_path / "cache"
    )
    assert torch.equal(p.empty_prompt_embedding.embeds, embeds)


def test_pndm_scheduler_is_replaced_by_euler(authors):
    paths, _ = authors
    pipe = DiffHarmonyPipeline.from_authors_layout(paths["base"])
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert not isinstance(pipe.scheduler, PNDMScheduler)


# ---- full size -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_size_authors_layout_and_round_trip(tmp_path):
    """SD-1.5 inpainting UNet + SD VAE + Harmony-VAE at full size: write, reload, one 64 px forward."""
    from harmonylib.models.configs import SD_VAE_CONFIG
    from harmonylib.models.unet import build_unet

    torch.manual_seed(0)
    unet = build_unet()
    vae = AutoencoderKL(**SD_VAE_CONFIG)
    hvae = HarmonyVAE.from_vae(vae)
    embeds = torch.randn(1, 77, 768)
    paths = write_authors_layout(tmp_path / "a", None, vae, hvae, vae, embeds, base_unet=unet)  # .bin UNet
    del unet, hvae
    pipe = DiffHarmonyPipeline.from_authors_layout(paths["base"], harmony_vae_dir=paths["cvae"])
    assert len(pipe.unet.state_dict()) == 686 and len(pipe.vae.state_dict()) == 384
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    out = pipe(img, mask, generator=make_generator(0), output_type="np", size=64).images
    assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all()
    pipe.save_pretrained(tmp_path / "saved")
    del pipe  # one full-size UNet in memory at a time
    back = DiffHarmonyPipeline.from_pretrained(tmp_path / "saved")
    out2 = back(img, mask, generator=make_generator(0), output_type="np", size=64).images
    np.testing.assert_allclose(out2, out, atol=1e-5)

"""The mini pretraining recipe: smoke end to end, and the committed harmonylib/weights/mini."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harmonylib.config import load_config
from harmonylib.models.configs import MINI_UNET_CONFIG, MINI_VAE_CONFIG
from harmonylib.paths import resolve
from harmonylib.provenance import sha256_file
from harmonylib.training.pretrain import (
    COMPONENTS,
    INPAINTING_COMPONENT,
    PROVENANCE_FILE,
    components,
    file_hashes,
    pretrain_mini,
)

WEIGHTS = Path(__file__).resolve().parents[1] / "harmonylib" / "weights" / "mini"
MAX_BYTES = 40_000_000  # the cap on committed weights, base and released together ("at most 40 MB in all")
MAX_SHARD = 5_000_000  # every committed weight file stays under 5 MB
SD_SCALING_FACTOR = 0.18215


def _plain(v):
    return list(v) if isinstance(v, (list, tuple)) else v


def _check_folder(out: Path, comps: tuple[str, ...] = COMPONENTS) -> dict:
    for comp in comps:
        cfg_name = "scheduler_config.json" if comp == "scheduler" else "config.json"
        assert (out / comp / cfg_name).is_file(), f"{comp}/{cfg_name} missing"
        if comp != "scheduler":
            assert list((out / comp).glob("*.safetensors")), f"{comp} has no safetensors"
    rec = json.loads((out / PROVENANCE_FILE).read_text())
    # every file is listed, and every listed hash matches the bytes on disk
    assert rec["sha256"] == file_hashes(out)
    for rel, digest in rec["sha256"].items():
        assert sha256_file(out / rel) == digest, rel
    return rec


# ---- smoke: the same recipe, a few steps, into tmp ---------------------------------------------


def test_smoke_recipe_end_to_end(tmp_path, smoke_data_root):
    """Stages (a) VAE on photo crops, (b) scaling, (c) inpainting UNet, (d) forward UNet from (c)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from harmonylib.models.unet import EmptyPromptEmbedding

    cfg = load_config("smoke", {"data.root": str(smoke_data_root)})
    assert cfg.pretrain.route == "inpainting" and cfg.pretrain.autoencoder.data == "photo_crops"
    assert resolve(cfg.pretrain.out_dir) != WEIGHTS  # smoke never overwrites the committed weights
    out, runs = tmp_path / "weights", tmp_path / "runs"
    rec = pretrain_mini(cfg, out, progress=False, runs_dir=runs)
    comps = components(cfg)
    assert INPAINTING_COMPONENT in comps
    assert _check_folder(out, comps) == rec
    assert {p.name for p in out.iterdir()} == {*comps, PROVENANCE_FILE}

    vae = AutoencoderKL.from_pretrained(out / "vae")
    assert vae.config.scaling_factor == pytest.approx(rec["scaling_factor"])
    assert rec["scaling_factor"] == pytest.approx(1 / rec["latent_std"], rel=1e-5)
    assert "photo crops" in rec["scaling_factor_source"]
    assert next(vae.parameters()).dtype == torch.float32  # stored fp16, loaded fp32
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    assert unet.config.in_channels == 9
    emb = EmptyPromptEmbedding.from_pretrained(out / "empty_prompt_embedding").embeds
    assert emb.shape == (1, 77, unet.config.cross_attention_dim)
    sched = DDPMScheduler.from_pretrained(out / "scheduler")
    assert (sched.config.beta_schedule, sched.config.num_train_timesteps) == ("scaled_linear", 1000)

    # (d) started from (c): its run's config names the exported inpainting UNet as init
    inpaint = UNet2DConditionModel.from_pretrained(out / INPAINTING_COMPONENT)
    assert inpaint.config.in_channels == 9
    un_dir = Path(rec["runs"]["unet"]["run_dir"])
    run_cfg = json.loads((un_dir / "run.json").read_text())["run_config"]["train"]
    assert Path(run_cfg["init"]) == out / INPAINTING_COMPONENT and "-init" in un_dir.name
    # the inpainting stage trained on cached latents of its crops (one mask each), not on the VAE
    cache = list((tmp_path / "cache").glob("inpaint-latents-*"))
    assert len(cache) == 1 and (cache[0] / "LATENT_CACHE.json").is_file()
    assert json.loads((cache[0] / "LATENT_CACHE.json").read_text())["crops"] == 16

    q = rec["quality"]
    assert q["autoencoder_test"]["images"] == 2 * cfg.data.builtin.n_test
    assert set(q["unet_test"]) >= {"fg_weighted_loss", "eps_mse"}
    assert set(q["inpainting_test"]) >= {"eps_mse", "hole_eps_mse"}
    steps = {k: v["steps"] for k, v in rec["runs"].items()}
    assert steps == {"autoencoder": 4, "inpainting": 4, "unet": 4}
    assert set(rec["wall_times_s"]) == {
        "autoencoder_s",
        "scaling_s",
        "inpainting_s",
        "unet_s",
        "export_eval_s",
    }

    # resumable / reused: a second call trains nothing and exports identical weights
    before = {k: v for k, v in rec["sha256"].items()}
    again = pretrain_mini(cfg, out, progress=False, runs_dir=runs)
    assert again["sha256"] == before
    assert again["runs"] == rec["runs"]


def test_smoke_scratch_route_keeps_the_earlier_recipe(tmp_path, smoke_data_root):
    """``route: scratch`` + ``autoencoder.data: harmony``: no inpainting stage, UNet from random init."""
    cfg = load_config(
        "smoke",
        {
            "data.root": str(smoke_data_root),
            "pretrain.route": "scratch",
            "pretrain.autoencoder.data": "harmony",
        },
    )
    out = tmp_path / "weights"
    rec = pretrain_mini(cfg, out, progress=False, runs_dir=tmp_path / "runs")
    assert components(cfg) == COMPONENTS
    assert {p.name for p in out.iterdir()} == {*COMPONENTS, PROVENANCE_FILE}
    assert set(rec["runs"]) == {"autoencoder", "unet"} and "inpainting_test" not in rec["quality"]
    run_cfg = json.loads((Path(rec["runs"]["unet"]["run_dir"]) / "run.json").read_text())["run_config"]
    assert run_cfg["train"]["init"] is None
    assert "composites and reals" in rec["scaling_factor_source"]


# ---- the committed weights ------------------------------------------------------------------------


def test_committed_weights_match_their_provenance():
    rec = _check_folder(WEIGHTS)
    files = list(WEIGHTS.rglob("*.safetensors"))
    assert sum(f.stat().st_size for f in files) <= MAX_BYTES  # base weights and the release together
    assert all(f.stat().st_size < MAX_SHARD for f in files)
    assert rec["weight_bytes"] == sum(
        f.stat().st_size for f in files if "released" not in f.relative_to(WEIGHTS).parts
    )
    assert rec["profile"] == "mini" and rec["config"]["pretrain"]["out_dir"] == "harmonylib/weights/mini"
    assert rec["runs"]["autoencoder"]["status"] == rec["runs"]["unet"]["status"] == "completed"
    assert rec["runs"]["inpainting"]["status"] == "completed" and rec["route"] == "inpainting"
    # the only weights committed anywhere in the package
    pkg = WEIGHTS.parents[1]
    committed = {p for ext in ("safetensors", "bin", "pt", "pth", "ckpt") for p in pkg.rglob(f"*.{ext}")}
    assert committed == set(WEIGHTS.rglob("*.safetensors"))


def test_mini_profile_loads_the_committed_weights():
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from harmonylib.training.recipes import load_prompt_embeds

    cfg = load_config("mini")
    tr = cfg.train
    assert resolve(tr.unet.adopt) == WEIGHTS / "unet"  # the released forward UNet, adopted as it is
    assert resolve(tr.unet.init) == WEIGHTS / "inpainting_unet"  # inverse / Table 2 UNets start here
    assert resolve(tr.unet.vae) == resolve(tr.harmony_vae.vae) == WEIGHTS / "vae"
    assert resolve(cfg.pretrain.out_dir) == WEIGHTS

    vae = AutoencoderKL.from_pretrained(resolve(tr.harmony_vae.vae))
    for k in ("block_out_channels", "layers_per_block", "latent_channels", "norm_num_groups"):
        assert _plain(vae.config[k]) == _plain(MINI_VAE_CONFIG[k]), k
    assert vae.config.scaling_factor != SD_SCALING_FACTOR and vae.config.scaling_factor > 0
    for folder in (resolve(tr.unet.adopt), resolve(tr.unet.init)):
        unet = UNet2DConditionModel.from_pretrained(folder)
        for k in ("block_out_channels", "in_channels", "cross_attention_dim", "down_block_types"):
            assert _plain(unet.config[k]) == _plain(MINI_UNET_CONFIG[k]), k
    assert load_prompt_embeds(WEIGHTS).shape == (1, 77, MINI_UNET_CONFIG["cross_attention_dim"])

    # one pass of the pipeline's path at the ladder's "512" rung: 64 px -> a 16x16x4 latent (f4)
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor  # (1, 4, 16, 16)
        eps = unet(
            torch.cat([z, torch.ones(1, 1, 16, 16), z], 1),
            10,
            encoder_hidden_states=load_prompt_embeds(WEIGHTS),
        ).sample
    assert z.shape == (1, 4, 16, 16) and eps.shape == (1, 4, 16, 16) and torch.isfinite(eps).all()


def test_mini_harmony_vae_starts_from_the_committed_vae():
    from diffusers import AutoencoderKL

    from harmonylib.training.recipes import build_harmony_vae_model

    hvae = build_harmony_vae_model(load_config("mini"))
    base = AutoencoderKL.from_pretrained(WEIGHTS / "vae")
    assert hvae.config.scaling_factor == base.config.scaling_factor
    w = dict(base.named_parameters())["decoder.conv_out.weight"]
    assert torch.equal(dict(hvae.named_parameters())["decoder.conv_out.weight"], w)


def test_stage_configs_store_weight_paths_relative_to_the_home():
    # the run folder of stages (c) and (d) is named by the config hash: an absolute path of the
    # clone in it would retrain elsewhere instead of reusing the run (and make retrain's hash differ)
    from harmonylib.training.pretrain import inpainting_stage_config, unet_stage_config
    from harmonylib.training.runs import run_hash

    cfg = load_config("mini")
    vae, init = resolve("harmonylib/weights/mini/vae"), resolve("harmonylib/weights/mini/inpainting_unet")
    assert vae.is_absolute()
    u = unet_stage_config(cfg, vae, init).train.unet
    assert (u.vae, u.init) == ("harmonylib/weights/mini/vae", "harmonylib/weights/mini/inpainting_unet")
    assert inpainting_stage_config(cfg, vae).train.inpainting.vae == "harmonylib/weights/mini/vae"
    # the same run whether the caller passes the absolute or the relative path
    assert run_hash(unet_stage_config(cfg, vae, init), "unet") == run_hash(
        unet_stage_config(cfg, "harmonylib/weights/mini/vae", "harmonylib/weights/mini/inpainting_unet"),
        "unet",
    )

"""The 9-channel UNet input, the empty-prompt embedding and the schedulers."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from diffusers import DDPMScheduler, EulerAncestralDiscreteScheduler, PNDMScheduler

from harmonylib.models.scheduler import (
    DEFAULT_NUM_INFERENCE_STEPS,
    SD_DDPM_SCHEDULER_CONFIG,
    make_scheduler,
    make_training_scheduler,
)
from harmonylib.models.tiny import build_tiny_unet, tiny_empty_prompt_embedding
from harmonylib.models.unet import (
    SD15_INPAINT_UNET_CONFIG,
    EmptyPromptEmbedding,
    build_unet,
    load_or_compute_empty_prompt_embeds,
    prepare_mask_latents,
    prepare_unet_input,
    save_empty_prompt_embeds,
)

AUTHORS_TIMESTEPS = [999.0, 749.25, 499.5, 249.75, 0.0]  # official-implementation.md §3.1
SD_SIGMA_MAX = 14.6146  # sigma at t=999 of the SD scaled-linear schedule


def _sd_ddpm_leading() -> DDPMScheduler:
    """An SD-like DDPM scheduler as a recent diffusers saves it (with "leading" spacing)."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, timestep_spacing="leading", clip_sample=False,
    )  # fmt: skip


# ---- scheduler ---------------------------------------------------------------------------------


def test_euler_from_saved_ddpm_config_gives_authors_timesteps(tmp_path):
    base = _sd_ddpm_leading()
    base.save_pretrained(tmp_path)  # the saved config says "leading"
    reloaded = DDPMScheduler.from_pretrained(tmp_path)
    assert reloaded.config.timestep_spacing == "leading"

    # the trap: reloading as is gives another sampler
    naive = EulerAncestralDiscreteScheduler.from_config(reloaded.config)
    naive.set_timesteps(5)
    assert naive.timesteps.tolist() == [801.0, 601.0, 401.0, 201.0, 1.0]
    assert float(naive.init_noise_sigma) == pytest.approx(5.2309, abs=1e-3)

    sched = make_scheduler(reloaded.config)
    assert isinstance(sched, EulerAncestralDiscreteScheduler)
    assert sched.config.timestep_spacing == "linspace"
    sched.set_timesteps(DEFAULT_NUM_INFERENCE_STEPS)
    assert DEFAULT_NUM_INFERENCE_STEPS == 5
    assert sched.timesteps.tolist() == pytest.approx(AUTHORS_TIMESTEPS)
    assert float(sched.init_noise_sigma) == pytest.approx(SD_SIGMA_MAX, abs=1e-3)


def test_make_scheduler_accepts_instances_dicts_and_pndm():
    pndm = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                         skip_prk_steps=True, set_alpha_to_one=False)  # fmt: skip
    for base in (None, SD_DDPM_SCHEDULER_CONFIG, _sd_ddpm_leading(), pndm, dict(pndm.config)):
        s = make_scheduler(base)
        s.set_timesteps(5)
        assert s.timesteps.tolist() == pytest.approx(AUTHORS_TIMESTEPS)
    with pytest.raises(TypeError, match="base_config"):
        make_scheduler(42)


def test_training_scheduler_is_scaled_linear_ddpm():
    s = make_training_scheduler(
        PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    )
    assert isinstance(s, DDPMScheduler)
    assert s.config.beta_schedule == "scaled_linear"
    assert s.config.prediction_type == "epsilon"
    assert s.config.num_train_timesteps == 1000
    assert float(s.betas[0]) == pytest.approx(0.00085)
    assert float(s.betas[-1]) == pytest.approx(0.012)


# ---- UNet input --------------------------------------------------------------------------------


def test_prepare_unet_input_order_and_shapes():
    lat = torch.full((2, 4, 8, 6), 1.0)
    mask = torch.full((2, 1, 8, 6), 2.0)
    comp = torch.full((2, 4, 8, 6), 3.0)
    x = prepare_unet_input(lat, mask, comp)
    assert x.shape == (2, 9, 8, 6)
    assert x[:, :4].eq(1).all() and x[:, 4].eq(2).all() and x[:, 5:].eq(3).all()
    with pytest.raises(ValueError, match="spatial sizes differ"):
        prepare_unet_input(lat, mask[..., :4], comp)
    with pytest.raises(ValueError, match="channels"):
        prepare_unet_input(lat, comp, comp)


def test_prepare_mask_latents_is_nearest_binary():
    m = torch.zeros(1, 1, 64, 48)
    m[..., 16:40, 8:32] = 1.0
    ml = prepare_mask_latents(m, (8, 6))
    assert ml.shape == (1, 1, 8, 6)
    assert set(ml.unique().tolist()) == {0.0, 1.0}
    # F.interpolate "nearest" samples pixel floor(i * 8): rows 2..4, cols 1..3 are foreground
    expected = torch.zeros(8, 6)
    expected[2:5, 1:4] = 1
    assert torch.equal(ml[0, 0], expected)


def test_tiny_unet_takes_the_nine_channel_input():
    unet = build_tiny_unet()
    assert unet.config.in_channels == 9 and tuple(unet.config.block_out_channels) == (32, 64)
    emb = tiny_empty_prompt_embedding()(2)  # (2, 77, 32)
    out = unet(torch.randn(2, 9, 8, 8), 999.0, encoder_hidden_states=emb).sample
    assert out.shape == (2, 4, 8, 8)


def test_build_unet_rejects_other_input_widths():
    with pytest.raises(ValueError, match="in_channels=9"):
        build_unet(in_channels=4)


def test_sd15_inpainting_unet_on_meta_device():
    """Full SD-1.5 inpainting sizes without allocating memory."""
    with torch.device("meta"):
        unet = build_unet()
    sd = unet.state_dict()
    assert len(sd) == 686
    assert sum(p.numel() for p in unet.parameters()) == 859_535_364
    assert sd["conv_in.weight"].shape == (320, 9, 3, 3)
    assert sd["conv_out.weight"].shape == (4, 320, 3, 3)
    assert sd["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"].shape == (320, 768)
    assert unet.config.cross_attention_dim == SD15_INPAINT_UNET_CONFIG["cross_attention_dim"] == 768
    assert unet.config.sample_size * 8 == 512  # default processing size, the authors' 512


# ---- empty-prompt embedding --------------------------------------------------------------------


def test_empty_prompt_embedding_round_trip(tmp_path):
    emb = tiny_empty_prompt_embedding(seed=3)
    assert emb.embeds.shape == (1, 77, 32) and not emb.embeds.requires_grad
    assert emb(3).shape == (3, 77, 32)
    emb.save_pretrained(tmp_path / "e")
    back = EmptyPromptEmbedding.from_pretrained(tmp_path / "e")
    assert torch.equal(back.embeds, emb.embeds)
    with pytest.raises(ValueError, match=r"\(1, L, C\)"):
        EmptyPromptEmbedding.from_tensor(torch.zeros(2, 77, 8))


def _fake_sd_base(root):
    (root / "tokenizer").mkdir(parents=True)
    (root / "text_encoder").mkdir()
    (root / "text_encoder" / "config.json").write_text('{"hidden_size": 8}')
    return root


def test_cached_embedding_is_used_without_transformers(tmp_path):
    base = _fake_sd_base(tmp_path / "base")
    want = torch.randn(1, 77, 8)
    save_empty_prompt_embeds(base / "empty_prompt_embeds.safetensors", want)
    assert torch.equal(load_or_compute_empty_prompt_embeds(base, cache_dir=tmp_path / "cache"), want)


def test_missing_cache_and_transformers_is_a_clear_error(tmp_path, monkeypatch):
    base = _fake_sd_base(tmp_path / "base")
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(ImportError, match=r"transformers.*harmonylib\[text\]"):
        load_or_compute_empty_prompt_embeds(base, cache_dir=tmp_path / "cache")


def test_embedding_is_computed_once_and_cached(tmp_path, monkeypatch):
    """With a (fake) transformers: tokenize "" to 77 ids, take text_encoder(ids)[0], cache it."""
    calls = []

    class FakeTokenizer:
        model_max_length = 77

        @classmethod
        def from_pretrained(cls, path, **kw):
            return cls()

        def __call__(self, texts, padding, max_length, truncation, return_tensors):
            assert texts == [""] and padding == "max_length" and max_length == 77
            return types.SimpleNamespace(input_ids=torch.arange(77)[None])

    class FakeTextEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        @classmethod
        def from_pretrained(cls, path, **kw):
            calls.append(path)
            return cls()

        def forward(self, ids):
            return (ids[..., None].float().expand(-1, -1, 8) * self.w,)

    fake = types.ModuleType("transformers")
    fake.CLIPTokenizer, fake.CLIPTextModel = FakeTokenizer, FakeTextEncoder
    monkeypatch.setitem(sys.modules, "transformers", fake)
    base = _fake_sd_base(tmp_path / "base")
    e1 = load_or_compute_empty_prompt_embeds(base, cache_dir=tmp_path / "cache")
    assert e1.shape == (1, 77, 8) and e1[0, 5, 0] == 5
    assert (base / "empty_prompt_embeds.safetensors").is_file()
    e2 = load_or_compute_empty_prompt_embeds(base, cache_dir=tmp_path / "cache")
    assert torch.equal(e1, e2) and len(calls) == 1

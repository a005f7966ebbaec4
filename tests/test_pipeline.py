"""DiffHarmonyPipeline on tiny random-weight models: steps, sizes, RNG, dtypes and bad inputs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from harmonylib.io import ImageReadError
from harmonylib.models.tiny import build_tiny_pipeline
from harmonylib.pipeline import (
    DiffHarmonyPipeline,
    DiffHarmonyPipelineOutput,
    EmptyMaskWarning,
    FullMaskWarning,
    processing_size,
    to_uint8,
)
from harmonylib.reproducibility import make_generator


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : 3 * h // 4, w // 5 : 3 * w // 5] = 255
    return m


def _gens(*seeds: int) -> list[torch.Generator]:
    return [make_generator(s) for s in seeds]


@pytest.fixture(scope="module")
def pipe() -> DiffHarmonyPipeline:
    return build_tiny_pipeline()


@pytest.fixture(scope="module")
def perturbed_pipe() -> DiffHarmonyPipeline:
    """A tiny DiffHarmony++ whose skip convs are non-zero, so the condition changes the decode."""
    p = build_tiny_pipeline()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for conv in p.vae.added_skip_convs():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.1)
    return p


# ---- structure and outputs ---------------------------------------------------------------------


def test_components_and_defaults(pipe):
    assert pipe.uses_harmony_vae and pipe.vae_scale_factor == 8 and pipe.default_sample_size == 64
    assert pipe.config.direction == "forward"
    assert set(DiffHarmonyPipeline._optional_components) >= {"refinement_unet", "tokenizer", "text_encoder"}
    assert "unet" in DiffHarmonyPipeline.model_cpu_offload_seq


def test_recorded_default_size_survives_save_and_load(tmp_path):
    """A pipeline records its R_inf '1024' rung as its default size; a call without size uses it."""
    p = build_tiny_pipeline()
    c = p.components
    rec = DiffHarmonyPipeline(**{k: v for k, v in c.items() if v is not None}, default_size=128)
    assert rec.default_sample_size == 128 and p.default_sample_size == 64
    rec.save_pretrained(tmp_path / "p")
    back = DiffHarmonyPipeline.from_pretrained(tmp_path / "p")
    assert back.config.default_size == 128 and back.default_sample_size == 128
    img, m = _image(40, 40), _mask(40, 40)
    a = back(img, m, generator=make_generator(0), size_mode="square", output_type="np").images
    b = back(img, m, generator=make_generator(0), size=128, size_mode="square", output_type="np").images
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="multiple of the VAE's scale factor 8"):
        DiffHarmonyPipeline(**{k: v for k, v in c.items() if v is not None}, default_size=100)


def test_output_types_and_sizes(pipe):
    img, m = _image(40, 72), _mask(40, 72)
    out = pipe(img, m, generator=make_generator(0))
    assert isinstance(out, DiffHarmonyPipelineOutput) and out.images[0].size == (72, 40)  # input size
    arr = pipe(img, m, generator=make_generator(0), output_type="np").images
    assert arr.shape == (1, 40, 72, 3) and arr.dtype == np.float32 and 0 <= arr.min() and arr.max() <= 1
    pt = pipe(img, m, generator=make_generator(0), output_type="pt", return_dict=False)[0]
    assert pt.shape == (1, 3, 40, 72)
    np.testing.assert_allclose(pt.permute(0, 2, 3, 1).numpy(), arr, atol=1e-6)
    lat = pipe(img, m, generator=make_generator(0), output_type="latent").images
    assert lat.shape == (1, 4, 8, 14)  # keep_aspect: 40x72 -> 64x115.2 -> 64x112 -> latents /8
    sq = pipe(img, m, generator=make_generator(0), size_mode="square", output_type="np").images
    assert sq.shape == (1, 64, 64, 3)  # square: stays N x N unless asked
    sq2 = pipe(img, m, generator=make_generator(0), size_mode="square", resize_to_input=True, size=32).images[
        0
    ]
    assert sq2.size == (72, 40)


def test_processing_size_rules():
    assert processing_size((40, 72), "keep_aspect", None, None, None, 512) == (512, 920)
    assert processing_size((37, 53), "keep_aspect", 64, None, None, 512) == (64, 88)  # 91.7 -> 88
    assert processing_size((300, 200), "square", None, None, None, 512) == (512, 512)
    assert processing_size((300, 200), "keep_aspect", None, 96, 64, 512) == (96, 64)
    with pytest.raises(ValueError, match="both height and width"):
        processing_size((8, 8), "keep_aspect", None, 64, None, 512)
    with pytest.raises(ValueError, match="height == width"):
        processing_size((8, 8), "square", None, 64, 72, 512)


def test_to_uint8_rounds():
    x = np.array([0.0, 0.4 / 255, 0.6 / 255, 254.6 / 255, 1.0, 1.2])
    assert to_uint8(x).tolist() == [0, 0, 1, 255, 255, 255]  # truncation would give 254 for 254.6


# ---- the algorithm -----------------------------------------------------------------------------


def _manual_reference(p: DiffHarmonyPipeline, img: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """The documented algorithm and RNG draw order, written out by hand (64x64 input, square 64)."""
    g = make_generator(seed)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255 * 2 - 1  # (1, 3, 64, 64)
    m = torch.from_numpy((mask >= 128).astype(np.float32))[None, None]  # (1, 1, 64, 64)
    sched = p.scheduler
    sched.set_timesteps(5)
    z = randn_tensor((1, 4, 8, 8), generator=g, dtype=torch.float32) * sched.init_noise_sigma  # draw 1
    post = p.vae.encode(x).latent_dist
    comp = (post.mean + post.std * randn_tensor((1, 4, 8, 8), generator=g)) * 0.18215  # draw 2
    ml = torch.nn.functional.interpolate(m, size=(8, 8), mode="nearest")
    emb = p.empty_prompt_embedding.embeds
    for t in sched.timesteps:
        inp = torch.cat([sched.scale_model_input(z, t), ml, comp], dim=1)
        eps = p.unet(inp, t, encoder_hidden_states=emb).sample
        z = sched.step(eps, t, z, generator=g).prev_sample  # draw 3 (one per step)
    dec = p.vae.decode_with_cond(z / 0.18215, torch.cat([x, m], 1), generator=g).sample  # draw 4
    return (dec / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def test_matches_the_documented_algorithm_and_draw_order(perturbed_pipe):
    img, m = _image(64, 64, 3), _mask(64, 64)
    with torch.no_grad():
        want = _manual_reference(perturbed_pipe, img, m, seed=11)
    got = perturbed_pipe(
        img, m, generator=make_generator(11), output_type="np", keep_background=False
    ).images[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_unet_sees_scaled_latents_raw_mask_and_composite(pipe):
    seen = []
    hook = pipe.unet.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    try:
        pipe(_image(64, 64), _mask(64, 64), generator=make_generator(0), output_type="latent")
    finally:
        hook.remove()
    x0 = seen[0]
    assert x0.shape == (1, 9, 8, 8) and len(seen) == 5
    assert set(x0[:, 4].unique().tolist()) == {0.0, 1.0}  # mask not touched by scale_model_input
    assert 0.5 < float(x0[:, :4].std()) < 1.5  # z_T * sigma_max / sqrt(sigma_max^2 + 1) ~ N(0, 1)
    assert torch.equal(seen[0][:, 4:], seen[-1][:, 4:])  # condition is constant over the steps


def test_harmony_vae_is_used_and_zero_skips_equal_plain_vae(pipe, perturbed_pipe):
    img, m = _image(64, 64, 1), _mask(64, 64)
    kw = dict(output_type="np", keep_background=False)
    plain = build_tiny_pipeline(harmony_vae=False)
    assert not plain.uses_harmony_vae
    a = plain(img, m, generator=make_generator(5), **kw).images
    b = pipe(img, m, generator=make_generator(5), **kw).images  # zero-init skips: same decode
    c = perturbed_pipe(img, m, generator=make_generator(5), **kw).images
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(c - b).max() > 1e-3


# ---- determinism -------------------------------------------------------------------------------


def test_batch_of_four_equals_four_singles_in_any_order(perturbed_pipe, tmp_path):
    p = perturbed_pipe
    imgs = [_image(64, 64, 0), _image(48, 80, 1), _image(64, 64, 2), _image(37, 53, 3)]
    masks = [_mask(*i.shape[:2]) for i in imgs]
    seeds = [10, 11, 12, 13]
    singles = [
        p(i, m, generator=make_generator(s), output_type="np").images[0]
        for i, m, s in zip(imgs, masks, seeds, strict=True)
    ]
    batch = p(imgs, masks, generator=_gens(*seeds), output_type="np").images
    rev = p(imgs[::-1], masks[::-1], generator=_gens(*seeds[::-1]), output_type="np").images[::-1]
    for k in range(4):
        np.testing.assert_allclose(batch[k], singles[k], atol=1e-5)
        np.testing.assert_allclose(rev[k], singles[k], atol=1e-5)
    # written PNGs: within 1 LSB
    pil_single = p(imgs[0], masks[0], generator=make_generator(10)).images[0]
    pil_batch = p(imgs, masks, generator=_gens(*seeds)).images[0]
    pil_single.save(tmp_path / "a.png")
    pil_batch.save(tmp_path / "b.png")
    diff = np.abs(
        np.asarray(Image.open(tmp_path / "a.png"), int) - np.asarray(Image.open(tmp_path / "b.png"), int)
    )
    assert diff.max() <= 1
    other = p(imgs[0], masks[0], generator=make_generator(99), output_type="np").images[0]
    assert np.abs(other - singles[0]).max() > 1e-3  # the seed matters


def test_generator_arguments_are_checked(pipe):
    img, m = _image(16, 16), _mask(16, 16)
    with pytest.raises(ValueError, match="one generator per image"):
        pipe([img, img], [m, m], generator=make_generator(0))
    with pytest.raises(ValueError, match="2 generators for 3 images"):
        pipe([img] * 3, [m] * 3, generator=_gens(0, 1))


# ---- dtypes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_runs_on_cpu(dtype):
    """bf16 and fp16 run on CPU without dtype errors; noise is drawn in fp32, so results stay close."""
    p32 = build_tiny_pipeline()
    p = build_tiny_pipeline().to(dtype=dtype)
    assert p.unet.dtype == dtype and p.vae.dtype == dtype
    img, m = _image(64, 64), _mask(64, 64)
    a = p32(img, m, generator=make_generator(0), output_type="np", keep_background=False).images
    b = p(img, m, generator=make_generator(0), output_type="np", keep_background=False).images
    assert np.isfinite(b).all()
    assert np.abs(a - b).mean() < 0.05


# ---- background, direction, refinement ---------------------------------------------------------


def test_keep_background_pastes_the_input_exactly(pipe):
    img, m = _image(40, 56), _mask(40, 56)
    out = np.asarray(pipe(img, m, generator=make_generator(0)).images[0])
    bg = m < 128
    assert np.array_equal(out[bg], img[bg])
    raw = np.asarray(pipe(img, m, generator=make_generator(0), keep_background=False).images[0])
    assert not np.array_equal(raw[bg], img[bg])
    np.testing.assert_array_equal(raw[~bg], out[~bg])


def test_inverse_direction(pipe):
    real, m = _image(32, 32, 4), _mask(32, 32)
    with pytest.warns(UserWarning, match="trained for 'forward'"):
        out = pipe(real, m, generator=make_generator(0), direction="inverse").images[0]
    assert np.array_equal(np.asarray(out)[m < 128], real[m < 128])  # the real background is kept
    inv = build_tiny_pipeline(direction="inverse")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        inv(real, m, generator=make_generator(0))
    with pytest.raises(ValueError, match="direction"):
        pipe(real, m, direction="sideways")


def test_refinement_stage():
    p = build_tiny_pipeline(refinement=True)
    img, m = _image(48, 64), _mask(48, 64)
    out = p(
        img, m, generator=make_generator(0), size_mode="square", output_type="np", keep_background=False
    ).images
    assert out.shape == (1, 32, 32, 3)  # refinement size (tiny: 32; real: 256), as the authors save it
    no_ref = p(img, m, generator=make_generator(0), refine=False, size_mode="square", output_type="np").images
    assert no_ref.shape == (1, 64, 64, 3)
    full = p(img, m, generator=make_generator(0)).images[0]
    assert full.size == (64, 48)
    with pytest.raises(ValueError, match="no refinement_unet"):
        build_tiny_pipeline()(img, m, refine=True)


# ---- bad inputs --------------------------------------------------------------------------------


def test_size_mismatch_names_both_sizes(pipe):
    with pytest.raises(ValueError, match=r"image\[0\] is 40x30.*mask_image\[0\] is 41x30"):
        pipe(_image(30, 40), _mask(30, 41))


def test_soft_mask_is_thresholded_at_half(pipe):
    img = _image(32, 32)
    hard = _mask(32, 32)
    soft = np.where(hard > 0, 0.5, 0.49).astype(np.float32)  # 0.5 -> fg, 0.49 -> bg
    a = pipe(img, hard, generator=make_generator(0), output_type="np").images
    b = pipe(img, soft, generator=make_generator(0), output_type="np").images
    np.testing.assert_array_equal(a, b)


def test_empty_and_full_masks(pipe):
    img = _image(24, 40)
    with pytest.warns(EmptyMaskWarning, match="empty"):
        out = pipe([img, img], [np.zeros((24, 40), np.uint8), _mask(24, 40)], generator=_gens(0, 1)).images
    assert np.array_equal(np.asarray(out[0]), img)  # returned unchanged
    with pytest.warns(FullMaskWarning, match="whole image"):
        full = pipe(img, np.full((24, 40), 255, np.uint8), generator=make_generator(0)).images[0]
    assert full.size == (40, 24)


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "CMYK", "P"])
def test_pil_modes(pipe, mode):
    rgb = Image.fromarray(_image(24, 32))
    img = (
        Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
        if mode == "I;16"
        else rgb.convert(mode)
    )
    mask = Image.fromarray(_mask(24, 32), "L")
    out = pipe(img, mask, generator=make_generator(0)).images[0]
    assert out.size == (32, 24) and out.mode == "RGB"


def test_paths_exif_rotation_and_truncated_file(pipe, tmp_path):
    img = Image.fromarray(_image(24, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    img.save(tmp_path / "rot.jpg", exif=exif)
    Image.fromarray(_mask(40, 24)).save(tmp_path / "mask.png")  # drawn on the displayed (rotated) image
    out = pipe(str(tmp_path / "rot.jpg"), tmp_path / "mask.png", generator=make_generator(0)).images[0]
    assert out.size == (24, 40)

    buf = io.BytesIO()
    Image.fromarray(_image(64, 64)).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:200])
    with pytest.raises(ImageReadError, match="cut.png"):
        pipe(tmp_path / "cut.png", tmp_path / "mask.png")


def test_odd_sizes_and_argument_errors(pipe):
    out = pipe(_image(37, 53), _mask(37, 53), generator=make_generator(0)).images[0]
    assert out.size == (53, 37)
    img, m = _image(16, 16), _mask(16, 16)
    for kwargs, match in (
        ({"output_type": "jpeg"}, "output_type"),
        ({"size_mode": "crop"}, "size_mode"),
        ({"size": 30}, "size must be a positive multiple of 8"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"height": 64}, "both height and width"),
    ):
        with pytest.raises(ValueError, match=match):
            pipe(img, m, **kwargs)
    with pytest.raises(ValueError, match="2 images but 1 masks"):
        pipe([img, img], [m])
    with pytest.raises(TypeError, match="unsupported type"):
        pipe(42, m)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe(np.full((16, 16, 3), 2.0, np.float32), m)


def test_constructor_rejects_wrong_component_classes(pipe):
    comps = dict(pipe.components)
    with pytest.raises(TypeError, match="component 'vae'"):
        DiffHarmonyPipeline(**{**comps, "vae": pipe.unet})
    with pytest.raises(TypeError, match="component 'unet'"):
        DiffHarmonyPipeline(**{**comps, "unet": pipe.vae})
    with pytest.raises(TypeError, match="component 'empty_prompt_embedding'"):
        DiffHarmonyPipeline(**{**comps, "empty_prompt_embedding": torch.zeros(1, 77, 32)})


def test_different_input_sizes_sharing_a_processing_size(pipe):
    """40x56 and 80x112 both run at 64x88: one batch, each result back at its own size."""
    imgs = [_image(40, 56, 0), _image(80, 112, 1)]
    masks = [_mask(40, 56), _mask(80, 112)]
    out = pipe(imgs, masks, generator=_gens(0, 1), output_type="np").images
    assert isinstance(out, list) and out[0].shape == (40, 56, 3) and out[1].shape == (80, 112, 3)
    alone = pipe(imgs[1], masks[1], generator=make_generator(1), output_type="np").images[0]
    np.testing.assert_allclose(out[1], alone, atol=1e-5)

"""Training objectives on tiny tensors: values, directions, determinism, gradients."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harmonylib.models.scheduler import make_training_scheduler
from harmonylib.models.tiny import (
    build_tiny_harmony_vae,
    build_tiny_unet,
    build_tiny_vae,
    tiny_empty_prompt_embedding,
)
from harmonylib.training import objectives as obj


def _batch(b: int = 2, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, 1, size, size)
    mask[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return {
        "composite": torch.rand(b, 3, size, size, generator=g) * 2 - 1,
        "real": torch.rand(b, 3, size, size, generator=g) * 2 - 1,
        "mask": mask,
    }


# ---- foreground-weighted loss -----------------------------------------------------------------


def test_fg_weighted_mse_full_mask_is_plain_mse():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    ones = torch.ones(2, 1, 8, 8)
    assert torch.allclose(obj.fg_weighted_mse(pred, target, ones), F.mse_loss(pred, target))


def test_fg_weighted_mse_weights_and_clamp():
    pred, target = torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)  # squared error 1 everywhere
    half = torch.zeros(1, 1, 4, 4)
    half[..., :2, :] = 1  # ratio 1/2: mean(se*M) = 0.5, weight 2 -> foreground MSE 1
    assert obj.fg_weighted_mse(pred, target, half).item() == pytest.approx(1.0)
    one_px = torch.zeros(1, 1, 4, 4)
    one_px[..., 0, 0] = 1  # ratio 1/16: mean = 1/16, weight clamped to 5
    assert obj.fg_weighted_mse(pred, target, one_px).item() == pytest.approx(5 / 16)
    empty = torch.zeros(1, 1, 4, 4)  # no foreground: no loss, and no NaN
    assert obj.fg_weighted_mse(pred, target, empty).item() == 0.0


# ---- diffusion UNet ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_diffusion():
    vae = build_tiny_vae(0).requires_grad_(False)
    return {
        "vae": vae,
        "noise_scheduler": make_training_scheduler(),
        "prompt_embeds": tiny_empty_prompt_embedding(0).embeds.detach(),
    }


def test_diffusion_loss_is_deterministic_and_trains(tiny_diffusion):
    unet = build_tiny_unet(0)
    batch = _batch()
    loss_fn = functools.partial(obj.diffusion_loss, **tiny_diffusion)
    l1, logs = loss_fn(unet, batch, torch.Generator().manual_seed(3))
    l2, _ = loss_fn(unet, batch, torch.Generator().manual_seed(3))
    l3, _ = loss_fn(unet, batch, torch.Generator().manual_seed(4))
    assert l1.ndim == 0 and torch.isfinite(l1) and set(logs) == {"mse"}
    assert torch.equal(l1, l2) and not torch.equal(l1, l3)
    l1.backward()
    assert unet.conv_in.weight.grad is not None and unet.conv_in.weight.grad.abs().sum() > 0
    mse, _ = loss_fn(unet, batch, torch.Generator().manual_seed(3), loss="mse")
    assert mse.item() == pytest.approx(logs["mse"], rel=1e-5)


class _SpyUNet(nn.Module):
    """Records its 9-channel input; predicts zeros (so the loss is the noise's energy)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, t, encoder_hidden_states):
        self.inputs.append(x.detach().clone())
        return SimpleNamespace(sample=x[:, :4] * self.w)


def test_diffusion_loss_input_layout_and_direction(tiny_diffusion):
    batch = _batch()
    vae = tiny_diffusion["vae"]
    sf = vae.config.scaling_factor
    spy = _SpyUNet()
    for direction in ("forward", "inverse"):
        obj.diffusion_loss(
            spy,
            batch,
            torch.Generator().manual_seed(0),
            direction=direction,
            sample_posterior=False,
            **tiny_diffusion,
        )
    fwd, inv = spy.inputs
    assert fwd.shape == (2, 9, 8, 8)
    # channel 4 = nearest-downsampled mask; channels 5-8 = condition latents (mode, scaled)
    assert torch.equal(fwd[:, 4:5], F.interpolate(batch["mask"], size=(8, 8), mode="nearest"))
    with torch.no_grad():
        comp_lat = vae.encode(batch["composite"]).latent_dist.mode() * sf
        real_lat = vae.encode(batch["real"]).latent_dist.mode() * sf
    assert torch.allclose(fwd[:, 5:], comp_lat, atol=1e-6)  # forward: condition = composite
    assert torch.allclose(inv[:, 5:], real_lat, atol=1e-6)  # inverse: condition = real
    with pytest.raises(ValueError, match="direction must be one of"):
        obj.diffusion_loss(spy, batch, torch.Generator(), direction="sideways", **tiny_diffusion)


# ---- Harmony-VAE ------------------------------------------------------------------------------


def test_harmony_vae_loss_l2_l1_and_gradients():
    hvae = build_tiny_harmony_vae(0)
    hvae.set_trainable(train_decoder=True)
    batch = _batch()
    loss, logs = obj.harmony_vae_loss(hvae, batch, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(logs["mse"], rel=1e-6)
    l1, logs1 = obj.harmony_vae_loss(hvae, batch, torch.Generator().manual_seed(0), loss="l1")
    assert l1.item() == pytest.approx(logs1["l1"], rel=1e-6)
    loss.backward()
    # Zero-initialised skips still receive gradients (their inputs are non-zero); the frozen
    # SD encoder receives none.
    assert hvae.latent_skip_conv.weight.grad.abs().sum() > 0
    assert hvae.conditional_encoder.mid_block_skip_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in hvae.encoder.parameters())


class _SpyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, sample, cond, sample_posterior, generator):
        self.calls.append((sample, cond))
        return SimpleNamespace(sample=torch.zeros_like(sample))


def test_harmony_vae_loss_direction():
    batch = _batch()
    spy = _SpyVAE()
    obj.harmony_vae_loss(spy, batch, torch.Generator(), direction="forward")
    obj.harmony_vae_loss(spy, batch, torch.Generator(), direction="inverse")
    (s_f, c_f), (s_i, c_i) = spy.calls
    assert torch.equal(s_f, batch["real"]) and torch.equal(c_f[:, :3], batch["composite"])
    assert torch.equal(s_i, batch["composite"]) and torch.equal(c_i[:, :3], batch["real"])
    assert torch.equal(c_f[:, 3:], batch["mask"]) and c_f.shape[1] == 4


# ---- refinement, classifier, autoencoder ------------------------------------------------------


def test_refinement_loss_against_real():
    batch = _batch()
    batch["stage1"] = batch["real"] + 0.1

    class Identity(nn.Module):
        def forward(self, x):
            assert x.shape[1] == 7
            return SimpleNamespace(sample=x[:, :3])

    loss, logs = obj.refinement_loss(Identity(), batch)
    assert loss.item() == pytest.approx(0.01, rel=1e-4) and logs["stage1_mse"] == pytest.approx(
        0.01, rel=1e-4
    )


def test_imagenet_normalize_and_classifier_loss():
    white = torch.ones(1, 3, 2, 2)
    x = obj.imagenet_normalize(white)
    expect = (1 - torch.tensor(obj.IMAGENET_MEAN)) / torch.tensor(obj.IMAGENET_STD)
    assert torch.allclose(x[0, :, 0, 0], expect)

    class Brightness(nn.Module):  # logit of class 1 ("composite") = mean input value
        def forward(self, z):
            m = z.mean(dim=(1, 2, 3))
            return torch.stack([-m, m], dim=1)

    images = torch.cat([torch.ones(2, 3, 4, 4), -torch.ones(2, 3, 4, 4)])
    labels = torch.tensor([1, 1, 0, 0])
    loss, logs = obj.classifier_loss(Brightness(), {"images": images, "labels": labels})
    assert logs["accuracy"] == 1.0 and loss.item() < 0.2


def test_autoencoder_loss_runs():
    vae = build_tiny_vae(0)
    loss, logs = obj.autoencoder_loss(vae, _batch(), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and set(logs) == {"l1", "mse", "kl"}
    loss.backward()
    assert vae.decoder.conv_out.weight.grad is not None


class _VelocityOracle(nn.Module):
    """Knows the clean latents z0: returns the exact v (or eps) implied by its noisy input and t."""

    def __init__(self, z0: torch.Tensor, scheduler, kind: str):
        super().__init__()
        self.z0, self.kind = z0, kind
        self.abar = scheduler.alphas_cumprod.double()

    def forward(self, x, t, encoder_hidden_states):
        a = self.abar[t].view(-1, 1, 1, 1)  # (B, 1, 1, 1)
        zt, z0 = x[:, :4].double(), self.z0.double()
        noise = (zt - a.sqrt() * z0) / (1 - a).sqrt()
        out = noise if self.kind == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * z0
        return SimpleNamespace(sample=out.float())


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_diffusion_loss_target_follows_the_schedulers_prediction_type(tiny_diffusion, kind):
    batch = _batch()
    vae = tiny_diffusion["vae"]
    with torch.no_grad():
        z0 = vae.encode(batch["real"]).latent_dist.mode() * vae.config.scaling_factor  # (2, 4, 8, 8)
    settings = {**tiny_diffusion, "noise_scheduler": make_training_scheduler(prediction_type=kind)}
    right = _VelocityOracle(z0, settings["noise_scheduler"], kind)
    wrong = _VelocityOracle(
        z0, settings["noise_scheduler"], "v_prediction" if kind == "epsilon" else "epsilon"
    )
    for loss in ("mse", "fg_weighted"):
        g = torch.Generator().manual_seed(5)
        ok, _ = obj.diffusion_loss(right, batch, g, sample_posterior=False, loss=loss, **settings)
        g = torch.Generator().manual_seed(5)
        bad, _ = obj.diffusion_loss(wrong, batch, g, sample_posterior=False, loss=loss, **settings)
        assert ok.item() < 1e-8 and bad.item() > 1e-3
    with pytest.raises(ValueError, match="prediction_type 'sample' is not supported"):
        settings["noise_scheduler"] = make_training_scheduler(prediction_type="sample")
        obj.diffusion_loss(right, batch, torch.Generator(), **settings)

"""Refinement UNet (DiffHarmony stage 2): the authors' key layout and sizes, residual output, loading."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from harmonylib.models import (
    REFINEMENT_CONFIGS,
    TINY_REFINEMENT_CONFIG,
    RefinementUNet,
    build_refinement_unet,
)
from harmonylib.reproducibility import make_generator

# official-implementation.md §4: parameters with in_channels=7, and 232 tensors for every size.
EXPECTED_PARAMS = {"small": 22_870_211, "base": 91_402_627, "large": 365_454_083}


@pytest.mark.parametrize("size", ["small", "base", "large"])
def test_sizes_on_meta(size):
    with torch.device("meta"):
        model = build_refinement_unet(size, in_channels=7)
    sd = model.state_dict()
    assert len(sd) == 232
    n = sum(p.numel() for p in model.parameters())
    assert n == EXPECTED_PARAMS[size]
    assert round(n / 1e6, 2) == {"small": 22.87, "base": 91.40, "large": 365.45}[size]


def test_key_layout_on_meta():
    with torch.device("meta"):
        model = RefinementUNet(**REFINEMENT_CONFIGS["base"])
    keys = set(model.state_dict())
    modules = {k.rsplit(".", 1)[0] for k in keys}
    expected = {"conv_in", "conv_norm_out", "conv_out"}
    resnet = {"norm1", "conv1", "norm2", "conv2"}
    for i in range(4):
        expected |= {f"down_blocks.{i}.resnets.{r}.{m}" for r in range(2) for m in resnet}
        expected |= {f"up_blocks.{i}.resnets.{r}.{m}" for r in range(3) for m in resnet}
        expected |= {f"up_blocks.{i}.resnets.{r}.conv_shortcut" for r in range(3)}  # concat widens
    for i in range(3):
        expected |= {f"down_blocks.{i}.downsamplers.0.conv", f"up_blocks.{i}.upsamplers.0.conv"}
    expected |= {"down_blocks.1.resnets.0.conv_shortcut", "down_blocks.2.resnets.0.conv_shortcut"}
    expected |= {f"mid_block.resnets.{r}.{m}" for r in range(2) for m in resnet}
    expected |= {f"mid_block.attentions.0.{m}" for m in ("group_norm", "to_q", "to_k", "to_v", "to_out.0")}
    assert modules == expected
    assert not any("time_emb" in k for k in keys)  # no time embedding
    assert model.mid_block.attentions[0].heads == 1  # one head as wide as the last block


def test_unknown_size_lists_allowed():
    with pytest.raises(ValueError, match=r"'huge'.*\['small', 'base', 'large'\]"):
        build_refinement_unet("huge")


def test_forward_shape_and_input_residual():
    torch.manual_seed(0)
    model = RefinementUNet(**TINY_REFINEMENT_CONFIG)
    x = torch.randn(2, 7, 32, 32, generator=make_generator(0), requires_grad=True)
    out = model(x).sample
    assert out.shape == (2, 3, 32, 32)
    (tup,) = model(x, return_dict=False)
    assert torch.equal(tup, out)
    # With conv_out at zero, the output is the stage-1 image, and no gradient flows into the
    # input through the residual, which is detached (§4).
    with torch.no_grad():
        model.conv_out.weight.zero_()
        model.conv_out.bias.zero_()
    out = model(x).sample
    assert torch.equal(out, x[:, :3].detach())
    out.sum().backward()
    assert not x.grad.any()


def test_input_checks():
    model = RefinementUNet(**TINY_REFINEMENT_CONFIG)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 7, 20, 20))
    with pytest.raises(ValueError, match=r"\(B, 7, H, W\)"):
        model(torch.zeros(1, 4, 32, 32))


def test_gradient_checkpointing_same_grads():
    torch.manual_seed(0)
    model = RefinementUNet(**TINY_REFINEMENT_CONFIG)
    x = torch.randn(1, 7, 32, 32, generator=make_generator(1))

    def grads():
        model.zero_grad(set_to_none=True)
        model(x).sample.square().mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    model.enable_gradient_checkpointing()
    assert model.down_blocks[0].gradient_checkpointing
    ckpt = grads()
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("weights", ["pretrained", "safetensors", "bin"])
def test_loads_own_and_authors_folders(tmp_path, weights):
    torch.manual_seed(0)
    model = RefinementUNet(**TINY_REFINEMENT_CONFIG).eval()
    folder = tmp_path / "stage2"
    if weights == "pretrained":
        model.save_pretrained(folder)
    else:
        # the authors' layout: _class_name UNet2DCustom, their config keys (§4)
        folder.mkdir()
        cfg = {"_class_name": "UNet2DCustom", **json.loads(json.dumps(dict(model.config)))}
        (folder / "config.json").write_text(json.dumps(cfg))
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if weights == "safetensors":
            save_file(state, str(folder / "diffusion_pytorch_model.safetensors"))
        else:
            torch.save(state, folder / "diffusion_pytorch_model.bin")
    loaded = RefinementUNet.from_pretrained(folder).eval()
    x = torch.randn(1, 7, 32, 32, generator=make_generator(2))
    with torch.no_grad():
        assert torch.equal(model(x).sample, loaded(x).sample)
    assert loaded.config.in_channels == 7 and loaded.config.input_residual

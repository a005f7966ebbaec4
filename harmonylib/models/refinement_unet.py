"""The stage-2 refinement UNet of DiffHarmony (official-implementation.md §4; authors' ``UNet2DCustom``).

It is a diffusers-style UNet with no time embedding. It takes the 256-px stage-1 output together
with the mask and composite, ``[harmonized, mask, composite]`` (7 channels), and predicts a residual
on the harmonized image: ``out = net(x) + x[:, :3].detach()``. The parameter names follow the
authors' key for key. They are diffusers' ``UNet2DModel`` names minus ``time_proj``/``time_embedding``.
So the authors' ``.safetensors`` or ``.bin`` folders load through ``from_pretrained``. (The authors'
trainer accepted only ``.bin``, §10 item 13.)
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d import UNet2DOutput
from diffusers.models.unets.unet_2d_blocks import DownBlock2D, UNetMidBlock2D, UpBlock2D
from torch import nn

from harmonylib.models.configs import REFINEMENT_CONFIGS, get_config

REFINEMENT_SIZES = tuple(REFINEMENT_CONFIGS)


class RefinementUNet(ModelMixin, ConfigMixin):
    r"""DiffHarmony's refinement network (stage 2): a time-free UNet that predicts a residual.

    The config fields are those of the authors' ``configs/stage2_configs/*.json``.

    Parameters:
        sample_size (`int`): nominal input size (256); stored only, any multiple of 2^(n-1) works.
        in_channels (`int`, defaults to 7): 3 = harmonized only; 4 = + mask; 7 = + composite.
        out_channels (`int`, defaults to 3).
        down_block_types / up_block_types: ``DownBlock2D`` / ``UpBlock2D`` only.
        block_out_channels: widths per level.
        layers_per_block (`int`, defaults to 2): resnets per down block (up blocks have one more).
        mid_block_scale_factor, downsample_padding, act_fn, norm_num_groups, norm_eps: as in
            ``UNet2DModel``. ``downsample_padding=0`` is the authors' asymmetric pad.
        downsample_type / upsample_type: only ``"conv"``.
        attention_head_dim (`int` or None): None is one head as wide as the last block.
        add_attention (`bool`): self-attention in the mid block.
        input_residual (`bool`): add the (detached) first ``out_channels`` input channels to the output.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["ResnetBlock2D"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 256,
        in_channels: int = 7,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownBlock2D",) * 4,
        up_block_types: tuple[str, ...] = ("UpBlock2D",) * 4,
        block_out_channels: tuple[int, ...] = (128, 256, 512, 512),
        layers_per_block: int = 2,
        mid_block_scale_factor: float = 1.0,
        downsample_padding: int = 0,
        downsample_type: str = "conv",
        upsample_type: str = "conv",
        act_fn: str = "silu",
        attention_head_dim: int | None = None,
        norm_num_groups: int = 32,
        norm_eps: float = 1e-6,
        add_attention: bool = True,
        input_residual: bool = True,
    ):
        super().__init__()
        if any(t != "DownBlock2D" for t in down_block_types) or any(t != "UpBlock2D" for t in up_block_types):
            raise ValueError(
                f"only DownBlock2D/UpBlock2D are supported; got {list(down_block_types)}, {list(up_block_types)}"
            )
        if not len(down_block_types) == len(up_block_types) == len(block_out_channels):
            raise ValueError(
                "down_block_types, up_block_types and block_out_channels must have equal lengths"
            )
        if downsample_type != "conv" or upsample_type != "conv":
            raise ValueError("only downsample_type='conv' and upsample_type='conv' are supported")
        if input_residual and out_channels > in_channels:
            raise ValueError("input_residual needs out_channels <= in_channels")
        n = len(block_out_channels)
        resnet = dict(
            resnet_eps=norm_eps, resnet_act_fn=act_fn, resnet_groups=norm_num_groups, temb_channels=None
        )

        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)

        self.down_blocks = nn.ModuleList()
        out_ch = block_out_channels[0]
        for i in range(n):
            in_ch, out_ch = out_ch, block_out_channels[i]
            self.down_blocks.append(
                DownBlock2D(
                    in_channels=in_ch,
                    out_channels=out_ch,
                    num_layers=layers_per_block,
                    add_downsample=i < n - 1,
                    downsample_padding=downsample_padding,
                    **resnet,
                )
            )

        self.mid_block = UNetMidBlock2D(
            in_channels=block_out_channels[-1],
            output_scale_factor=mid_block_scale_factor,
            resnet_time_scale_shift="default",
            attention_head_dim=attention_head_dim
            if attention_head_dim is not None
            else block_out_channels[-1],
            add_attention=add_attention,
            **resnet,
        )

        self.up_blocks = nn.ModuleList()
        rev = list(reversed(block_out_channels))
        out_ch = rev[0]
        for i in range(n):
            prev_ch, out_ch = out_ch, rev[i]
            skip_ch = rev[min(i + 1, n - 1)]  # width of the shallowest skip this block concatenates
            self.up_blocks.append(
                UpBlock2D(
                    in_channels=skip_ch,
                    prev_output_channel=prev_ch,
                    out_channels=out_ch,
                    num_layers=layers_per_block + 1,
                    add_upsample=i < n - 1,
                    **resnet,
                )
            )

        self.conv_norm_out = nn.GroupNorm(
            num_channels=block_out_channels[0], num_groups=norm_num_groups, eps=norm_eps
        )
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, kernel_size=3, padding=1)

    def forward(self, sample: torch.Tensor, return_dict: bool = True) -> UNet2DOutput | tuple:
        """Refine a stage-1 output.

        Args:
            sample: (B, in_channels, H, W) = cat([harmonized, mask, composite]); the images are
                in [-1, 1]. H and W must be multiples of 2^(n-1) (8).
            return_dict: return ``UNet2DOutput`` or a 1-tuple.

        Returns:
            (B, out_channels, H, W), in [-1, 1] space and unclamped. With ``input_residual``,
            this is ``net(x) + x[:, :out_channels].detach()``.
        """
        f = 2 ** (len(self.config.block_out_channels) - 1)
        if sample.ndim != 4 or sample.shape[1] != self.config.in_channels:
            raise ValueError(
                f"sample must be (B, {self.config.in_channels}, H, W); got {tuple(sample.shape)}"
            )
        if sample.shape[-2] % f or sample.shape[-1] % f:
            raise ValueError(f"H and W must be multiples of {f}; got {tuple(sample.shape[-2:])}")
        x = sample
        hidden = self.conv_in(x)  # (B, C0, H, W)
        skips: tuple[torch.Tensor, ...] = (hidden,)
        for block in self.down_blocks:
            hidden, res = block(hidden, None)
            skips += res
        hidden = self.mid_block(hidden, None)  # (B, C[-1], H/f, W/f)
        for block in self.up_blocks:
            take = len(block.resnets)
            hidden = block(hidden, skips[-take:], None)  # concat skips, popping from the end
            skips = skips[:-take]
        hidden = self.conv_out(self.conv_act(self.conv_norm_out(hidden)))  # (B, out, H, W)
        if self.config.input_residual:
            # §4: the network learns a residual on the stage-1 image; no gradient into the input.
            hidden = hidden + x[:, : self.config.out_channels].detach()
        if not return_dict:
            return (hidden,)
        return UNet2DOutput(sample=hidden)


def build_refinement_unet(size: str = "base", in_channels: int = 7, **overrides: Any) -> RefinementUNet:
    """A randomly initialised refinement UNet of a named size (``small``, ``base`` or ``large``).

    Raises:
        ValueError: for an unknown ``size``; the message lists the allowed sizes.
    """
    if size not in REFINEMENT_CONFIGS:
        raise ValueError(f"unknown refinement size {size!r}; allowed: {list(REFINEMENT_SIZES)}")
    cfg = get_config(REFINEMENT_CONFIGS, size)
    cfg["in_channels"] = in_channels
    cfg.update(overrides)
    return RefinementUNet(**cfg)

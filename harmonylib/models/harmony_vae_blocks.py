"""The Harmony-VAE's building blocks: the conditional encoder E_c, the skip decoder, the skip plan.

Parameter names follow the authors' ``ConditionVAE`` key for key (official-implementation.md §1.1):
:class:`ConditionalEncoder` is diffusers ``Encoder`` plus ``add_conv_in``,
``down_block_skip_convs.{i}`` and ``mid_block_skip_conv``; :class:`SkipDecoder` is diffusers
``Decoder``, parameter for parameter, whose up blocks accept additive residuals. Assembled by
:class:`harmonylib.models.harmony_vae.HarmonyVAE`, which starts from an SD ``AutoencoderKL``
through :func:`copy_sd_vae_weights`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
from diffusers.models.autoencoders.vae import Decoder, Encoder
from torch import nn

# --------------------------------------------------------------------------------------------------
# Skip plan: which residual feeds which decoder resnet (official-implementation.md §1.3)
# --------------------------------------------------------------------------------------------------


def skip_plan(block_out_channels: Sequence[int], layers_per_block: int) -> list[dict[str, Any]]:
    """Describe every down-block skip residual, in the order the conditional encoder records them.

    The encoder records residual 0 (conv_in output), then every resnet output of each down
    block, then that block's downsampler output. That gives ``n·(L+1)`` residuals for ``n`` blocks
    of ``L`` resnets. Decoder up block ``j`` (level ``k = n-1-j``) has ``L+1`` resnets and takes the
    ``L+1`` residuals of level ``k``, popping from the end: resnet 0 gets the last one. The
    first residual of a level ``k ≥ 1`` is the downsampler output of block ``k-1``. It still has
    block ``k-1``'s width, so its skip conv changes channels ``C[k-1] → C[k]``. In the SD config
    these are indices 3 and 6 (§1.3 table).

    Args:
        block_out_channels: encoder block widths ``C[0..n-1]``.
        layers_per_block: resnets per encoder block ``L`` (the decoder has ``L+1``).

    Returns:
        One dict per residual index ``i``, with keys ``index``, ``in_channels``, ``out_channels``,
        ``downscale`` (the spatial divisor w.r.t. the image), ``source`` and ``added_after``
        (module paths in ``conditional_encoder`` / ``decoder``).
    """
    n, L = len(block_out_channels), layers_per_block
    plan: list[dict[str, Any]] = []
    for k in range(n):  # encoder level k == decoder up block n-1-k
        up = n - 1 - k
        for slot in range(L + 1):  # position within the level's group of L+1 residuals
            if slot == 0 and k == 0:
                source, c_in = "conv_in+add_conv_in", block_out_channels[0]
            elif slot == 0:
                source, c_in = f"down_blocks.{k - 1}.downsamplers.0", block_out_channels[k - 1]
            else:
                source, c_in = f"down_blocks.{k}.resnets.{slot - 1}", block_out_channels[k]
            plan.append(
                {
                    "index": k * (L + 1) + slot,
                    "in_channels": c_in,
                    "out_channels": block_out_channels[k],
                    "downscale": 2**k,
                    "source": source,
                    # popping from the end: the group's last residual feeds resnet 0
                    "added_after": f"up_blocks.{up}.resnets.{L - slot}",
                }
            )
    return plan


def _check_vae_block_types(down_block_types: Sequence[str], up_block_types: Sequence[str]) -> None:
    # The skip wiring walks ``resnets``/``downsamplers``/``upsamplers`` of these two block types
    # only (the authors' custom blocks mirror exactly these, §0 table).
    if any(t != "DownEncoderBlock2D" for t in down_block_types):
        raise ValueError(f"down_block_types must all be 'DownEncoderBlock2D', got {list(down_block_types)}")
    if any(t != "UpDecoderBlock2D" for t in up_block_types):
        raise ValueError(f"up_block_types must all be 'UpDecoderBlock2D', got {list(up_block_types)}")
    if len(down_block_types) != len(up_block_types):
        raise ValueError("down_block_types and up_block_types must have the same length")


def _default_conv_init_(conv: nn.Conv2d, generator: torch.Generator | None) -> None:
    """Re-draw ``conv`` with PyTorch's Conv2d default init using an explicit generator.

    The default is kaiming-uniform with ``a=√5`` on the weight, and U(±1/√fan_in) on the bias.
    """
    nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5), generator=generator)
    if conv.bias is not None:
        fan_in = conv.weight.shape[1] * conv.weight[0, 0].numel()
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(conv.bias, -bound, bound, generator=generator)


# --------------------------------------------------------------------------------------------------
# Conditional encoder E_c and skip decoder
# --------------------------------------------------------------------------------------------------


def _down_block_outputs(block: nn.Module, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Run a DownEncoderBlock2D, returning every resnet output and then the downsampler output."""
    outs = []
    for resnet in block.resnets:
        hidden = resnet(hidden, temb=None)
        outs.append(hidden)
    if block.downsamplers is not None:
        for downsampler in block.downsamplers:
            hidden = downsampler(hidden)
        outs.append(hidden)
    return tuple(outs)


def _up_block_with_skips(block: nn.Module, hidden: torch.Tensor, *residuals: torch.Tensor) -> torch.Tensor:
    """Run an UpDecoderBlock2D and add one residual after each resnet, popping from the end (§1.3)."""
    residuals = list(residuals)
    for resnet in block.resnets:
        hidden = resnet(hidden, temb=None) + residuals.pop()
    if block.upsamplers is not None:
        for upsampler in block.upsamplers:
            hidden = upsampler(hidden)
    return hidden


class ConditionalEncoder(Encoder):
    """E_c: the SD ``Encoder`` trunk, plus a mask input conv and zero-init skip projections.

    The parameter names are those of diffusers ``Encoder``, plus ``add_conv_in``,
    ``down_block_skip_convs.{i}`` and ``mid_block_skip_conv`` (official-implementation.md §1.1).
    """

    def __init__(
        self,
        in_channels: int = 3,
        additional_in_channels: int = 1,
        out_channels: int = 4,
        down_block_types: Sequence[str] = ("DownEncoderBlock2D",),
        block_out_channels: Sequence[int] = (64,),
        layers_per_block: int = 2,
        norm_num_groups: int = 32,
        act_fn: str = "silu",
        double_z: bool = True,
    ):
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=tuple(down_block_types),
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            act_fn=act_fn,
            double_z=double_z,
        )
        self.image_channels = in_channels
        self.additional_in_channels = additional_in_channels
        # The mask enters through its own 3×3 conv, summed with conv_in(image) (§1.2). That is a
        # 4-channel conv_in split by input channel, so the SD conv_in loads unchanged.
        self.add_conv_in = (
            nn.Conv2d(additional_in_channels, block_out_channels[0], kernel_size=3, stride=1, padding=1)
            if additional_in_channels > 0
            else None
        )
        self.down_block_skip_convs = nn.ModuleList(
            nn.Conv2d(p["in_channels"], p["out_channels"], kernel_size=1)
            for p in skip_plan(block_out_channels, layers_per_block)
        )
        self.mid_block_skip_conv = nn.Conv2d(block_out_channels[-1], block_out_channels[-1], kernel_size=1)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """Encode ``cond = cat([image, mask])`` into moments and projected skip residuals.

        Args:
            cond: (B, in_channels + additional_in_channels, H, W): image in [-1, 1], mask in {0, 1}.

        Returns:
            ``(moments, down_residuals, mid_residual)``. ``moments`` is (B, 2·latent, H/f, W/f),
            before quant_conv. ``down_residuals`` holds ``n·(L+1)`` tensors, each already passed
            through its skip conv, shaped as in :func:`skip_plan`. ``mid_residual`` is
            (B, C[-1], H/f, W/f).
        """
        checkpointing = torch.is_grad_enabled() and self.gradient_checkpointing
        image, extra = cond[:, : self.image_channels], cond[:, self.image_channels :]
        hidden = self.conv_in(image)  # (B, C0, H, W)
        if self.add_conv_in is not None:
            hidden = hidden + self.add_conv_in(extra)
        residuals = [hidden]  # residual #0 (§1.2 step 2)
        for block in self.down_blocks:
            if checkpointing:
                outs = self._gradient_checkpointing_func(
                    functools.partial(_down_block_outputs, block), hidden
                )
            else:
                outs = _down_block_outputs(block, hidden)
            residuals.extend(outs)
            hidden = outs[-1]
        if checkpointing:
            hidden = self._gradient_checkpointing_func(self.mid_block, hidden)
        else:
            hidden = self.mid_block(hidden)  # (B, C[-1], H/f, W/f)
        mid = hidden
        moments = self.conv_out(self.conv_act(self.conv_norm_out(hidden)))  # (B, 2·latent, H/f, W/f)
        down = tuple(conv(r) for conv, r in zip(self.down_block_skip_convs, residuals, strict=True))
        return moments, down, self.mid_block_skip_conv(mid)


class SkipDecoder(Decoder):
    """The diffusers ``Decoder`` (same parameters), whose forward also takes additive residuals (§1.3)."""

    def forward(
        self,
        sample: torch.Tensor,
        down_residuals: Sequence[torch.Tensor] | None = None,
        mid_residual: torch.Tensor | None = None,
        latent_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode ``sample``. Without residuals this is exactly diffusers ``Decoder.forward``.

        Args:
            sample: (B, latent, h, w), after post_quant_conv.
            down_residuals: ``sum(len(up.resnets))`` tensors, in :func:`skip_plan` order.
            mid_residual: (B, C[-1], h, w), added after ``mid_block``.

        Returns:
            (B, out_channels, h·f, w·f), unclamped, in [-1, 1] space.
        """
        if down_residuals is None and mid_residual is None:
            return super().forward(sample, latent_embeds)
        if latent_embeds is not None:
            raise ValueError("skip decoding supports norm_type='group' only (no latent_embeds)")
        down_residuals = list(down_residuals or ())
        expected = sum(len(block.resnets) for block in self.up_blocks)
        if len(down_residuals) != expected:
            raise ValueError(f"expected {expected} down residuals, got {len(down_residuals)}")
        checkpointing = torch.is_grad_enabled() and self.gradient_checkpointing

        sample = self.conv_in(sample)  # (B, C[-1], h, w)
        if checkpointing:
            sample = self._gradient_checkpointing_func(self.mid_block, sample)
        else:
            sample = self.mid_block(sample)
        if mid_residual is not None:
            sample = sample + mid_residual  # after mid_block (§1.3 step 1)
        sample = sample.to(next(iter(self.up_blocks.parameters())).dtype)  # §1.3 step 2
        for block in self.up_blocks:
            take = len(block.resnets)  # the last L+1 residuals feed this block
            block_res, down_residuals = down_residuals[-take:], down_residuals[:-take]
            if checkpointing:
                sample = self._gradient_checkpointing_func(
                    functools.partial(_up_block_with_skips, block), sample, *block_res
                )
            else:
                sample = _up_block_with_skips(block, sample, *block_res)
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))  # (B, out, H, W)
        return sample


def check_cond_shapes(config: Any, z: torch.Tensor, cond: torch.Tensor, f: int) -> None:
    """Raise ValueError unless ``cond`` fits the latent ``z`` of a Harmony-VAE with ``config``.

    ``z`` is (B, latent, h, w); ``cond`` is (B, in_channels + additional_in_channels, f·h, f·w),
    where ``f`` is the model's image pixels per latent pixel.
    """
    need = config.in_channels + config.additional_in_channels
    if cond.ndim != 4 or cond.shape[1] != need:
        raise ValueError(
            f"cond must be (B, {need}, H, W) = cat([image in [-1,1], mask in {{0,1}}]); got {tuple(cond.shape)}"
        )
    if z.ndim != 4 or z.shape[1] != config.latent_channels:
        raise ValueError(f"z must be (B, {config.latent_channels}, h, w); got {tuple(z.shape)}")
    if cond.shape[0] != z.shape[0] or tuple(cond.shape[-2:]) != (z.shape[-2] * f, z.shape[-1] * f):
        raise ValueError(
            f"cond must be exactly {f}x the latent size with the same batch: latent {tuple(z.shape)} "
            f"needs cond (B, {need}, {z.shape[-2] * f}, {z.shape[-1] * f}); got {tuple(cond.shape)}"
        )


# --------------------------------------------------------------------------------------------------
# Starting from an SD AutoencoderKL (official-implementation.md §1.5)
# --------------------------------------------------------------------------------------------------


def check_sd_style_vae(vae_config: dict[str, Any]) -> None:
    """Raise ValueError unless an ``AutoencoderKL`` config has SD's quant convs and mid-block attention."""
    for key, needed in (
        ("use_quant_conv", True),
        ("use_post_quant_conv", True),
        ("mid_block_add_attention", True),
    ):
        if vae_config.get(key, needed) != needed:
            raise ValueError(f"from_vae needs an SD-style AutoencoderKL with {key}={needed}")


def copy_sd_vae_weights(model: nn.Module, vae: nn.Module) -> None:
    """Copy an SD ``AutoencoderKL``'s weights into a Harmony-VAE ``model`` of the same trunk.

    ``encoder``, ``decoder``, ``quant_conv`` and ``post_quant_conv`` are copied, and the
    conditional encoder's trunk gets the encoder's weights (paper §3.2). Only ``add_conv_in`` and
    the skip convs are left as they are; any other missing or unexpected key is a RuntimeError.
    """
    model.encoder.load_state_dict(vae.encoder.state_dict())
    model.decoder.load_state_dict(vae.decoder.state_dict())
    model.quant_conv.load_state_dict(vae.quant_conv.state_dict())
    model.post_quant_conv.load_state_dict(vae.post_quant_conv.state_dict())
    result = model.conditional_encoder.load_state_dict(vae.encoder.state_dict(), strict=False)
    added = ("add_conv_in.", "down_block_skip_convs.", "mid_block_skip_conv.")
    if result.unexpected_keys or any(not k.startswith(added) for k in result.missing_keys):
        raise RuntimeError(f"conditional-encoder trunk copy mismatch: {result}")

"""A compact pixel-space harmonizer: the Table 3 stand-in for HDNet_512.

Paper §5.3.3 (Table 3) compares DiffHarmony++ with HDNet (Chen et al., ACM MM 2023) trained at
512px, by foreground-ratio bin. HDNet_512's training code for that setting and its weights are
not public, so harmonylib's default Table 3 baseline is this network: a small UNet-like
encoder-decoder that works in pixel space (no VAE, no diffusion), trained by harmonylib on the
same data with the same budget as the latent model. It is not HDNet; it stands in for "a
pixel-space harmonizer", which is the contrast the paper draws (latent vs pixel space as the
foreground grows).

Design (all choices ours unless cited):

* input ``[composite (3, [-1, 1]), mask (1, {0, 1})]``, as in the paper's §5.3.3 fairness rule
  "models directly utilize composite images as input" (no background crop of the real image);
* the network predicts a residual on the composite (``pred = composite + net(x)``, last conv
  zero-initialised, so an untrained model is the identity);
* output blending as in iDIH (Sofiiuk et al., WACV 2021): ``out = comp·(1−M) + pred·M``, so only
  the foreground can change and the background is the composite's, exactly;
* widths per profile in :data:`PIXEL_BASELINE_CONFIGS` (``smoke``, ``mini``, ``paper``).

:func:`pixel_baseline_loss` is the pure training objective; :func:`pixel_baseline_objective`
adapts it to the training loop's ``objective(model, batch, generator) -> (loss, logs)``
signature; :func:`harmonize_pixel` runs inference at a square resolution and returns images at
the input size.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from PIL import Image
from torch import nn

from harmonylib.imageproc import threshold_mask
from harmonylib.io import load_mask_l, load_rgb

PIXEL_LOSSES = ("mse", "fg_normalized")

# Widths per profile (parameters: smoke 14k, mini 0.22M, paper 5.6M). "paper" is a mid-size
# harmonization UNet; HDNet's own size is not what we match, only its role (pixel space). "mini"
# trains in minutes on 2 CPU cores at 64 px; "smoke" is for tests.
PIXEL_BASELINE_CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": {"block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4},
    "mini": {"block_out_channels": [16, 32, 64], "layers_per_block": 1, "norm_num_groups": 8},
    "paper": {"block_out_channels": [32, 64, 128, 256], "layers_per_block": 2, "norm_num_groups": 32},
}


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6)


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a (1x1 if needed) shortcut."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = _norm(c_out, groups)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.shortcut(x) + h


class PixelHarmonizer(ModelMixin, ConfigMixin):
    r"""A pixel-space encoder-decoder harmonizer with iDIH-style output blending.

    Parameters:
        block_out_channels (`tuple[int]`): widths per level; level ``i`` runs at ``H / 2**i``.
        layers_per_block (`int`): residual blocks per level in the encoder and in the decoder.
        norm_num_groups (`int`): GroupNorm groups; must divide every width.
        predict_residual (`bool`): ``pred = composite + net(x)`` (True) or ``pred = net(x)``.

    ``forward(composite, mask)`` takes (B, 3, H, W) in [-1, 1] and (B, 1, H, W) in {0, 1}, with
    H and W multiples of ``2 ** (len(block_out_channels) - 1)``, and returns (B, 3, H, W) equal to
    ``composite`` wherever ``mask`` is 0.
    """

    @register_to_config
    def __init__(
        self,
        block_out_channels: tuple[int, ...] = (16, 32, 64),
        layers_per_block: int = 1,
        norm_num_groups: int = 8,
        predict_residual: bool = True,
    ):
        super().__init__()
        widths = [int(c) for c in block_out_channels]
        if not widths or layers_per_block < 1:
            raise ValueError("block_out_channels must be non-empty and layers_per_block >= 1")
        bad = [c for c in widths if c % norm_num_groups]
        if bad:
            raise ValueError(f"norm_num_groups={norm_num_groups} must divide every width; not {bad}")
        g = norm_num_groups
        self.conv_in = nn.Conv2d(4, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        c_prev = widths[0]
        for i, c in enumerate(widths):
            self.down_blocks.append(
                nn.Sequential(*[_ResBlock(c_prev if j == 0 else c, c, g) for j in range(layers_per_block)])
            )
            c_prev = c
            if i < len(widths) - 1:
                self.downsamplers.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid_block = _ResBlock(widths[-1], widths[-1], g)
        self.upsamplers = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(len(widths) - 1)):
            self.upsamplers.append(nn.Conv2d(widths[i + 1], widths[i], 3, padding=1))
            c = widths[i]
            self.up_blocks.append(
                nn.Sequential(*[_ResBlock(2 * c if j == 0 else c, c, g) for j in range(layers_per_block)])
            )
        self.norm_out = _norm(widths[0], g)
        self.conv_out = nn.Conv2d(widths[0], 3, 3, padding=1)
        if predict_residual:
            # Zero-init: an untrained residual model returns the composite (harmonization is
            # close to the identity), and gradients still reach conv_out from the first step.
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Harmonize: ``comp·(1−M) + pred·M``.

        Args:
            composite: (B, 3, H, W) in [-1, 1].
            mask: (B, 1, H, W) in {0, 1} (a soft mask blends).

        Returns:
            (B, 3, H, W); equal to ``composite`` where ``mask`` is 0.
        """
        if composite.ndim != 4 or composite.shape[1] != 3:
            raise ValueError(f"composite must be (B, 3, H, W), got {tuple(composite.shape)}")
        b, _, h, w = composite.shape
        if mask.shape != (b, 1, h, w):
            raise ValueError(f"mask must be {(b, 1, h, w)}, got {tuple(mask.shape)}")
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"composite: H and W must be multiples of {m}, got {h}x{w}")
        mask = mask.to(composite.dtype)
        x = self.conv_in(torch.cat([composite, mask], dim=1))  # (B, C0, H, W)
        skips = []
        for i, block in enumerate(self.down_blocks):
            x = block(x)  # (B, C_i, H/2^i, W/2^i)
            if i < len(self.downsamplers):
                skips.append(x)
                x = self.downsamplers[i](x)  # (B, C_i, H/2^(i+1), W/2^(i+1))
        x = self.mid_block(x)
        for up, block in zip(self.upsamplers, self.up_blocks, strict=True):
            skip = skips.pop()
            x = up(F.interpolate(x, size=skip.shape[-2:], mode="nearest"))  # (B, C_i, H/2^i, W/2^i)
            x = block(torch.cat([x, skip], dim=1))  # (B, 2C_i, ...) -> (B, C_i, ...)
        delta = self.conv_out(F.silu(self.norm_out(x)))  # (B, 3, H, W)
        pred = composite + delta if self.config.predict_residual else delta
        return composite * (1.0 - mask) + pred * mask  # iDIH output blending


def build_pixel_harmonizer(size: str = "mini", **overrides: Any) -> PixelHarmonizer:
    """A randomly initialised :class:`PixelHarmonizer` of a named width (smoke, mini, paper).

    Raises:
        ValueError: unknown ``size``; the message lists the allowed ones.
    """
    if size not in PIXEL_BASELINE_CONFIGS:
        raise ValueError(f"unknown pixel baseline size {size!r}; allowed: {list(PIXEL_BASELINE_CONFIGS)}")
    cfg = copy.deepcopy(PIXEL_BASELINE_CONFIGS[size])
    cfg.update(overrides)
    return PixelHarmonizer(**cfg)


# --------------------------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------------------------


def _squared_errors(
    model: nn.Module, batch: dict[str, torch.Tensor], min_area: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean squared error over everything, mean over images of the area-floored foreground MSE)."""
    out = model(batch["composite"], batch["mask"])  # (B, 3, H, W)
    se = (out.float() - batch["real"].float()) ** 2  # (B, 3, H, W)
    m = batch["mask"].float()  # (B, 1, H, W)
    area = m.sum(dim=(1, 2, 3)).clamp_min(min_area)  # (B,)
    fg = ((se * m).sum(dim=(1, 2, 3)) / (3.0 * area)).mean()
    return se.mean(), fg


def pixel_baseline_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], loss: str = "mse", min_area: float = 100.0
) -> torch.Tensor:
    """The pixel baseline's training loss on one batch.

    Args:
        model: a :class:`PixelHarmonizer` (or a DDP wrapper of one).
        batch: ``composite``, ``real`` (B, 3, H, W) in [-1, 1] and ``mask`` (B, 1, H, W) in {0, 1}.
        loss: ``"mse"`` — mean over all pixels and channels of ``(out − real)²`` (the background
            is the composite's, so it contributes only where composite and real differ there);
            ``"fg_normalized"`` — per image ``Σ M·(out − real)² / (3·max(min_area, ΣM))``,
            averaged over the batch: the foreground MSE, with a floor on the area so that tiny
            objects do not dominate (the form of iDIH's FN-MSE; ``min_area`` is ours, in pixels
            at the training resolution).
        min_area: the area floor of ``"fg_normalized"``.

    Returns:
        A scalar tensor.
    """
    if loss not in PIXEL_LOSSES:
        raise ValueError(f"loss must be one of {list(PIXEL_LOSSES)}, got {loss!r}")
    mse, fg = _squared_errors(model, batch, min_area)
    return mse if loss == "mse" else fg


def pixel_baseline_objective(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    generator: torch.Generator | None = None,
    loss: str = "mse",
    min_area: float = 100.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`pixel_baseline_loss` in the training loop's ``(loss, logs)`` form (no randomness).

    ``logs`` holds ``pixel_mse`` and ``pixel_fg_mse`` (both losses, whichever is optimised), in
    [-1, 1] units; the loop logs the optimised value itself as ``loss``.
    """
    if loss not in PIXEL_LOSSES:
        raise ValueError(f"loss must be one of {list(PIXEL_LOSSES)}, got {loss!r}")
    mse, fg = _squared_errors(model, batch, min_area)
    value = mse if loss == "mse" else fg
    return value, {"pixel_mse": float(mse.detach()), "pixel_fg_mse": float(fg.detach())}


# --------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------


def _as_rgb(x: Image.Image | str | os.PathLike) -> Image.Image:
    return x.convert("RGB") if isinstance(x, Image.Image) else load_rgb(x)


def _as_mask(x: Image.Image | str | os.PathLike) -> Image.Image:
    return x.convert("L") if isinstance(x, Image.Image) else load_mask_l(x)


@torch.no_grad()
def harmonize_pixel(
    model: PixelHarmonizer,
    images: Sequence[Image.Image | str | os.PathLike],
    masks: Sequence[Image.Image | str | os.PathLike],
    size: int,
    batch_size: int = 8,
) -> list[Image.Image]:
    """Harmonize composites with the pixel baseline at a square inference resolution.

    Each composite is squashed to ``size`` x ``size`` (PIL bilinear; the mask bilinear then
    :func:`~harmonylib.imageproc.threshold_mask`, as in training), harmonized, resized back
    to its own size (bilinear), and pasted into the composite inside the full-resolution mask,
    so the returned background is the composite's, bit for bit.

    Args:
        model: a :class:`PixelHarmonizer` (its device and dtype are used).
        images: RGB composites (PIL images or paths).
        masks: their masks (PIL images or paths), same sizes as the composites.
        size: square inference side, a multiple of ``model.size_multiple``.
        batch_size: composites per forward pass.

    Returns:
        One RGB PIL image per composite, at the composite's size.
    """
    if len(images) != len(masks):
        raise ValueError(f"images ({len(images)}) and masks ({len(masks)}) differ in length")
    if size % model.size_multiple:
        raise ValueError(f"size must be a multiple of {model.size_multiple}, got {size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    device, dtype = model.device, model.dtype
    results: list[Image.Image] = []
    try:
        for start in range(0, len(images), batch_size):
            comps = [_as_rgb(x) for x in images[start : start + batch_size]]
            ms = [_as_mask(x) for x in masks[start : start + batch_size]]
            for i, (c, m) in enumerate(zip(comps, ms, strict=True)):
                if c.size != m.size:
                    raise ValueError(f"images[{start + i}] {c.size} and masks[{start + i}] {m.size} differ")
            comp_t = torch.stack(
                [
                    torch.from_numpy(np.asarray(c.resize((size, size), Image.BILINEAR), np.float32)).permute(
                        2, 0, 1
                    )
                    for c in comps
                ]
            )  # (B, 3, S, S) in [0, 255]
            comp_t = comp_t / 127.5 - 1.0
            mask_t = torch.stack(
                [torch.from_numpy(threshold_mask(m.resize((size, size), Image.BILINEAR)))[None] for m in ms]
            )  # (B, 1, S, S)
            out = model(comp_t.to(device, dtype), mask_t.to(device, dtype))  # (B, 3, S, S)
            out = ((out.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
            out_np = out.permute(0, 2, 3, 1).cpu().numpy()  # (B, S, S, 3)
            for c, m, o in zip(comps, ms, out_np, strict=True):
                pred = np.asarray(Image.fromarray(o, "RGB").resize(c.size, Image.BILINEAR))  # (H, W, 3)
                fg = threshold_mask(m)[..., None] > 0.5  # (H, W, 1)
                results.append(Image.fromarray(np.where(fg, pred, np.asarray(c)), "RGB"))
    finally:
        model.train(was_training)
    return results


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (for the README's model table)."""
    return int(sum(p.numel() for p in model.parameters()))


__all__ = [
    "PIXEL_BASELINE_CONFIGS",
    "PIXEL_LOSSES",
    "PixelHarmonizer",
    "build_pixel_harmonizer",
    "count_parameters",
    "harmonize_pixel",
    "pixel_baseline_loss",
    "pixel_baseline_objective",
]

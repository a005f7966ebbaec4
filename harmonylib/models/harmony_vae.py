"""Harmony-VAE: an SD VAE whose decoder also sees the composite image and mask (paper §3.2, Fig. 1a).

The paper adds a conditional encoder E_c that encodes the composite I and mask M. Its intermediate
features reach the VAE decoder D through zero-initialised convolutions and element-wise
addition. Training reconstructs the real image, ``L = ||Î - D(E(Î), E_c(I, M))||²`` (Eq. 2).

Parameter names and nesting follow the authors' ``ConditionVAE`` key for key, so their checkpoints
load unchanged (official-implementation.md §1.1, §10 item 20):

- ``encoder.*``: diffusers ``Encoder(double_z=True)``, the frozen SD encoder;
- ``conditional_encoder.*``: the ``Encoder`` trunk plus ``add_conv_in``,
  ``down_block_skip_convs.{i}`` and ``mid_block_skip_conv``;
- ``decoder.*``: diffusers ``Decoder``, parameter for parameter; its up blocks accept additive
  residuals;
- ``quant_conv``, ``post_quant_conv`` and ``latent_skip_conv``: 1×1 convs.

With the SD config that is 384 tensors and 119,740,419 parameters.

Where paper and code differ, the paper is the default and the code's choice is a switch:
``mask_conv_init="zero"`` (paper §3.2: the mask part of conv_in starts at zero) or ``"default"``
(the authors' code, PyTorch default init of ``add_conv_in``). ``skip_init="random"`` is the
Table 5 "random init" ablation, which the authors' code cannot express (§1.5).

Beyond the authors' code, this module adds a tiled conditional decode for large images
(§10 item 6) and a working ``forward(return_dict=False)`` (§10 item 7).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import Decoder, DecoderOutput, DiagonalGaussianDistribution, Encoder
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.accelerate_utils import apply_forward_hook
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

SKIP_INITS = ("zero", "random")
MASK_CONV_INITS = ("zero", "default")

#: Default tile overlap as a fraction of the tile side: 1/TILE_OVERLAP_DIVISOR.
TILE_OVERLAP_DIVISOR = 8


def default_tile_overlap(tile_latent_size: int) -> int:
    """The tile overlap (latent px) used when none is given: ``tile_latent_size // 8``, at least 1."""
    return max(1, tile_latent_size // TILE_OVERLAP_DIVISOR) if tile_latent_size > 1 else 0


#: Table 5 variants: which skip init, and whether the decoder D is trained with E_c.
TABLE5_VARIANTS: dict[str, dict[str, Any]] = {
    "ec_zero": {"skip_init": "zero", "train_decoder": False},
    "ec_random": {"skip_init": "random", "train_decoder": False},
    "ecd_zero": {"skip_init": "zero", "train_decoder": True},
    "ecd_random": {"skip_init": "random", "train_decoder": True},
}


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


# --------------------------------------------------------------------------------------------------
# Harmony-VAE
# --------------------------------------------------------------------------------------------------


class HarmonyVAE(ModelMixin, ConfigMixin):
    r"""Harmony-VAE (paper §3.2): an SD AutoencoderKL plus a conditional encoder whose features
    are added into the decoder.

    Loads the authors' ``ConditionVAE`` folders (``_class_name: "ConditionVAE"``, ``.safetensors``
    or ``.bin``) through ``from_pretrained``. diffusers 0.42.1 reads ``.bin`` with
    ``torch.load(weights_only=True)``, and ``test_harmony_vae.py`` checks that.

    Parameters:
        in_channels, out_channels, down_block_types, up_block_types, block_out_channels,
        layers_per_block, act_fn, latent_channels, norm_num_groups, sample_size, scaling_factor,
        force_upcast: as in diffusers ``AutoencoderKL``.
        additional_in_channels (`int`, defaults to 1): extra condition channels (the mask), fed
            through ``conditional_encoder.add_conv_in``. With 0, no mask input.
        skip_init (`"zero"` or `"random"`): initial weights of the 13 skip convs and
            ``latent_skip_conv``. "zero" follows the paper (§3.2). "random" keeps PyTorch's default
            init: the Table 5 "random init" ablation.
        mask_conv_init (`"zero"` or `"default"`): initial weights of ``add_conv_in``. "zero" follows
            the paper (§3.2). "default" is PyTorch's default init, as in the authors' code (§1.1).

    ``skip_init`` and ``mask_conv_init`` only decide initial weights, and loaded weights replace
    them. An authors' folder has neither key in its config, so it reads back with the paper
    defaults. Their code in fact used a default-init ``add_conv_in``.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["ResnetBlock2D"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        block_out_channels: tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        act_fn: str = "silu",
        latent_channels: int = 4,
        norm_num_groups: int = 32,
        sample_size: int = 32,
        scaling_factor: float = 0.18215,
        force_upcast: bool = True,
        additional_in_channels: int = 1,
        skip_init: str = "zero",
        mask_conv_init: str = "zero",
    ):
        super().__init__()
        _check_vae_block_types(down_block_types, up_block_types)
        if skip_init not in SKIP_INITS:
            raise ValueError(f"skip_init must be one of {list(SKIP_INITS)}, got {skip_init!r}")
        if mask_conv_init not in MASK_CONV_INITS:
            raise ValueError(f"mask_conv_init must be one of {list(MASK_CONV_INITS)}, got {mask_conv_init!r}")
        if additional_in_channels < 0:
            raise ValueError(f"additional_in_channels must be >= 0, got {additional_in_channels}")
        trunk = dict(
            down_block_types=tuple(down_block_types),
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            act_fn=act_fn,
        )
        # Registration order = the authors' attribute order (§1.1 table).
        self.encoder = Encoder(in_channels=in_channels, out_channels=latent_channels, double_z=True, **trunk)
        self.conditional_encoder = ConditionalEncoder(
            in_channels=in_channels,
            additional_in_channels=additional_in_channels,
            out_channels=latent_channels,
            double_z=True,
            **trunk,
        )
        self.decoder = SkipDecoder(
            in_channels=latent_channels,
            out_channels=out_channels,
            up_block_types=tuple(up_block_types),
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            act_fn=act_fn,
        )
        self.quant_conv = nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1)  # shared by E and E_c
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)  # applied to z and z_cond
        self.latent_skip_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        self.reset_added_convs()

    # ---- construction --------------------------------------------------------------------------

    def added_skip_convs(self) -> list[nn.Conv2d]:
        """The 1×1 convs that ``skip_init`` governs: all down-block skips, the mid skip, the latent skip."""
        ce = self.conditional_encoder
        return [*ce.down_block_skip_convs, ce.mid_block_skip_conv, self.latent_skip_conv]

    @torch.no_grad()
    def reset_added_convs(self, generator: torch.Generator | None = None) -> None:
        """(Re-)initialise the convs that the SD VAE lacks, following ``skip_init`` and ``mask_conv_init``.

        "zero" sets weight and bias to 0. That is exact for the mask part of the paper's 4-channel
        conv_in: conv_in keeps the SD bias, so the added part must add nothing. "random"/"default"
        re-draw PyTorch's Conv2d default init, from ``generator`` when one is given; without one,
        the weights from construction stay (global RNG).
        """
        groups = [(self.added_skip_convs(), self.config.skip_init == "zero")]
        if self.conditional_encoder.add_conv_in is not None:
            groups.append(([self.conditional_encoder.add_conv_in], self.config.mask_conv_init == "zero"))
        for convs, zero in groups:
            for conv in convs:
                if zero:
                    nn.init.zeros_(conv.weight)
                    nn.init.zeros_(conv.bias)
                elif generator is not None:
                    _default_conv_init_(conv, generator)

    @classmethod
    def from_vae(
        cls, vae: nn.Module, generator: torch.Generator | None = None, **overrides: Any
    ) -> HarmonyVAE:
        """Build a Harmony-VAE from an SD ``AutoencoderKL`` (official-implementation.md §1.5).

        ``encoder``, ``decoder``, ``quant_conv`` and ``post_quant_conv`` are copied. So is the
        conditional encoder's trunk (``conv_in``, ``down_blocks``, ``mid_block``,
        ``conv_norm_out``, ``conv_out``): "the weights of E_c are initialized from the weights of
        the original VAE encoder" (paper §3.2). The skip convs and ``add_conv_in`` start as the
        config says (zero by default).

        Args:
            vae: a diffusers ``AutoencoderKL`` with quant convs and mid-block attention (as SD).
            generator: seeds the non-zero inits ("random" skips, "default" mask conv); optional.
            **overrides: config fields to change, e.g. ``skip_init="random"``.

        Returns:
            A ``HarmonyVAE`` on ``vae``'s device and dtype.
        """
        vcfg = dict(vae.config)
        for key, needed in (
            ("use_quant_conv", True),
            ("use_post_quant_conv", True),
            ("mid_block_add_attention", True),
        ):
            if vcfg.get(key, needed) != needed:
                raise ValueError(f"from_vae needs an SD-style AutoencoderKL with {key}={needed}")
        init_keys = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = set(overrides) - init_keys
        if unknown:
            raise TypeError(f"unknown HarmonyVAE config overrides: {sorted(unknown)}")
        kwargs = {k: v for k, v in vcfg.items() if k in init_keys}
        kwargs.update(overrides)
        model = cls(**kwargs)
        model.to(vae.device)
        if vae.dtype != model.dtype:
            model.to(dtype=vae.dtype)
        model.encoder.load_state_dict(vae.encoder.state_dict())
        model.decoder.load_state_dict(vae.decoder.state_dict())
        model.quant_conv.load_state_dict(vae.quant_conv.state_dict())
        model.post_quant_conv.load_state_dict(vae.post_quant_conv.state_dict())
        result = model.conditional_encoder.load_state_dict(vae.encoder.state_dict(), strict=False)
        added = ("add_conv_in.", "down_block_skip_convs.", "mid_block_skip_conv.")
        if result.unexpected_keys or any(not k.startswith(added) for k in result.missing_keys):
            raise RuntimeError(f"conditional-encoder trunk copy mismatch: {result}")
        if generator is not None:
            model.reset_added_convs(generator)
        return model

    # ---- training helpers ------------------------------------------------------------------------

    def set_trainable(self, train_decoder: bool = True) -> int:
        """Set ``requires_grad`` for a Table 5 variant; return the number of trainable parameters.

        E_c (with ``add_conv_in`` and all skip convs) and ``latent_skip_conv`` are always trained.
        D is trained when ``train_decoder`` (the "E_c + D" rows; paper default). ``encoder``,
        ``quant_conv`` and ``post_quant_conv`` stay frozen: the denoising UNet's latent space
        must not move (§1.5).
        """
        self.requires_grad_(False)
        self.conditional_encoder.requires_grad_(True)
        self.latent_skip_conv.requires_grad_(True)
        self.decoder.requires_grad_(train_decoder)
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters with ``requires_grad`` (for the optimiser), after :meth:`set_trainable`."""
        return [p for p in self.parameters() if p.requires_grad]

    # ---- geometry ------------------------------------------------------------------------------

    @property
    def spatial_scale_factor(self) -> int:
        """Image pixels per latent pixel (8 for SD)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def _check_cond(self, z: torch.Tensor, cond: torch.Tensor) -> None:
        need = self.config.in_channels + self.config.additional_in_channels
        if cond.ndim != 4 or cond.shape[1] != need:
            raise ValueError(
                f"cond must be (B, {need}, H, W) = cat([image in [-1,1], mask in {{0,1}}]); got {tuple(cond.shape)}"
            )
        f = self.spatial_scale_factor
        if z.ndim != 4 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"z must be (B, {self.config.latent_channels}, h, w); got {tuple(z.shape)}")
        if cond.shape[0] != z.shape[0] or tuple(cond.shape[-2:]) != (z.shape[-2] * f, z.shape[-1] * f):
            raise ValueError(
                f"cond must be exactly {f}x the latent size with the same batch: latent {tuple(z.shape)} "
                f"needs cond (B, {need}, {z.shape[-2] * f}, {z.shape[-1] * f}); got {tuple(cond.shape)}"
            )

    # ---- plain SD paths ----------------------------------------------------------------------

    @apply_forward_hook
    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """Plain SD encode with the frozen encoder: (B, 3, H, W) → posterior over (B, 4, H/8, W/8)."""
        moments = self.quant_conv(self.encoder(x))  # (B, 8, H/8, W/8)
        posterior = DiagonalGaussianDistribution(moments)
        if not return_dict:
            return (posterior,)
        return AutoencoderKLOutput(latent_dist=posterior)

    @apply_forward_hook
    def decode(
        self, z: torch.Tensor, return_dict: bool = True, generator: torch.Generator | None = None
    ) -> DecoderOutput | tuple:
        """Plain SD decode without skips: (B, 4, h, w) unscaled latent → (B, 3, 8h, 8w)."""
        dec = self.decoder(self.post_quant_conv(z))
        if not return_dict:
            return (dec,)
        return DecoderOutput(sample=dec)

    # ---- conditional paths ---------------------------------------------------------------------

    @apply_forward_hook
    def encode_cond(
        self, cond: torch.Tensor
    ) -> tuple[DiagonalGaussianDistribution, tuple[torch.Tensor, ...], torch.Tensor]:
        """Run E_c on ``cond`` (official-implementation.md §1.2).

        Args:
            cond: (B, 4, H, W) = cat([composite in [-1, 1], mask in {0, 1}]).

        Returns:
            ``(posterior_cond, down_residuals, mid_residual)``. ``posterior_cond`` comes through
            the shared, frozen ``quant_conv``. The residuals are already projected by their skip
            convs.
        """
        need = self.config.in_channels + self.config.additional_in_channels
        if cond.ndim != 4 or cond.shape[1] != need:
            raise ValueError(f"cond must be (B, {need}, H, W); got {tuple(cond.shape)}")
        f = self.spatial_scale_factor
        if cond.shape[-2] % f or cond.shape[-1] % f:
            raise ValueError(f"cond height and width must be multiples of {f}; got {tuple(cond.shape[-2:])}")
        moments, down, mid = self.conditional_encoder(cond)
        return DiagonalGaussianDistribution(self.quant_conv(moments)), down, mid

    def _decode_with_skips(
        self, z: torch.Tensor, z_cond: torch.Tensor, down: Sequence[torch.Tensor], mid: torch.Tensor
    ) -> torch.Tensor:
        # §1.4 steps 4-6: post_quant_conv on both, latent skip before decoder.conv_in.
        z = self.post_quant_conv(z)  # (B, 4, h, w)
        z_cond = self.post_quant_conv(z_cond)  # (B, 4, h, w)
        z = z + self.latent_skip_conv(z_cond)
        return self.decoder(z, down, mid)  # (B, 3, H, W)

    @apply_forward_hook
    def decode_with_cond(
        self,
        z: torch.Tensor,
        cond: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        sample_posterior: bool = True,
        return_dict: bool = True,
        tile_latent_size: int | None = None,
        tile_overlap: int | None = None,
    ) -> DecoderOutput | tuple:
        """Decode ``z`` with E_c's features of ``cond`` (official-implementation.md §1.4).

        Args:
            z: (B, 4, h, w), the *unscaled* latent (the pipeline passes ``latents / scaling_factor``).
            cond: (B, 4, 8h, 8w) = cat([composite in [-1, 1], mask in {0, 1}]).
            generator: draws the noise when ``sample_posterior``. The authors' pipeline always
                samples, with its own generator.
            sample_posterior: ``z_cond`` is a sample of E_c's posterior (True) or its mean (False).
            return_dict: return a ``DecoderOutput`` rather than a 1-tuple.
            tile_latent_size: if set and the latent is larger than this on either side, decode in
                overlapping tiles of this latent size (see :meth:`tiled_decode_with_cond`).
            tile_overlap: least overlap between tiles in latent pixels; defaults to
                :func:`default_tile_overlap` (``tile_latent_size // 8``).

        Returns:
            ``DecoderOutput(sample=(B, 3, 8h, 8w))``, unclamped, in [-1, 1] space.
        """
        z = z.to(device=self.device, dtype=self.dtype)
        cond = cond.to(device=self.device, dtype=self.dtype)
        self._check_cond(z, cond)
        if tile_latent_size is not None and max(z.shape[-2:]) > tile_latent_size:
            dec = self._tiled_decode_with_cond(
                z, cond, generator, sample_posterior, tile_latent_size, tile_overlap
            )
        else:
            posterior_cond, down, mid = self.encode_cond(cond)
            z_cond = posterior_cond.sample(generator) if sample_posterior else posterior_cond.mode()
            dec = self._decode_with_skips(z, z_cond, down, mid)
        if not return_dict:
            return (dec,)
        return DecoderOutput(sample=dec)

    def tiled_decode_with_cond(
        self,
        z: torch.Tensor,
        cond: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        sample_posterior: bool = True,
        return_dict: bool = True,
        tile_latent_size: int = 64,
        tile_overlap: int | None = None,
    ) -> DecoderOutput | tuple:
        """Tiled :meth:`decode_with_cond`, for images too large to decode at once.

        The latent is cut into the fewest equal tiles of side at most ``tile_latent_size`` whose
        neighbours overlap by at least ``tile_overlap``. Each latent tile is decoded with the skip
        features of the *matching* pixel tile of ``cond`` (aligned ×8). Overlapping outputs are
        blended with linear ramps, normalised to sum to one. The noise of
        the conditional posterior is drawn once at full size and sliced, so a tile sees the same
        noise as the untiled path. The result is close to the untiled decode but not equal:
        GroupNorm statistics and the mid-block attention are computed per tile, not over the
        whole image. Peak memory is that of one tile plus the full-size input and output.

        Args:
            as :meth:`decode_with_cond`. ``tile_latent_size`` is the tile side in latent pixels
            (64 = 512 px for SD). ``tile_overlap`` is in latent pixels, default ``tile_latent_size // 8``:
            at 1024 px that is 3×3 tiles of 48, 1.27× the untiled work (``// 4`` gave 2.25×).
        """
        return self.decode_with_cond(
            z,
            cond,
            generator=generator,
            sample_posterior=sample_posterior,
            return_dict=return_dict,
            tile_latent_size=tile_latent_size,
            tile_overlap=tile_overlap,
        )

    @staticmethod
    def _tile_layout(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
        """Starts and common side of the fewest equal tiles, each at most ``tile``, that cover
        ``length`` with neighbours overlapping by at least ``overlap``.

        Equal tiles spread the overlap evenly. The extra work on one axis is then
        ``(n·side - length) / length ≈ overlap / tile``; a fixed tile side with the last tile shifted
        back can cost up to a whole extra tile (e.g. 3 tiles of 64 for 128 px: 1.5× per axis).
        """
        if length <= tile:
            return [0], length
        n = math.ceil(
            (length - overlap) / (tile - overlap)
        )  # fewest tiles with n·tile - (n-1)·overlap ≥ length
        side = math.ceil((length + (n - 1) * overlap) / n)  # ≤ tile
        return [round(i * (length - side) / (n - 1)) for i in range(n)], side

    @staticmethod
    def _ramp(length: int, overlap: int, ramp_in: bool, ramp_out: bool, like: torch.Tensor) -> torch.Tensor:
        # 1-D blend weight of a tile: linear ramps over the overlap on sides that have a neighbour.
        w = torch.ones(length, dtype=like.dtype, device=like.device)
        if overlap > 0:
            ramp = (torch.arange(overlap, dtype=like.dtype, device=like.device) + 0.5) / overlap
            if ramp_in:
                w[:overlap] = torch.minimum(w[:overlap], ramp)
            if ramp_out:
                w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
        return w

    @classmethod
    def _blend_weights(
        cls, starts: list[int], side: int, length: int, overlap: int, f: int, like: torch.Tensor
    ) -> list[torch.Tensor]:
        # 1-D pixel weights of each tile on one axis, ramped where a neighbour overlaps and
        # divided by their sum over the axis, so that they add up to one at every pixel.
        ref = torch.empty(0, dtype=torch.float32, device=like.device)
        ramps = [cls._ramp(side * f, overlap * f, s > 0, s + side < length, ref) for s in starts]
        total = torch.zeros(length * f, dtype=torch.float32, device=like.device)  # (length·f,)
        for s, r in zip(starts, ramps, strict=True):
            total[s * f : (s + side) * f] += r
        return [
            (r / total[s * f : (s + side) * f]).to(like.dtype) for s, r in zip(starts, ramps, strict=True)
        ]

    def _tiled_decode_with_cond(
        self,
        z: torch.Tensor,
        cond: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None,
        sample_posterior: bool,
        tile_latent_size: int,
        tile_overlap: int | None,
    ) -> torch.Tensor:
        tile = int(tile_latent_size)
        overlap = default_tile_overlap(tile) if tile_overlap is None else int(tile_overlap)
        if tile < 1 or not 0 <= overlap < tile:
            raise ValueError(
                f"need tile_latent_size >= 1 and 0 <= tile_overlap < tile_latent_size; got {tile}, {overlap}"
            )
        f = self.spatial_scale_factor
        batch, _, h, w = z.shape
        # Same draw as DiagonalGaussianDistribution.sample on the full-size posterior: (B, 4, h, w).
        noise = (
            randn_tensor(
                (batch, self.config.latent_channels, h, w),
                generator=generator,
                device=self.device,
                dtype=self.dtype,
            )
            if sample_posterior
            else None
        )
        ys_all, th = self._tile_layout(h, tile, overlap)
        xs_all, tw = self._tile_layout(w, tile, overlap)
        # The tile grid is a product of the two axes, so the blend weights are too: normalise each
        # axis's 1-D ramps once and the 2-D weights (th·f, tw·f) of every tile sum to one per pixel.
        wy_all = self._blend_weights(ys_all, th, h, overlap, f, z)  # n_y × (th·f,)
        wx_all = self._blend_weights(xs_all, tw, w, overlap, f, z)  # n_x × (tw·f,)
        out = torch.zeros(batch, self.config.out_channels, h * f, w * f, device=self.device, dtype=self.dtype)
        for ys, wy in zip(ys_all, wy_all, strict=True):
            for xs, wx in zip(xs_all, wx_all, strict=True):
                lat = (slice(None), slice(None), slice(ys, ys + th), slice(xs, xs + tw))
                pix = (slice(None), slice(None), slice(ys * f, (ys + th) * f), slice(xs * f, (xs + tw) * f))
                # E_c runs on the matching pixel tile: on the whole image its skip maps alone
                # would take 696 floats per pixel (11.7 GB at 2048² px), so memory would not stay flat.
                posterior, down, mid = self.encode_cond(cond[pix])
                if sample_posterior:
                    z_cond = posterior.mean + posterior.std * noise[lat]  # (B, 4, th, tw)
                else:
                    z_cond = posterior.mode()
                dec = self._decode_with_skips(z[lat], z_cond, down, mid)  # (B, 3, th·f, tw·f)
                out[pix].addcmul_(dec, wy[:, None] * wx[None, :])
                del posterior, down, mid, dec
        return out

    # ---- forward -------------------------------------------------------------------------------

    def forward(
        self,
        sample: torch.Tensor,
        cond: torch.Tensor | None = None,
        sample_posterior: bool = False,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple:
        """Reconstruct ``sample`` (the training path of Eq. 2): ``D(E(sample), E_c(cond))``.

        Args:
            sample: (B, 3, H, W) image in [-1, 1].
            cond: (B, 4, H, W) condition, or None for a plain SD reconstruction.
            sample_posterior: sample both posteriors (E's and E_c's) instead of taking their
                means. The authors use one flag for both (§1.4).
            generator: RNG for the posterior samples.
            return_dict: ``DecoderOutput`` or a 1-tuple. The 1-tuple works here; it is broken in
                the authors' code (§10 item 7).
        """
        posterior = self.encode(sample).latent_dist
        z = posterior.sample(generator) if sample_posterior else posterior.mode()  # (B, 4, H/8, W/8)
        if cond is not None:
            dec = self.decode_with_cond(
                z, cond, generator=generator, sample_posterior=sample_posterior
            ).sample
        else:
            dec = self.decode(z).sample
        if not return_dict:
            return (dec,)
        return DecoderOutput(sample=dec)


def build_harmony_vae(size: str = "sd", **overrides: Any) -> HarmonyVAE:
    """A randomly initialised Harmony-VAE of a named architecture (``"sd"`` or ``"tiny"``).

    For training, start from the pretrained SD VAE with :meth:`HarmonyVAE.from_vae` instead.
    """
    from harmonylib.models.configs import SD_VAE_CONFIG, TINY_VAE_CONFIG, get_config

    cfg = get_config({"sd": SD_VAE_CONFIG, "tiny": TINY_VAE_CONFIG}, size)
    cfg.update(overrides)
    return HarmonyVAE(**cfg)

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

Beyond the authors' code, this model adds a tiled conditional decode for large images
(§10 item 6) and a working ``forward(return_dict=False)`` (§10 item 7).

The blocks (E_c, the skip decoder, the skip plan, the copy of SD weights) are in
:mod:`harmonylib.models.harmony_vae_blocks`, the tiled decode in
:mod:`harmonylib.models.harmony_vae_tiling`; their public names are importable from here too.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution, Encoder
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn

from harmonylib.models.harmony_vae_blocks import (  # noqa: F401  (skip_plan re-exported: tests, docs)
    ConditionalEncoder,
    SkipDecoder,
    _check_vae_block_types,
    _default_conv_init_,
    check_cond_shapes,
    check_sd_style_vae,
    copy_sd_vae_weights,
    skip_plan,
)
from harmonylib.models.harmony_vae_tiling import (  # noqa: F401  (re-exported: benchmarks, callers)
    TILE_OVERLAP_DIVISOR,
    TiledConditionalDecode,
    default_tile_overlap,
)

SKIP_INITS = ("zero", "random")
MASK_CONV_INITS = ("zero", "default")


#: Table 5 variants: which skip init, and whether the decoder D is trained with E_c.
TABLE5_VARIANTS: dict[str, dict[str, Any]] = {
    "ec_zero": {"skip_init": "zero", "train_decoder": False},
    "ec_random": {"skip_init": "random", "train_decoder": False},
    "ecd_zero": {"skip_init": "zero", "train_decoder": True},
    "ecd_random": {"skip_init": "random", "train_decoder": True},
}


# --------------------------------------------------------------------------------------------------
# Harmony-VAE
# --------------------------------------------------------------------------------------------------


class HarmonyVAE(TiledConditionalDecode, ModelMixin, ConfigMixin):
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
        check_sd_style_vae(vcfg)
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
        copy_sd_vae_weights(model, vae)
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
        check_cond_shapes(self.config, z, cond, self.spatial_scale_factor)
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

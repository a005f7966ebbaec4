"""DiffHarmonyPipeline: DiffHarmony / DiffHarmony++ inference as a diffusers pipeline.

Paper §3.1 (Fig. 1b) and the authors' ``StableDiffusionHarmonyPipeline``
(official-implementation.md §3): encode the composite, denoise random latents with the
9-channel inpainting UNet conditioned on [mask, composite latents] and the empty prompt
(5 Euler-ancestral steps, guidance 1, no CFG), then decode. With a ``HarmonyVAE`` the decoder also
sees the composite and mask (DiffHarmony++, §3.2); with a plain ``AutoencoderKL`` this is
DiffHarmony. An optional stage-2 refinement UNet reproduces the grey rows of Table 4.

Differences from the authors' pipeline, each a documented choice:

- ``size_mode="keep_aspect"`` (default) keeps the aspect ratio and returns the result at the
  input's own size; ``"square"`` squashes to N×N as the authors do (parity).
- ``keep_background=True`` (default) pastes the input's background back with the binarised
  mask; the authors save the raw decoder output (parity: ``keep_background=False``).
- float → uint8 by rounding (the authors' ``to_pil_image`` truncates, a −0.5 LSB bias; §10.8).
- one generator per sample; the batch never changes a sample's result (the authors re-seed one
  generator per batch, so results depend on batch size and order; §3.2).
- every noise tensor is drawn in float32 and then cast, so fp32 / bf16 / fp16 runs use the same
  random numbers; latents stay float32 through the scheduler.

RNG draw order, per sample, from that sample's generator (the authors' order, §3.2):
    1. initial latents z_T ~ N(0, I) · init_noise_sigma      (B, 4, h, w)
    2. composite posterior sample  E(I) = mean + std · ε       (B, 4, h, w)
    3. one ancestral noise per Euler step (5 by default)        (B, 4, h, w) each
    4. Harmony-VAE condition posterior sample (HarmonyVAE only) (B, 4, h, w)

Masks are binarised in one place, ``harmonylib.imageproc.threshold_mask`` (foreground where
value >= 0.5 on [0, 1]), at the input's own size; every resized mask is resized from that binary mask with
nearest-neighbour sampling, so it stays binary.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DiffusionPipeline, SchedulerMixin, UNet2DConditionModel
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from harmonylib.imageproc import threshold_mask  # the model-input mask threshold (>= 0.5), one place
from harmonylib.io import load_mask_l, load_rgb
from harmonylib.models.harmony_vae import HarmonyVAE
from harmonylib.models.refinement_unet import RefinementUNet
from harmonylib.models.scheduler import DEFAULT_NUM_INFERENCE_STEPS, make_scheduler
from harmonylib.models.unet import (
    NUM_LATENT_CHANNELS,
    EmptyPromptEmbedding,
    check_unet,
    compute_empty_prompt_embeds,
    load_empty_prompt_embeds,
    load_or_compute_empty_prompt_embeds,
    prepare_mask_latents,
    prepare_unet_input,
)

SIZE_MODES = ("keep_aspect", "square")
DIRECTIONS = ("forward", "inverse")
OUTPUT_TYPES = ("pil", "np", "pt", "latent")
SIZE_MULTIPLE = 8  # processing sizes are multiples of 8 (the SD VAE's scale factor)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from harmonylib.pipeline import DiffHarmonyPipeline
        >>> from harmonylib.reproducibility import make_generator
        >>> pipe = DiffHarmonyPipeline.from_pretrained("results/mini/runs/pipeline")
        >>> out = pipe("comp.jpg", "mask.png", generator=make_generator(0)).images[0]
        >>> out.save("harmonized.png")
        >>> # authors' parity: 512x512 squash, raw decoder output, resized to 256 by the evaluator
        >>> raw = pipe("comp.jpg", "mask.png", size_mode="square", size=512, keep_background=False,
        ...            resize_to_input=False, generator=make_generator(0)).images[0]
        ```
"""


class EmptyMaskWarning(UserWarning):
    """A mask has no foreground pixel; the input is returned unchanged."""


class FullMaskWarning(UserWarning):
    """A mask covers the whole image; there is no background to harmonize against."""


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 by rounding (not truncating), clipped to [0, 255]."""
    return np.clip(np.round(np.asarray(images, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


@dataclass
class DiffHarmonyPipelineOutput(BaseOutput):
    """Output of :class:`DiffHarmonyPipeline`.

    Args:
        images: ``"pil"``: list of PIL images. ``"np"``: (B, H, W, 3) float32 in [0, 1].
            ``"pt"``: (B, 3, H, W) float32 in [0, 1] on CPU. ``"latent"``: (B, 4, h, w) scaled
            latents. When samples come out at different sizes, ``"np"``, ``"pt"`` and
            ``"latent"`` give a list of per-sample arrays instead of one stacked array.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor | list


# ------------------------------------------------------------------------------------------------
# Input conversion: everything becomes float32 numpy, (H, W, 3) images and (H, W) masks in [0, 1]


def _pil_to_rgb_array(img: PIL.Image.Image) -> np.ndarray:
    """PIL → (H, W, 3) float32 in [0, 1], converted like ``harmonylib.io.load_rgb`` (no EXIF step)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        return np.repeat((arr / peak)[..., None], 3, axis=-1).astype(np.float32)
    if img.mode == "RGBA":  # alpha is not a mask: composite on black, as load_rgb does
        img = PIL.Image.alpha_composite(PIL.Image.new("RGBA", img.size, (0, 0, 0, 255)), img)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _pil_to_mask_array(img: PIL.Image.Image) -> np.ndarray:
    """PIL → (H, W) float32 in [0, 1], converted like ``harmonylib.io.load_mask_l`` (no EXIF step)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        return (arr / (65535.0 if arr.max() > 255 else 255.0)).astype(np.float32)
    if img.mode == "RGBA":
        arr = np.asarray(img)
        if arr[..., :3].std() == 0:  # a mask stored as alpha only
            return arr[..., 3].astype(np.float32) / 255.0
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _array_to_float(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(
                f"{what}: float arrays must be in [0, 1], got [{arr.min():.3g}, {arr.max():.3g}]"
            )
        return arr
    raise TypeError(f"{what}: unsupported dtype {arr.dtype}")


def _image_to_array(image: Any, what: str) -> np.ndarray:
    """One image (path, PIL, (H,W,3) array, (3,H,W) tensor in [0, 1]) → (H, W, 3) float32."""
    if isinstance(image, (str, os.PathLike)):
        return _pil_to_rgb_array(load_rgb(image))  # EXIF rotation applied; ImageReadError names the file
    if isinstance(image, PIL.Image.Image):
        return _pil_to_rgb_array(image)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(
                f"{what}: tensor images must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}"
            )
        image = image.detach().float().cpu().permute(1, 2, 0).numpy()  # (H, W, C)
    if isinstance(image, np.ndarray):
        arr = _array_to_float(image, what)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
            raise ValueError(f"{what}: arrays must be (H, W), (H, W, 1) or (H, W, 3), got {image.shape}")
        return np.array(np.broadcast_to(arr, (*arr.shape[:2], 3)), dtype=np.float32)
    raise TypeError(
        f"{what}: unsupported type {type(image).__name__} (use a path, PIL image, array or tensor)"
    )


def _mask_to_array(mask: Any, what: str) -> np.ndarray:
    """One mask (path, PIL, (H,W) array, (1,H,W) tensor in [0, 1]) → (H, W) float32 in [0, 1]."""
    if isinstance(mask, (str, os.PathLike)):
        return _pil_to_mask_array(load_mask_l(mask))
    if isinstance(mask, PIL.Image.Image):
        return _pil_to_mask_array(mask)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().float().cpu().numpy()
    if isinstance(mask, np.ndarray):
        arr = _array_to_float(mask, what)
        if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
            arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:2])
        if arr.ndim != 2:
            raise ValueError(f"{what}: masks must be (H, W), (1, H, W) or (H, W, 1), got {mask.shape}")
        return arr
    raise TypeError(
        f"{what}: unsupported type {type(mask).__name__} (use a path, PIL image, array or tensor)"
    )


def _as_list(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, torch.Tensor) and x.ndim == 4:
        return list(x.unbind(0))
    if isinstance(x, np.ndarray) and x.ndim == 4:
        return list(x)
    return [x]


def _round_to_multiple(x: float, m: int = SIZE_MULTIPLE) -> int:
    return max(m, int(round(x / m)) * m)


def processing_size(
    input_hw: tuple[int, int],
    size_mode: str,
    size: int | None,
    height: int | None,
    width: int | None,
    default_size: int,
) -> tuple[int, int]:
    """The (H, W) the models run at, for one input of size ``input_hw``.

    - ``height`` and ``width`` given: exactly that (both multiples of 8).
    - ``"square"``: N×N with N = ``size`` or ``default_size`` (the authors squash to 512).
    - ``"keep_aspect"``: the shorter side becomes ``size`` (or ``default_size``) and the longer side
      follows the aspect ratio; both are rounded to the nearest multiple of 8. Small inputs are
      upscaled, like the authors' fixed 512.
    """
    if height is not None or width is not None:
        if height is None or width is None:
            raise ValueError("give both height and width, or neither (use size= for the shorter side)")
        if size_mode == "square" and height != width:
            raise ValueError(f"size_mode='square' needs height == width, got {height}x{width}")
        return int(height), int(width)
    n = int(size if size is not None else default_size)
    if size_mode == "square":
        return n, n
    h, w = input_hw
    scale = n / min(h, w)
    return _round_to_multiple(h * scale), _round_to_multiple(w * scale)


def _resize_image(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float → (B, C, h, w), bilinear with antialias (≈ PIL bilinear, authors' resize)."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=tuple(hw), mode="bilinear", antialias=True, align_corners=False)


def _resize_mask(m: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) binary → (B, 1, h, w) binary, nearest with pixel centres (≈ PIL NEAREST)."""
    if tuple(m.shape[-2:]) == tuple(hw):
        return m
    return F.interpolate(m, size=tuple(hw), mode="nearest-exact")


def _sample_posterior(dist: Any, generator: Any, device: torch.device) -> torch.Tensor:
    """``dist.sample(generator)`` with the noise drawn in float32 (then cast), one stream per sample."""
    noise = randn_tensor(dist.mean.shape, generator=generator, device=device, dtype=torch.float32)
    return dist.mean + dist.std * noise.to(dist.mean.dtype)  # (B, 4, h, w)


@dataclass
class _Sample:
    """One input after step 1/2: arrays at the input's size plus the sizes it will use."""

    index: int
    image: np.ndarray  # (H, W, 3) in [0, 1]
    mask: np.ndarray  # (H, W) in {0, 1}, binarised
    proc_hw: tuple[int, int]
    out_hw: tuple[int, int]
    generator: torch.Generator | None
    empty: bool


def vae_scale(vae: Any) -> int:
    """Pixels per latent pixel of a VAE (2 ** (levels - 1))."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


class DiffHarmonyPipeline(DiffusionPipeline):
    r"""Image harmonization with DiffHarmony (SD VAE) or DiffHarmony++ (Harmony-VAE).

    Components:
        vae ([`AutoencoderKL`] or [`HarmonyVAE`]): encodes the composite; decodes the result. A
            ``HarmonyVAE`` decodes with the composite and mask as condition (DiffHarmony++). The
            behaviour is chosen by class, never by folder name.
        unet ([`UNet2DConditionModel`]): the 9-channel SD-inpainting UNet fine-tuned for harmonization.
        scheduler ([`SchedulerMixin`]): Euler ancestral with linspace spacing (see
            ``harmonylib.models.scheduler.make_scheduler``).
        empty_prompt_embedding ([`EmptyPromptEmbedding`], optional): the constant text condition.
        refinement_unet ([`RefinementUNet`], optional): DiffHarmony's stage-2 network (Table 4, grey).
        tokenizer, text_encoder (optional, ``transformers``): only used to compute the empty-prompt
            embedding when ``empty_prompt_embedding`` is absent.
        direction (``"forward"`` or ``"inverse"``): what the models were trained for; recorded in
            ``model_index.json``. Inverse models (paper §4) take the *real* image and produce a
            composite.
        default_size (int, optional): the processing size when a call gives none, recorded in
            ``model_index.json``. DiffHarmony trains at 512 but infers at 1024 (paper §5.2), so the
            assembled pipelines record their profile's R_inf "1024" rung (``cfg.ladder``). None:
            ``unet.config.sample_size * vae_scale_factor`` (the UNet's training size, 512 for SD).
    """

    model_cpu_offload_seq = "text_encoder->vae->unet->refinement_unet"
    # read as a tensor, never called: keep it on the execution device under CPU offload
    _exclude_from_cpu_offload = ["empty_prompt_embedding"]
    _optional_components = ["empty_prompt_embedding", "refinement_unet", "tokenizer", "text_encoder"]

    def __init__(
        self,
        vae: AutoencoderKL | HarmonyVAE,
        unet: UNet2DConditionModel,
        scheduler: SchedulerMixin,
        empty_prompt_embedding: EmptyPromptEmbedding | None = None,
        refinement_unet: RefinementUNet | None = None,
        tokenizer: Any = None,
        text_encoder: Any = None,
        direction: str = "forward",
        default_size: int | None = None,
    ):
        super().__init__()
        if not isinstance(vae, (AutoencoderKL, HarmonyVAE)):
            raise TypeError(
                f"component 'vae' must be an AutoencoderKL or a HarmonyVAE, got {type(vae).__name__}"
            )
        check_unet(unet, "unet")
        if not isinstance(scheduler, SchedulerMixin):
            raise TypeError(
                f"component 'scheduler' must be a diffusers scheduler, got {type(scheduler).__name__}"
            )
        if empty_prompt_embedding is not None:
            if not isinstance(empty_prompt_embedding, EmptyPromptEmbedding):
                raise TypeError(
                    "component 'empty_prompt_embedding' must be an EmptyPromptEmbedding, "
                    f"got {type(empty_prompt_embedding).__name__}"
                )
            if empty_prompt_embedding.config.embedding_dim != unet.config.cross_attention_dim:
                raise ValueError(
                    f"component 'empty_prompt_embedding' has width {empty_prompt_embedding.config.embedding_dim} "
                    f"but the unet's cross_attention_dim is {unet.config.cross_attention_dim}"
                )
        if refinement_unet is not None and not isinstance(refinement_unet, RefinementUNet):
            raise TypeError(
                f"component 'refinement_unet' must be a RefinementUNet, got {type(refinement_unet).__name__}"
            )
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        self.register_modules(
            vae=vae,
            unet=unet,
            scheduler=scheduler,
            empty_prompt_embedding=empty_prompt_embedding,
            refinement_unet=refinement_unet,
            tokenizer=tokenizer,
            text_encoder=text_encoder,
        )
        if default_size is not None and (int(default_size) <= 0 or int(default_size) % vae_scale(vae)):
            raise ValueError(
                f"default_size {default_size} must be a positive multiple of the VAE's scale factor {vae_scale(vae)}"
            )
        self.register_to_config(
            direction=direction, default_size=None if default_size is None else int(default_size)
        )

    # ---- properties ----------------------------------------------------------------------------

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel (8 for SD)."""
        return vae_scale(self.vae)

    @property
    def default_sample_size(self) -> int:
        """Default processing size: ``default_size`` when recorded, else the UNet's training size
        ``unet.config.sample_size * vae_scale_factor`` (512 for SD)."""
        recorded = getattr(self.config, "default_size", None)
        if recorded is not None:
            return int(recorded)
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def uses_harmony_vae(self) -> bool:
        """True for DiffHarmony++ (the VAE is a ``HarmonyVAE``)."""
        return isinstance(self.vae, HarmonyVAE)

    # ---- text condition ------------------------------------------------------------------------

    def _prompt_embeds(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The empty-prompt embedding for a batch: (B, 77, C)."""
        if self.empty_prompt_embedding is None:
            if self.tokenizer is None or self.text_encoder is None:
                raise ValueError(
                    "the pipeline has no empty_prompt_embedding and no tokenizer/text_encoder to compute one"
                )
            embeds = compute_empty_prompt_embeds(self.tokenizer, self.text_encoder)  # (1, 77, C)
            self.register_modules(empty_prompt_embedding=EmptyPromptEmbedding.from_tensor(embeds))
        embeds = self.empty_prompt_embedding.embeds.detach()  # (1, 77, C)
        return embeds.to(device=device, dtype=dtype).expand(batch_size, -1, -1)  # (B, 77, C)

    # ---- step 1 --------------------------------------------------------------------------------

    def check_inputs(
        self,
        num_images: int,
        num_masks: int,
        num_inference_steps: int,
        output_type: str,
        direction: str,
        size_mode: str,
        size: int | None,
        height: int | None,
        width: int | None,
        generator: Any,
        refine: bool,
    ) -> None:
        """Argument checks; each error names the argument."""
        if num_images == 0:
            raise ValueError("image: no input given")
        if num_images != num_masks:
            raise ValueError(f"image and mask_image: {num_images} images but {num_masks} masks")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {list(OUTPUT_TYPES)}, got {output_type!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        if size_mode not in SIZE_MODES:
            raise ValueError(f"size_mode must be one of {list(SIZE_MODES)}, got {size_mode!r}")
        for name, value in (("size", size), ("height", height), ("width", width)):
            if value is not None and (int(value) != value or value < SIZE_MULTIPLE or value % SIZE_MULTIPLE):
                raise ValueError(f"{name} must be a positive multiple of {SIZE_MULTIPLE}, got {value!r}")
        if isinstance(generator, list):
            if len(generator) != num_images:
                raise ValueError(
                    f"generator: got {len(generator)} generators for {num_images} images (one per sample)"
                )
        elif generator is not None and num_images > 1:
            raise ValueError(
                f"generator: a single generator for {num_images} images would make each result depend on the "
                "batch; pass a list with one generator per image"
            )
        if refine and self.refinement_unet is None:
            raise ValueError("refine=True but the pipeline has no refinement_unet")

    # ---- call ----------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        mask_image: Any,
        num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        direction: str | None = None,
        size_mode: str = "keep_aspect",
        size: int | None = None,
        height: int | None = None,
        width: int | None = None,
        keep_background: bool = True,
        resize_to_input: bool | None = None,
        refine: bool | None = None,
        decode_tile_latent_size: int | None = None,
    ) -> DiffHarmonyPipelineOutput | tuple:
        r"""Harmonize composites (or, for an inverse pipeline, make composites from real images).

        Args:
            image: one image or a list: file paths (read with ``harmonylib.io.load_rgb``: EXIF
                rotation, RGBA on black, L/CMYK/16-bit converted; unreadable or truncated files
                raise ``ImageReadError`` naming the file), PIL images (converted the same way,
                no EXIF step), (H, W, 3) uint8/uint16/[0,1]-float arrays, or (3, H, W) / (B, 3, H, W)
                tensors in [0, 1]. Direction ``"forward"``: composites; ``"inverse"``: real images.
            mask_image: one mask per image, same kinds; foreground = white. Soft masks are
                thresholded at 0.5 (``harmonylib.imageproc.threshold_mask``). Must have the image's size.
            num_inference_steps: Euler-ancestral steps (paper: 5).
            generator: one ``torch.Generator`` per sample (a list), or a single one for one sample.
                ``None`` draws from torch's global RNG (not reproducible).
            output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"`` (see
                :class:`DiffHarmonyPipelineOutput`).
            return_dict: return a :class:`DiffHarmonyPipelineOutput` or a 1-tuple.
            direction: ``"forward"`` or ``"inverse"``; ``None`` = what the pipeline was trained for
                (``config.direction``). A mismatch only warns: the computation is the same, the
                meaning of ``image`` and of the result is swapped.
            size_mode: ``"keep_aspect"`` or ``"square"`` (see :func:`processing_size`).
            size: shorter side (keep_aspect) or N (square); default ``unet.sample_size * 8``.
            height, width: explicit processing size (both, multiples of 8).
            keep_background: paste the input's background back through the binarised mask, at
                the output size.
            resize_to_input: return the result at the input's size. Default: True for
                ``keep_aspect``, False for ``square`` (then the result stays at N×N, or at the
                refinement size when refined, as the authors save it).
            refine: run the refinement UNet (at its ``sample_size``, 256). Default: when present.
            decode_tile_latent_size: decode large latents in tiles of this latent size (Harmony-VAE
                only; trades exactness for memory).

        Returns:
            :class:`DiffHarmonyPipelineOutput` or ``(images,)``.

        Bad inputs: image and mask of different sizes → ``ValueError`` naming both sizes; an empty
        mask → that input is returned unchanged, with an :class:`EmptyMaskWarning` (for
        ``output_type="latent"`` it runs as usual); a mask that is all foreground → runs, with a
        :class:`FullMaskWarning`; a mask whose foreground vanishes at latent resolution runs
        (the background paste still uses the full-resolution mask).

        Precision: fp32, bf16 and fp16 run on CPU (tested on tiny models). Noise is drawn in fp32
        and latents stay fp32 through the scheduler, so a seed gives the same noise in every dtype.
        The VAE is not upcast for fp16 (``force_upcast`` is ignored, as in the authors' pipeline).
        """
        # 1. Check inputs
        images_in, masks_in = _as_list(image), _as_list(mask_image)
        direction = direction or self.config.direction
        refine = (self.refinement_unet is not None) if refine is None else bool(refine)
        self.check_inputs(
            len(images_in), len(masks_in), num_inference_steps, output_type, direction,
            size_mode, size, height, width, generator, refine,
        )  # fmt: skip
        if direction != self.config.direction:
            warnings.warn(
                f"direction={direction!r} but this pipeline was trained for {self.config.direction!r}",
                stacklevel=2,
            )
        if resize_to_input is None:
            resize_to_input = size_mode == "keep_aspect"
        generators = generator if isinstance(generator, list) else [generator] * len(images_in)

        # 2. Prepare: arrays at input size, binarised masks, processing and output sizes
        samples: list[_Sample] = []
        for i, (img, msk) in enumerate(zip(images_in, masks_in, strict=True)):
            img_arr = _image_to_array(img, f"image[{i}]")  # (H, W, 3)
            msk_arr = threshold_mask(_mask_to_array(msk, f"mask_image[{i}]"))  # (H, W) in {0, 1}
            if img_arr.shape[:2] != msk_arr.shape:
                raise ValueError(
                    f"image[{i}] is {img_arr.shape[1]}x{img_arr.shape[0]} (WxH) but mask_image[{i}] is "
                    f"{msk_arr.shape[1]}x{msk_arr.shape[0]}; they must have the same size"
                )
            empty = not msk_arr.any()
            if empty:
                warnings.warn(
                    f"mask_image[{i}] is empty: image[{i}] is returned unchanged",
                    EmptyMaskWarning,
                    stacklevel=2,
                )
            elif msk_arr.all():
                warnings.warn(
                    f"mask_image[{i}] covers the whole image: no background to match",
                    FullMaskWarning,
                    stacklevel=2,
                )
            proc_hw = processing_size(
                img_arr.shape[:2], size_mode, size, height, width, self.default_sample_size
            )
            if resize_to_input:
                out_hw = tuple(img_arr.shape[:2])
            elif refine:
                out_hw = (self.refinement_unet.config.sample_size,) * 2
            else:
                out_hw = proc_hw
            samples.append(
                _Sample(
                    i, img_arr, msk_arr, proc_hw, out_hw, generators[i], empty and output_type != "latent"
                )
            )

        device = self._execution_device
        vae_dtype, unet_dtype = self.vae.dtype, self.unet.dtype
        results: list[Any] = [None] * len(samples)

        # Samples of equal processing size run as one batch; each keeps its own generator, so
        # grouping never changes a result.
        groups: dict[tuple[int, int], list[_Sample]] = {}
        for s in samples:
            if not s.empty:
                groups.setdefault(s.proc_hw, []).append(s)

        for (ph, pw), group in groups.items():
            b = len(group)
            gens = [s.generator for s in group]
            gens = None if all(g is None for g in gens) else gens
            # inputs may differ in size: resize each, then one batch at (ph, pw)
            images_in = [torch.from_numpy(s.image).permute(2, 0, 1)[None] for s in group]  # (1, 3, H_i, W_i)
            masks_in = [torch.from_numpy(s.mask)[None, None] for s in group]  # (1, 1, H_i, W_i)
            image_p = torch.cat([_resize_image(x, (ph, pw)) for x in images_in])  # (b, 3, ph, pw)
            mask_p = torch.cat([_resize_mask(m, (ph, pw)) for m in masks_in])  # (b, 1, ph, pw)
            image_p = (image_p.clamp(0, 1) * 2.0 - 1.0).to(device)  # (b, 3, ph, pw) in [-1, 1]
            mask_p = mask_p.to(device)

            # 3. Encode: composite posterior E(I) (sampled in step 4, after z_T, as the authors draw)
            posterior = self.vae.encode(image_p.to(vae_dtype)).latent_dist  # over (b, 4, ph/8, pw/8)
            latent_hw = tuple(posterior.mean.shape[-2:])
            mask_latents = prepare_mask_latents(mask_p, latent_hw).to(unet_dtype)  # (b, 1, h, w)
            prompt_embeds = self._prompt_embeds(b, device, unet_dtype)  # (b, 77, C)

            # 4. Prepare latents: draw z_T, then the composite latent sample (draws 1 and 2)
            self.scheduler.set_timesteps(num_inference_steps, device=device)
            timesteps = self.scheduler.timesteps
            shape = (b, NUM_LATENT_CHANNELS, *latent_hw)
            latents = randn_tensor(shape, generator=gens, device=device, dtype=torch.float32)  # (b, 4, h, w)
            latents = latents * self.scheduler.init_noise_sigma
            composite_latents = _sample_posterior(posterior, gens, device) * self.vae.config.scaling_factor
            composite_latents = composite_latents.to(unet_dtype)  # (b, 4, h, w)

            # 5. Denoise: Euler ancestral, guidance 1 (no CFG); one noise draw per step (draw 3)
            with self.progress_bar(total=len(timesteps)) as progress:
                for t in timesteps:
                    latent_model_input = self.scheduler.scale_model_input(latents, t)  # noisy channels only
                    unet_input = prepare_unet_input(
                        latent_model_input.to(unet_dtype), mask_latents, composite_latents
                    )  # (b, 9, h, w)
                    noise_pred = self.unet(unet_input, t, encoder_hidden_states=prompt_embeds).sample
                    latents = self.scheduler.step(noise_pred.float(), t, latents, generator=gens).prev_sample
                    progress.update()

            if output_type == "latent":
                for j, s in enumerate(group):
                    results[s.index] = latents[j].cpu()
                continue

            # 6. Decode: Harmony-VAE with cond = cat[image, mask] (draw 4), else the plain SD decoder
            z = latents / self.vae.config.scaling_factor  # unscaled (b, 4, h, w)
            if self.uses_harmony_vae:
                cond = torch.cat([image_p, mask_p], dim=1).to(vae_dtype)  # (b, 4, ph, pw)
                decoded = self.vae.decode_with_cond(
                    z.to(vae_dtype),
                    cond,
                    generator=gens,
                    sample_posterior=True,
                    tile_latent_size=decode_tile_latent_size,
                ).sample  # (b, 3, ph, pw) in [-1, 1]
            else:
                decoded = self.vae.decode(z.to(vae_dtype)).sample  # (b, 3, ph, pw)
            decoded = decoded.float()

            # 7. Optional refinement (DiffHarmony stage 2, at its sample size, 256)
            if refine:
                rs = int(self.refinement_unet.config.sample_size)
                harm_r = _resize_image(decoded, (rs, rs)).clamp(-1, 1)  # (b, 3, 256, 256)
                comp_r = torch.cat([_resize_image(x, (rs, rs)) for x in images_in]).clamp(0, 1) * 2 - 1
                mask_r = torch.cat([_resize_mask(m, (rs, rs)) for m in masks_in])  # (b, 1, 256, 256)
                ref_in = torch.cat([harm_r, mask_r.to(device), comp_r.to(device)], dim=1)  # (b, 7, 256, 256)
                ref_dtype = self.refinement_unet.dtype
                decoded = self.refinement_unet(ref_in.to(ref_dtype)).sample.float()  # (b, 3, 256, 256)

            # 8. Postprocess (per sample): [0, 1], output size, background paste
            decoded = (decoded / 2 + 0.5).clamp(0, 1).cpu()  # (b, 3, *, *)
            for j, s in enumerate(group):
                results[s.index] = self._finish(decoded[j], s, keep_background)

        for s in samples:  # empty masks: the input, at the output size
            if s.empty:
                results[s.index] = self._finish(
                    torch.from_numpy(s.image).permute(2, 0, 1), s, keep_background
                )

        images = self._format(results, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return DiffHarmonyPipelineOutput(images=images)

    # ---- step 8 helpers ------------------------------------------------------------------------

    @staticmethod
    def _finish(result: torch.Tensor, s: _Sample, keep_background: bool) -> torch.Tensor:
        """(3, h, w) in [0, 1] → (3, H_out, W_out), background pasted if asked."""
        out = _resize_image(result[None].float(), s.out_hw).clamp(0, 1)  # (1, 3, Ho, Wo)
        if keep_background:
            inp = _resize_image(torch.from_numpy(s.image).permute(2, 0, 1)[None], s.out_hw).clamp(0, 1)
            m = _resize_mask(torch.from_numpy(s.mask)[None, None], s.out_hw)  # (1, 1, Ho, Wo)
            out = out * m + inp * (1 - m)
        return out[0]

    @staticmethod
    def _format(results: list[torch.Tensor], output_type: str) -> Any:
        if output_type == "latent":
            shapes = {tuple(r.shape) for r in results}
            return torch.stack(results) if len(shapes) == 1 else results
        if output_type == "pil":
            return [PIL.Image.fromarray(to_uint8(r.permute(1, 2, 0).numpy())) for r in results]
        same = len({tuple(r.shape) for r in results}) == 1
        if output_type == "pt":
            return torch.stack(results) if same else results  # (B, 3, H, W)
        arrays = [r.permute(1, 2, 0).numpy().astype(np.float32) for r in results]  # (H, W, 3)
        return np.stack(arrays) if same else arrays

    # ---- loading -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> DiffHarmonyPipeline:
        """Load a folder written by ``save_pretrained`` (never downloads).

        Custom components (``HarmonyVAE``, ``EmptyPromptEmbedding``, ``RefinementUNet``) are
        recorded in ``model_index.json`` by module path and re-imported from harmonylib. For the
        authors' released folders use :meth:`from_authors_layout`.

        Raises:
            FileNotFoundError: the folder, its ``model_index.json`` or a component folder is
                missing (the message names the path).
            ValueError / TypeError: a component has the wrong class (the message names it).
        """
        path = Path(pretrained_model_name_or_path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: pipeline folder does not exist (harmonylib never downloads)")
        index = path / "model_index.json"
        if not index.is_file():
            raise FileNotFoundError(
                f"{index}: missing, so {path} is not a saved pipeline. For the authors' released "
                "checkpoints use DiffHarmonyPipeline.from_authors_layout(base_dir, unet_dir=..., harmony_vae_dir=...)"
            )
        spec = json.loads(index.read_text())
        if spec.get("_class_name") != cls.__name__:
            raise ValueError(
                f"{index}: describes a {spec.get('_class_name')!r}, not a {cls.__name__}. An SD-inpainting "
                "folder (the authors' base/) loads with DiffHarmonyPipeline.from_authors_layout(base_dir, ...)"
            )
        for name, entry in spec.items():
            if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
                continue
            if not (path / name).is_dir():
                raise FileNotFoundError(
                    f"{path / name}: folder of component {name!r} ({entry[1]}) is missing"
                )
        kwargs.setdefault("local_files_only", True)
        try:
            pipe = super().from_pretrained(path, **kwargs)
        except (TypeError, ValueError, OSError) as exc:
            exc.args = (f"{path}: {exc.args[0] if exc.args else exc}", *exc.args[1:])
            raise
        return pipe

    @classmethod
    def from_authors_layout(
        cls,
        base_dir: str | os.PathLike,
        unet_dir: str | os.PathLike | None = None,
        harmony_vae_dir: str | os.PathLike | None = None,
        vae_dir: str | os.PathLike | None = None,
        refinement_dir: str | os.PathLike | None = None,
        torch_dtype: torch.dtype | None = None,
        empty_prompt_embeds: str | os.PathLike | torch.Tensor | None = None,
        cache_dir: str | os.PathLike | None = None,
        direction: str = "forward",
        dtype: torch.dtype | None = None,
    ) -> DiffHarmonyPipeline:
        """Assemble a pipeline from the authors' folders (official-implementation.md §3.1, peers.md §4.1).

        Args:
            base_dir: an SD-inpainting root (``model_index.json``, ``unet/``, ``vae/``,
                ``scheduler/``, ``text_encoder/``, ``tokenizer/``; ``safety_checker`` and
                ``feature_extractor`` are never loaded). ``.bin`` or ``.safetensors`` weights.
            unet_dir: the fine-tuned UNet: a model folder (``config.json`` + weights, e.g.
                ``weights-N/``) or a folder holding ``unet/``. Default: ``base_dir/unet``.
            harmony_vae_dir: a Harmony-VAE folder (``config.json`` says ``ConditionVAE`` or
                ``HarmonyVAE``) → DiffHarmony++.
            vae_dir: a plain VAE folder (e.g. ``sd-vae-ft-mse``), used when no ``harmony_vae_dir``.
                Default: ``base_dir/vae``. The class is read from ``config.json`` ``_class_name``,
                so a Harmony-VAE given here is also recognised.
            refinement_dir: a stage-2 refinement UNet folder (optional).
            torch_dtype: dtype for all weights (``dtype`` is an alias, diffusers' newer name).
            empty_prompt_embeds: a cached embedding (file or (1, 77, C) tensor). Default: looked up
                by :func:`harmonylib.models.unet.load_or_compute_empty_prompt_embeds` (cache next
                to ``base_dir`` or in the user cache, else computed once with ``transformers``).
            cache_dir: user cache for the embedding.
            direction: ``"forward"`` or ``"inverse"`` (the authors' ``-gen`` models).

        Raises:
            FileNotFoundError: a folder or ``config.json`` is missing (named).
            ValueError: a folder holds a model of an unexpected class (named).
            ImportError: no cached embedding and ``transformers`` missing (says how to fix).
        """
        base_dir = Path(base_dir)
        if not base_dir.is_dir():
            raise FileNotFoundError(f"{base_dir}: SD-inpainting base folder does not exist")
        torch_dtype = dtype if dtype is not None else torch_dtype
        load_kw: dict[str, Any] = {"local_files_only": True}
        if torch_dtype is not None:
            load_kw["dtype"] = torch_dtype

        # UNet: the fine-tuned one, else the base's
        unet_folder = _model_folder(Path(unet_dir) if unet_dir is not None else base_dir / "unet", "unet")
        _expect_class(unet_folder, ("UNet2DConditionModel",), "unet")
        unet = UNet2DConditionModel.from_pretrained(unet_folder, **load_kw)
        check_unet(unet, f"unet ({unet_folder})")

        # VAE: chosen by the class its config names, never by the folder name
        if harmony_vae_dir is not None:
            vae = load_vae(harmony_vae_dir, require_harmony=True, **load_kw)
        else:
            vae = load_vae(vae_dir if vae_dir is not None else base_dir / "vae", **load_kw)

        # Scheduler: the base's noise schedule, sampled with Euler ancestral (linspace)
        sched_file = base_dir / "scheduler" / "scheduler_config.json"
        if not sched_file.is_file():
            raise FileNotFoundError(f"{sched_file}: missing (the base folder's scheduler config)")
        scheduler = make_scheduler(json.loads(sched_file.read_text()))

        # Text condition: the cached / computed empty-prompt embedding
        if isinstance(empty_prompt_embeds, torch.Tensor):
            embeds = empty_prompt_embeds
        elif empty_prompt_embeds is not None:
            embeds = load_empty_prompt_embeds(empty_prompt_embeds)
        else:
            embeds = load_or_compute_empty_prompt_embeds(base_dir, cache_dir=cache_dir)
        embedding = EmptyPromptEmbedding.from_tensor(embeds)
        if torch_dtype is not None:
            embedding.to(torch_dtype)

        refinement = None
        if refinement_dir is not None:
            ref_folder = _model_folder(Path(refinement_dir), "refinement_unet")
            _expect_class(ref_folder, ("RefinementUNet", "UNet2DCustom"), "refinement_unet")
            refinement = RefinementUNet.from_pretrained(ref_folder, **load_kw)

        pipe = cls(
            vae=vae,
            unet=unet,
            scheduler=scheduler,
            empty_prompt_embedding=embedding,
            refinement_unet=refinement,
            direction=direction,
        )
        return pipe


# ------------------------------------------------------------------------------------------------
# Loading helpers


def _model_folder(path: Path, sub: str) -> Path:
    """``path`` if it holds ``config.json``, else ``path/sub`` if that does; else FileNotFoundError."""
    if (path / "config.json").is_file():
        return path
    if (path / sub / "config.json").is_file():
        return path / sub
    if not path.exists():
        raise FileNotFoundError(f"{path}: folder for component {sub!r} does not exist")
    raise FileNotFoundError(f"{path}: no config.json for component {sub!r} (nor in {path / sub})")


def _expect_class(folder: Path, allowed: Sequence[str], component: str) -> str:
    name = json.loads((folder / "config.json").read_text()).get("_class_name")
    if name is not None and name not in allowed:
        raise ValueError(
            f"{folder}: holds a {name!r}, but component {component!r} must be one of {list(allowed)}"
        )
    return name


_HARMONY_VAE_CLASS_NAMES = ("HarmonyVAE", "ConditionVAE")


def load_vae(
    folder: str | os.PathLike, require_harmony: bool = False, **kwargs: Any
) -> AutoencoderKL | HarmonyVAE:
    """Load a VAE folder as the class its ``config.json`` names.

    ``AutoencoderKL`` → diffusers ``AutoencoderKL``; ``ConditionVAE`` (authors) or ``HarmonyVAE``
    → :class:`HarmonyVAE`. Any other class raises ``ValueError`` naming the folder.
    """
    path = _model_folder(Path(folder), "vae")
    allowed = _HARMONY_VAE_CLASS_NAMES if require_harmony else ("AutoencoderKL", *_HARMONY_VAE_CLASS_NAMES)
    name = _expect_class(path, allowed, "harmony_vae" if require_harmony else "vae")
    if require_harmony and name is None:
        raise ValueError(f"{path}: config.json names no class; a Harmony-VAE folder says {list(allowed)}")
    kwargs.setdefault("local_files_only", True)
    if name in _HARMONY_VAE_CLASS_NAMES:
        return HarmonyVAE.from_pretrained(path, **kwargs)
    return AutoencoderKL.from_pretrained(path, **kwargs)

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

Here: the class and steps 3-7 of a call (encode, denoise, decode, refine). Steps 1-2 and 8 (checks,
inputs, masks binarised by ``imageproc.threshold_mask``, sizes, background paste, output types) are
in :mod:`harmonylib.pipeline.processing`; loading is in :mod:`harmonylib.pipeline.loading`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, SchedulerMixin, UNet2DConditionModel
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from harmonylib.models.harmony_vae import HarmonyVAE
from harmonylib.models.refinement_unet import RefinementUNet
from harmonylib.models.scheduler import DEFAULT_NUM_INFERENCE_STEPS
from harmonylib.models.unet import (
    NUM_LATENT_CHANNELS,
    EmptyPromptEmbedding,
    check_unet,
    compute_empty_prompt_embeds,
    prepare_mask_latents,
    prepare_unet_input,
)
from harmonylib.pipeline.loading import PipelineLoading
from harmonylib.pipeline.processing import (
    DIRECTIONS,
    PreparedSample,
    _as_list,
    _resize_image,
    _resize_mask,
    check_arguments,
    finish_sample,
    format_results,
    prepare_samples,
)


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


def _sample_posterior(dist: Any, generator: Any, device: torch.device) -> torch.Tensor:
    """``dist.sample(generator)`` with the noise drawn in float32 (then cast), one stream per sample."""
    noise = randn_tensor(dist.mean.shape, generator=generator, device=device, dtype=torch.float32)
    return dist.mean + dist.std * noise.to(dist.mean.dtype)  # (B, 4, h, w)


def vae_scale(vae: Any) -> int:
    """Pixels per latent pixel of a VAE (2 ** (levels - 1))."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


class DiffHarmonyPipeline(PipelineLoading, DiffusionPipeline):
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
        check_arguments(
            len(images_in), len(masks_in), num_inference_steps, output_type, direction,
            size_mode, size, height, width, generator, refine, self.refinement_unet is not None,
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
        samples = prepare_samples(
            images_in, masks_in, generators, size_mode=size_mode, size=size, height=height, width=width,
            default_size=self.default_sample_size, resize_to_input=resize_to_input,
            refine_size=self.refinement_unet.config.sample_size if refine else None,
            latent_output=output_type == "latent",
        )  # fmt: skip

        device = self._execution_device
        vae_dtype, unet_dtype = self.vae.dtype, self.unet.dtype
        results: list[Any] = [None] * len(samples)

        # Samples of equal processing size run as one batch; each keeps its own generator, so
        # grouping never changes a result.
        groups: dict[tuple[int, int], list[PreparedSample]] = {}
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
                results[s.index] = finish_sample(decoded[j], s, keep_background)

        for s in samples:  # empty masks: the input, at the output size
            if s.empty:
                results[s.index] = finish_sample(
                    torch.from_numpy(s.image).permute(2, 0, 1), s, keep_background
                )

        images = format_results(results, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return DiffHarmonyPipelineOutput(images=images)

"""Configuration of training (``harmonylib.training``): one loop for every model, one section per recipe.

Defaults are the paper's values (§5.2) or, where the paper is silent, the authors' code defaults
(official-implementation.md §2, §4, §8), labelled "code default". Values we had to choose are
labelled "chosen".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ResizeName = Literal["square", "center_crop", "keep_aspect"]
Direction = Literal["forward", "inverse"]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and the learning-rate schedule (``diffusers.optimization.get_scheduler``)."""

    lr: float = 1e-4  # paper §5.2 / code default of every trainer
    betas: tuple[float, float] = (0.9, 0.999)  # paper §5.2
    weight_decay: float = 1e-2  # code default (diffharmony.py, refinement_stage.py, cvae.py)
    eps: float = 1e-8  # code default
    # "constant_with_warmup": linear warmup then constant (paper §5.2; code default).
    lr_scheduler: Literal["constant_with_warmup", "constant", "linear", "cosine"] = "constant_with_warmup"
    warmup_steps: int = 500  # code default (optimizer steps)
    warmup_ratio: float | None = None  # if set, warmup = ceil(ratio * total optimizer steps); wins
    max_grad_norm: float | None = 1.0  # code default; None disables clipping


@dataclass(frozen=True)
class EMAConfig:
    """``diffusers.training_utils.EMAModel`` settings. ``decay`` is the maximum decay."""

    enabled: bool = True  # code default (--use_ema in every .sh)
    decay: float = 0.9999  # code default
    min_decay: float = 0.0  # EMAModel default
    update_after_step: int = 0  # EMAModel default
    # False: decay = min(decay, (1 + s) / (10 + s)), the EMAModel default the authors ran with.
    use_ema_warmup: bool = False
    inv_gamma: float = 1.0
    power: float = 2 / 3


@dataclass(frozen=True)
class LoopConfig:
    """What the training loop owns: batching, length, precision, checkpoints, optimiser, EMA."""

    batch_size: int = 16  # per process (code default: 16 per device)
    gradient_accumulation_steps: int = 1  # code default
    epochs: int = 100  # code default (diffharmony.py, refinement_stage.py)
    max_steps: int | None = None  # optimizer steps; wins over epochs when set
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    checkpointing_steps: int = 500  # code default
    checkpoints_total_limit: int = 3  # keep the newest K checkpoint-N folders
    log_every: int = 1  # a metrics.csv row every N optimizer steps
    num_workers: int = 0  # DataLoader workers per process
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)


@dataclass(frozen=True)
class PhotoCropConfig:
    """Random multi-scale photo crops (``harmonylib.data.photo_crops``) for the base models'
    pretraining; the crop side is the recipe's ``resolution``. Not a paper recipe; "chosen"."""

    # "builtin": the train photos of the built-in dataset (data.builtin.PHOTOS); "photo_set": the
    # vendored photo set (harmonylib.data.photo_set: scenes("train"), plus stamps() if ``stamps``);
    # "paths": the files or glob patterns in ``paths`` (relative to the project root).
    source: Literal["builtin", "photo_set", "paths"] = "builtin"
    paths: tuple[str, ...] = ()
    stamps: bool = True
    stamp_share: float = 0.25  # photo_set: about this share of crops come from stamps (scenes repeated)
    n_crops: int = 4096  # the fixed crop list (its order changes per epoch, the crops do not)
    upscales: tuple[int, ...] = (1, 2)  # content resized up by these, as inference sees it
    hflip: bool = True
    max_photo_side: int | None = 1024  # shrink larger photos once on load (memory)


@dataclass(frozen=True)
class InpaintingTrainConfig:
    """The SD-inpainting stand-in (``harmonylib.training.inpainting``): the 9-channel UNet trained
    with SD-inpainting's objective (eps-MSE; input cat[noisy latents, mask, masked-image latents])
    on photo crops with random masks, no harmonization data. Not a paper recipe (the paper starts
    from SD-inpainting's weights); every value is "chosen"."""

    arch: Literal["tiny", "mini"] = "mini"  # used when init is None (random weights)
    init: str | None = None  # continue from a pretrained folder (unet/ + empty_prompt_embedding/)
    vae: str | None = None  # the frozen AutoencoderKL folder; None: random vae_arch (tests)
    vae_arch: Literal["sd", "tiny", "mini"] = "mini"
    resolution: int = 64  # crop side, px
    crops: PhotoCropConfig = field(default_factory=PhotoCropConfig)
    masks_per_crop: int = 2  # cached masks per crop (cache_latents) ...
    # ... drawn with these probabilities of (full, rectangles, strokes): SD-inpainting's 25% "mask
    # everything", the rest split evenly between LaMa's boxes and strokes (training.inpainting).
    mask_mix: tuple[float, float, float] = (0.25, 0.375, 0.375)
    # True: encode every (crop, mask) once with the frozen VAE and train on the cached posteriors
    # (training.latent_cache); False: encode every step, with fresh masks per step.
    cache_latents: bool = True
    sample_posterior: bool = True  # SD: latents are posterior samples
    loop: LoopConfig = field(
        default_factory=lambda: LoopConfig(
            batch_size=16,
            epochs=4,
            checkpointing_steps=200,
            optim=OptimConfig(lr=2e-4, warmup_steps=100),
            ema=EMAConfig(decay=0.999),
        )
    )


@dataclass(frozen=True)
class UNetTrainConfig:
    """The DiffHarmony denoising UNet (forward) or DiffHarmony-gen (inverse), official-implementation.md §2."""

    direction: Direction = "forward"  # inverse: condition = real latents, target = composite latents
    # "fg_weighted": the authors' released loss mean((eps_hat - eps)^2 * M) * clamp(HW / sum M, 1, 5);
    # "mse": paper Eq. 1.
    loss: Literal["fg_weighted", "mse"] = "fg_weighted"
    fg_weight_max: float = 5.0  # code default (the clamp's upper bound)
    # What the UNet predicts: "epsilon" (SD-inpainting, DiffHarmony, the paper) or "v_prediction"
    # (v = sqrt(abar)·eps − sqrt(1−abar)·x0, as SD 2.x). An option, not the paper's: at the first
    # sampling step (sigma 14.6) an eps error reaches x0 multiplied by sigma, a v error about 1:1.
    # The inference scheduler follows it (harmonylib.assemble).
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"
    resolution: int = 512  # code default (.sh --resolution 512)
    resize: ResizeName = "square"  # code default (IhdDatasetSingleRes squashes)
    arch: Literal["sd15", "tiny", "mini"] = "sd15"  # used when init is None (random weights)
    init: str | None = "checkpoints/stable-diffusion-inpainting"  # SD-inpainting folder (unet/)
    # A released forward DiffHarmony UNet adopted as it is (paper §5.2: "we directly adopt" the
    # authors' UNet): a folder with config.json (or with unet/). Default: where the authors'
    # released bundle puts it, base/unet under checkpoints/ (docs/paper_checkpoints.md). None: the
    # forward UNet is trained from ``init``. Inverse, Table 2 and retrained UNets start from ``init``.
    adopt: str | None = "checkpoints/base/unet"
    vae: str | None = "checkpoints/sd-vae-ft-mse"  # AutoencoderKL folder; None: random vae_arch
    vae_arch: Literal["sd", "tiny", "mini"] = "sd"
    sample_posterior: bool = True  # code default: latents are posterior samples, not the mode
    loop: LoopConfig = field(
        default_factory=lambda: LoopConfig(mixed_precision="fp16")  # code default (.sh)
    )


PAPER_VARIANT = "ecd_zero"  # the paper's Harmony-VAE (Table 5, E_c+D / zero init)


@dataclass(frozen=True)
class HarmonyVAETrainConfig:
    """Harmony-VAE (paper §3.2, Eq. 2; §5.2 hyper-parameters), official-implementation.md §8.1."""

    direction: Direction = "forward"  # inverse: cond (real, mask), target composite (§4.1)
    loss: Literal["l2", "l1"] = "l2"  # paper Eq. 2; "l1" is the authors' code (cvae.py:695)
    # Table 5: ecd_* trains E_c + D, ec_* E_c only; *_random: default init of every zero conv.
    variant: Literal["ecd_zero", "ec_zero", "ecd_random", "ec_random"] = "ecd_zero"
    mask_conv_init: Literal["zero", "default"] = "zero"  # paper §3.2 (code: "default"); *_zero only
    sample_posterior: bool = True  # code default (both posteriors sampled)
    # The decoder's latent input while training: "real" = a sample of E(I_hat) (paper Eq. 2);
    # "denoised" = z'_0, the adopted forward UNet's sample for the composite, which the paper calls
    # the strictly correct input (§3.2; training.denoised_latents). Forward only.
    latent: Literal["real", "denoised"] = "real"
    resolution: int = 256  # paper §5.2
    resize: ResizeName = "center_crop"  # code default (IhdDatasetWithSDXLMetadata)
    vae: str | None = "checkpoints/sd-vae-ft-mse"  # the SD VAE it starts from (§3.2)
    vae_arch: Literal["sd", "tiny", "mini"] = "sd"  # used when vae is None (random weights)
    loop: LoopConfig = field(
        default_factory=lambda: LoopConfig(
            epochs=10,  # paper §5.2
            mixed_precision="fp16",  # code default
            optim=OptimConfig(weight_decay=0.0, warmup_ratio=0.02),  # paper §5.2
            ema=EMAConfig(decay=0.999),  # paper §5.2, "max_decay = 0.999"
        )
    )


@dataclass(frozen=True)
class RefinementTrainConfig:
    """DiffHarmony's stage-2 refinement UNet on frozen stage-1 outputs, official-implementation.md §4."""

    size: Literal["small", "base", "large", "tiny"] = "base"  # chosen: the .sh names no config
    in_channels: int = 7  # code default (.sh): [stage-1 output, mask, composite]
    resolution: int = 256  # code default
    stage1_resolution: int = 512  # code default (infer_resolution)
    resize: ResizeName = "square"  # code default (IhdDatasetMultiRes)
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(mixed_precision="fp16"))  # code default


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """The harmony classifier (paper §4.2, §5.2). The authors released no training code (§5)."""

    arch: Literal["resnet50", "mini"] = "resnet50"  # paper §5.2: ResNet-50
    linear_probe: bool = True  # paper §5.2: train only the head on pooled 2048-d features
    # "resnet": the ``arch`` ResNet (ImageNet weights from backbone_weights, or from scratch);
    # "vae_encoder": the encoder of our own base VAE (backbone_weights = its AutoencoderKL folder,
    # or a pretrained folder with vae/), global-pooled multi-level features (models.probe).
    backbone: Literal["resnet", "vae_encoder"] = "resnet"
    # vae_encoder only. "global": each level's per-channel mean/std over the whole image (the
    # paper's global pooling). "mask": each level pooled over the foreground and the background
    # separately, fed as fg-minus-bg differences (mean, log std): a composite's colour/light mismatch
    # between the regions is linear in these, while global pooling left mini's probe at chance
    # (ROC-AUC 0.52, LEVERS.md §5). A mask-pooled classifier needs the mask wherever it scores.
    pooling: Literal["global", "mask"] = "global"
    # resnet: a local torchvision ImageNet ResNet-50 state dict; nothing is downloaded.
    backbone_weights: str | None = "checkpoints/resnet50-imagenet.pth"
    resolution: int = 256  # code default (classify_cand_gen_data.py: Resize((256, 256)))
    resize: ResizeName = "square"  # code default (squash, no crop)
    # Training-time augmentation (chosen; the authors released no classifier training code). Each
    # composite and its real get the same draw (classifier_data.augment_pairs); test is never
    # augmented. hflip: mirror with p = 1/2; crop_scale: random resized crop of area
    # U(crop_scale, 1), 1.0 = off; color: global brightness/contrast/saturation factors
    # U(1 - color, 1 + color) on the whole image, 0 = off.
    augment_hflip: bool = False
    augment_crop_scale: float = 1.0
    augment_color: float = 0.0
    loop: LoopConfig = field(
        default_factory=lambda: LoopConfig(
            batch_size=32,  # chosen: 32 composites + their 32 reals per step (balanced)
            epochs=5,  # chosen: a linear probe converges in a few epochs
            checkpointing_steps=1000,
            optim=OptimConfig(lr=1e-3, weight_decay=0.0, warmup_steps=100),  # chosen
            ema=EMAConfig(enabled=False),  # chosen: no EMA for a linear head
        )
    )


@dataclass(frozen=True)
class AutoencoderTrainConfig:
    """A base ``AutoencoderKL`` trained from scratch: a stand-in for SD's VAE at mini scale.

    Not a paper recipe (the paper starts from SD's pretrained ``sd-vae-ft-mse``); every value is
    "chosen". Trains on composites and reals alike (L1 + ``kl_weight`` * KL).
    """

    arch: Literal["tiny", "mini"] = "tiny"  # models.configs: TINY_VAE_CONFIG / MINI_VAE_CONFIG
    # An explicit AutoencoderKL config (e.g. an f4 VAE); wins over ``arch`` when set.
    vae_config: dict[str, Any] | None = None
    kl_weight: float = 1e-6  # chosen: a near-deterministic latent, as SD's VAE
    resolution: int = 64
    resize: ResizeName = "square"
    # "harmony": composites and reals of the train split; "photo_crops": ``crops`` at ``resolution``.
    data: Literal["harmony", "photo_crops"] = "harmony"
    crops: PhotoCropConfig = field(default_factory=PhotoCropConfig)
    loop: LoopConfig = field(
        default_factory=lambda: LoopConfig(
            epochs=5,
            checkpointing_steps=500,
            optim=OptimConfig(lr=1e-3, weight_decay=0.0, warmup_steps=50),
            ema=EMAConfig(decay=0.999),
        )
    )


@dataclass(frozen=True)
class PixelBaselineTrainConfig:
    """The pixel-space harmonizer that stands in for HDNet_512 in Table 3
    (``harmonylib.models.pixel_baseline``; HDNet_512's code and weights are not public).

    Paper §5.3.3: HDNet trained "with 512px images", composites as input (no background crop of
    the real image). The loop defaults give it the DiffHarmony UNet's budget (code default: 100
    epochs of iHarmony4 at batch 16), "the same data with the same budget"; every value is "chosen".
    """

    size: Literal["smoke", "mini", "paper"] = "paper"  # width: PIXEL_BASELINE_CONFIGS[size]
    loss: Literal["mse", "fg_normalized"] = "mse"  # chosen (pixel_baseline_loss)
    resolution: int = 512  # paper §5.3.3: HDNet_512 trained at 512px
    resize: ResizeName = "square"  # as the UNet's training data
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(mixed_precision="fp16"))  # the UNet's


@dataclass(frozen=True)
class TrainConfig:
    """One section per recipe of ``harmonylib.training``."""

    unet: UNetTrainConfig = field(default_factory=UNetTrainConfig)
    harmony_vae: HarmonyVAETrainConfig = field(default_factory=HarmonyVAETrainConfig)
    refinement: RefinementTrainConfig = field(default_factory=RefinementTrainConfig)
    classifier: ClassifierTrainConfig = field(default_factory=ClassifierTrainConfig)
    autoencoder: AutoencoderTrainConfig = field(default_factory=AutoencoderTrainConfig)
    inpainting: InpaintingTrainConfig = field(default_factory=InpaintingTrainConfig)
    pixel_baseline: PixelBaselineTrainConfig = field(default_factory=PixelBaselineTrainConfig)

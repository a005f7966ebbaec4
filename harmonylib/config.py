"""Configuration as data: frozen dataclasses, one per concern, filled from a profile YAML.

A profile (``smoke``, ``mini``, ``paper``) is a YAML file in ``harmonylib/profiles/`` that
overrides only what differs from the defaults below. ``load_config`` rejects unknown keys and
wrong types before any work starts, naming the offending key, so a typo in a profile or in a
notebook parameter never silently falls back to a default.

The defaults are the paper's values (or the authors' code defaults where the paper is silent;
those are labelled "code default").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from harmonylib.paths import package_path

PROFILES_DIR = package_path("profiles")

SUBSETS = ("HCOCO", "HAdobe5k", "HFlickr", "Hday2night")


class ConfigError(ValueError):
    """A profile or override names an unknown key, or gives a value of the wrong type."""


@dataclass(frozen=True)
class BuiltinDataConfig:
    """The built-in dataset generated from photographs shipped inside installed packages."""

    image_size: int = 64  # shorter side of every generated image, px
    n_train: int = 2400  # composites in the train split (all subsets)
    n_test: int = 400  # composites in the test split
    min_train_per_subset: int = 120  # Table 2 trains on the two smallest subsets
    min_test_per_subset: int = 40
    # Validation split: whole photos held out from train AND test, for choosing settings (mini-v2).
    # 0 writes no val lists at all (smoke keeps its bytes).
    n_val: int = 0
    min_val_per_subset: int = 0
    # Which photographs: "packages" = the photos inside installed packages (scikit-image,
    # matplotlib, scikit-learn; generator v2's set), "vendored" = those scenes plus the curated
    # photo set shipped in harmonylib/assets/photos (harmonylib.data.photo_set), split by its manifest.
    photo_set: Literal["packages", "vendored"] = "packages"
    max_composites_per_mask: int = 5  # iHarmony4 shares a mask among x_1_1 ... x_1_5
    jpeg_quality: int = 95  # composites and reals are JPEG, as in iHarmony4
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Where the dataset lives and how it is read."""

    kind: Literal["builtin", "iharmony4"] = "iharmony4"
    root: str = "data/iHarmony4"  # relative paths resolve against the project root
    # Additional roots (e.g. generated composites from [augmentation]); name -> path.
    extra_roots: dict[str, str] = field(default_factory=dict)
    builtin: BuiltinDataConfig = field(default_factory=BuiltinDataConfig)
    # Read only these subsets (every root, every split); None: all. Table 2 trains each model on
    # one subset's training split only (paper §5.3.2).
    subsets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class EvalConfig:
    """The authors' evaluation protocol (official-implementation.md §7) and its switches."""

    resolution: int = 256
    # "gt": paste the ground-truth background into the prediction (authors' --use_gt_bg);
    # "composite": paste the composite's background; "none": score the raw prediction.
    background: Literal["gt", "composite", "none"] = "gt"
    # "dither": PIL convert("1") then NEAREST resize, as the authors; "threshold": >127.
    mask_mode: Literal["dither", "threshold"] = "dither"
    allow_missing: bool = False
    # Whose metric convention (harmonylib.conventions): "diffharmony" (the authors'), "issam",
    # "pctnet", "hdnet" or "harmonizer". mask_mode and resolution apply to "diffharmony" only.
    convention: str = "diffharmony"


@dataclass(frozen=True)
class LadderConfig:
    """The resolution ladder: every size the paper names, mapped to this profile (px).

    The paper scores at 256 px but infers at 1024 px through an f8 VAE, so at the scale the metric
    sees, the latent holds one value per 3 content values ((1024/8)^2 * 4 against 256^2 * 3); at
    512 px, one per 12. A smaller profile is a miniature of that regime only if it keeps these
    ratios: ``harmonylib.ladder.latent_ratio`` computes them, and ``check_ladder`` checks that every
    recipe and inference size of the profile is its rung here. Defaults are the paper's.
    """

    content: int = 256  # the evaluation scale in content terms: the information the metric sees
    vae_scale_factor: int = 8  # pixels per latent cell (SD VAE: f8)
    latent_channels: int = 4
    harmony_vae_train: int = 256  # paper §5.2: Harmony-VAE trained at 256
    unet_train: int = 512  # DiffHarmony UNet training size
    hdnet: int = 512  # HDNet_512 (Table 3's pixel-space baseline)
    refinement: int = 256  # refinement UNet training size
    refinement_stage1: int = 512  # the stage-1 predictions it refines
    table2_inference: int = 512  # §5.3.2: "inference only on 512px images"
    r_inf_low: int = 512  # Table 4 "512", Table 5
    r_inf_high: int = 1024  # Table 1, 3, 4 "1024"


# --------------------------------------------------------------------------------------------------
# Training (harmonylib.training). One loop for every model; each recipe has its own section.
# Defaults are the paper's values (§5.2) or, where the paper is silent, the authors' code defaults
# (official-implementation.md §2, §4, §8), labelled "code default". Values we had to choose are
# labelled "chosen".
# --------------------------------------------------------------------------------------------------

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
class PretrainConfig:
    """The mini pretraining recipe (``harmonylib.training.pretrain``): stand-ins for the paper's
    pretrained inputs (SD's ``sd-vae-ft-mse`` and DiffHarmony's forward UNet, "adopted directly",
    §5.2). Not a paper recipe; every value is "chosen". Defaults are the mini recipe whose outputs
    are committed under ``harmonylib/weights/mini``.

    (a) a base ``AutoencoderKL`` (``autoencoder``, the ``autoencoder`` recipe), on photo crops
    (``autoencoder.data``); (b) ``scaling_factor`` = 1 / std of posterior-sampled latents of that
    stage's data (as SD/LDM's ``scale_by_std``); (c) with ``route="inpainting"``, the SD-inpainting
    stand-in (``inpainting``, the ``inpainting`` recipe) on photo crops with random masks; (d) the
    forward DiffHarmony UNet (``unet``, the ``unet`` recipe) on the harmonization train split,
    fine-tuned from (c) (``route="scratch"``: from random weights, the earlier recipe). The
    ``vae`` and ``init`` fields of ``inpainting`` and ``unet`` are ignored (set by the recipe).
    """

    route: Literal["inpainting", "scratch"] = "inpainting"

    out_dir: str = "harmonylib/weights/mini"  # the committed folder; smoke writes elsewhere
    # Weights are trained and loaded in fp32; "float16" stores them in fp16 safetensors (size cap).
    weights_dtype: Literal["float16", "float32"] = "float16"
    scaling_batches: int | None = None  # batches of the train split for the latent std; None: all
    eval_batch_size: int = 32
    eval_timesteps_per_image: int = 4  # noise draws per test image for the held-out denoising loss
    autoencoder: AutoencoderTrainConfig = field(
        default_factory=lambda: AutoencoderTrainConfig(
            arch="mini",
            data="photo_crops",
            loop=LoopConfig(
                batch_size=8,  # 8 composites + their 8 reals
                epochs=4,
                checkpointing_steps=100,
                optim=OptimConfig(lr=1e-3, weight_decay=0.0, warmup_steps=50, lr_scheduler="cosine"),
                ema=EMAConfig(decay=0.999),
            ),
        )
    )
    inpainting: InpaintingTrainConfig = field(default_factory=InpaintingTrainConfig)
    unet: UNetTrainConfig = field(
        default_factory=lambda: UNetTrainConfig(
            direction="forward",
            loss="fg_weighted",
            resolution=64,
            arch="mini",
            init=None,
            adopt=None,  # pretraining makes the released UNet; it adopts none
            vae=None,
            vae_arch="mini",
            loop=LoopConfig(
                batch_size=16,
                epochs=8,
                checkpointing_steps=200,
                optim=OptimConfig(lr=2e-4, warmup_steps=100),
                ema=EMAConfig(decay=0.999),
            ),
        )
    )


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation with the inverse model (§4.1; Table 2, §5.3.2) and the Human Harmony build (§4.2).

    Read by :mod:`harmonylib.table2`; no training run hashes these values (the Table 2 runs carry
    what they need in their own ``data`` and ``train.unet`` sections).
    """

    gamma: float = 1.0  # blending ratio γ (paper §5.3.2: 1 for both subsets)
    table2_subsets: tuple[str, ...] = ("Hday2night", "HFlickr")  # paper §5.3.2
    # Candidates generated per (real, mask) pair for Table 2; ⌈γ·N2/N1⌉ of them are mixed in, so a
    # smaller value is raised to that. The paper does not state K for Table 2; chosen: §5.1.2's K.
    table2_k: int = 10
    # Optimizer steps of every Table 2 run, base and augmented alike ("the same total amount of
    # data", §5.3.2). None: the unet loop's max_steps, else its epochs over the *base* list.
    table2_steps: int | None = None
    table2_inference_size: int = 512  # §5.3.2: "inference only on 512px images", scored at 256
    generation_steps: int = 5  # Euler-ancestral steps per candidate (§5.2)
    generation_batch_size: int = 8
    human_harmony_k: int = 10  # candidates per pair (paper §5.1.2: K = 10)
    # Images of the generated iMaterialist stand-in (smoke and mini; the paper profile reads the
    # real release). 140 images give 120 pairs (every 7th is a product shot the filter drops).
    human_harmony_fixture_images: int = 140
    human_harmony_fixture_size: int = 64  # shorter side of the stand-in's images, px


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


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one profile."""

    profile: str = "paper"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ladder: LadderConfig = field(default_factory=LadderConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def available_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (tuples/dataclasses built)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return _build(tp, value, key)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for alt in args:
            if alt is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, alt, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} matches none of {_type_name(tp)}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        kt, vt = args or (Any, Any)
        return {_coerce(k, kt, f"{key}.<key>"): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected a bool, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = prefix or cls.__name__
        raise ConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(names)}")
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            value = data[f.name]
            default = _field_default(f)
            if is_dataclass(default) and isinstance(value, dict):
                # A nested section overrides only what it names: the rest keeps this field's own
                # default (e.g. the Harmony-VAE loop's epochs=10), not the nested class's defaults.
                value = _deep_merge(_shallow_asdict(default), value)
            kwargs[f.name] = _coerce(value, hints[f.name], f"{prefix}.{f.name}".lstrip("."))
    return cls(**kwargs)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shallow_asdict(obj: Any) -> dict[str, Any]:
    """Field values of a dataclass instance; nested dataclasses become dicts, the rest is kept as is."""
    return {
        f.name: _shallow_asdict(v) if is_dataclass(v) else v
        for f in fields(obj)
        for v in [getattr(obj, f.name)]
    }


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _dotted_to_nested(overrides: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        node = nested
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return nested


def load_config(profile: str | Path = "mini", overrides: dict[str, Any] | None = None) -> Config:
    """Load a profile by name (or a YAML path) and apply overrides.

    Args:
        profile: a shipped profile name (``smoke``, ``mini``, ``paper``) or a path to a YAML file.
        overrides: values that win over the profile; keys may be dotted (``"data.root"``).

    Returns:
        The resolved, type-checked :class:`Config`.

    Raises:
        ConfigError: unknown profile, unknown key or wrong type. Nothing has run yet.
    """
    path = Path(profile)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILES_DIR / f"{profile}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown profile {str(profile)!r}; available: {available_profiles()}")
    elif not path.is_file():
        raise ConfigError(f"{path}: profile file does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    raw.setdefault("profile", path.stem)
    if overrides:
        raw = _deep_merge(raw, _dotted_to_nested(overrides))
    return _build(Config, raw)


def with_seed(cfg: Config, seed: int, variant: str | None = None) -> Config:
    """``cfg`` with ``seed`` (and the Harmony-VAE ``variant``) replaced; the run hash follows both."""
    out = dataclasses.replace(cfg, seed=int(seed))
    if variant is not None:
        hv = dataclasses.replace(cfg.train.harmony_vae, variant=variant)
        out = dataclasses.replace(out, train=dataclasses.replace(out.train, harmony_vae=hv))
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of a (nested) config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def config_hash(cfg: Any) -> str:
    """A short, stable hash of a config; used to name caches and DONE markers."""
    blob = json.dumps(to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.unet.direction=inverse", "seed=3"]`` -> overrides for :func:`load_config`.

    Values are parsed as YAML scalars (``3`` is an int, ``null`` None); command lines' ``--set``.
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out

"""The whole configuration of a profile (:class:`Config`) and its sections beside data and training:
the mini pretraining recipe and the augmentation / Human Harmony build settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harmonylib.config.data import DataConfig, EvalConfig, LadderConfig
from harmonylib.config.training import (
    AutoencoderTrainConfig,
    EMAConfig,
    InpaintingTrainConfig,
    LoopConfig,
    OptimConfig,
    TrainConfig,
    UNetTrainConfig,
)


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

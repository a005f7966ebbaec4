"""Configuration of the data side: which dataset, the evaluation protocol, the resolution ladder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SUBSETS = ("HCOCO", "HAdobe5k", "HFlickr", "Hday2night")


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
    # Share of one-mask TRAIN reals whose foreground is a vendored photographic stamp pasted on the
    # scene crop (data.builtin.stamps): more distinct foreground objects; 0 keeps every byte.
    stamp_foregrounds: float = 0.0
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

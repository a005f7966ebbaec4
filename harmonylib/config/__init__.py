"""Configuration as data: frozen dataclasses, one per concern, filled from a profile YAML.

A profile (``smoke``, ``mini``, ``paper``) is a YAML file in ``harmonylib/profiles/`` that
overrides only what differs from the dataclass defaults. ``load_config`` rejects unknown keys and
wrong types before any work starts, naming the offending key, so a typo in a profile or in a
notebook parameter never silently falls back to a default.

The defaults are the paper's values (or the authors' code defaults where the paper is silent;
those are labelled "code default").

Modules, one concern each: :mod:`~harmonylib.config.data` (dataset, evaluation protocol,
resolution ladder), :mod:`~harmonylib.config.training` (the loop and one section per recipe),
:mod:`~harmonylib.config.profile` (:class:`Config`, pretraining, augmentation) and
:mod:`~harmonylib.config.loading` (profiles, overrides, type checks, hashing). Every name is
importable from ``harmonylib.config``.
"""

from __future__ import annotations

from harmonylib.config.data import SUBSETS, BuiltinDataConfig, DataConfig, EvalConfig, LadderConfig
from harmonylib.config.loading import (
    PROFILES_DIR,
    ConfigError,
    available_profiles,
    config_hash,
    load_config,
    parse_overrides,
    to_dict,
    with_seed,
)
from harmonylib.config.profile import AugmentConfig, Config, PretrainConfig
from harmonylib.config.training import (
    PAPER_VARIANT,
    AutoencoderTrainConfig,
    ClassifierTrainConfig,
    Direction,
    EMAConfig,
    HarmonyVAETrainConfig,
    InpaintingTrainConfig,
    LoopConfig,
    OptimConfig,
    PhotoCropConfig,
    PixelBaselineTrainConfig,
    RefinementTrainConfig,
    ResizeName,
    TrainConfig,
    UNetTrainConfig,
)

__all__ = [
    "PAPER_VARIANT",
    "PROFILES_DIR",
    "SUBSETS",
    "AugmentConfig",
    "AutoencoderTrainConfig",
    "BuiltinDataConfig",
    "ClassifierTrainConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "Direction",
    "EMAConfig",
    "EvalConfig",
    "HarmonyVAETrainConfig",
    "InpaintingTrainConfig",
    "LadderConfig",
    "LoopConfig",
    "OptimConfig",
    "PhotoCropConfig",
    "PixelBaselineTrainConfig",
    "PretrainConfig",
    "RefinementTrainConfig",
    "ResizeName",
    "TrainConfig",
    "UNetTrainConfig",
    "available_profiles",
    "config_hash",
    "load_config",
    "parse_overrides",
    "to_dict",
    "with_seed",
]

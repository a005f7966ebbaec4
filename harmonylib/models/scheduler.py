"""Noise schedulers: Euler ancestral for inference, scaled-linear DDPM for training.

Inference follows the paper (§5.2, "Euler ancestral discrete scheduler [21] ... in only 5 steps")
and the authors' code (official-implementation.md §3.1): ``EulerAncestralDiscreteScheduler``
built from the SD-inpainting scheduler config. Their base config (an old PNDM config) has no
``timestep_spacing`` key, so Euler's own default ``"linspace"`` applies and 5 steps give
t = [999, 749.25, 499.5, 249.75, 0] with ``init_noise_sigma`` = sigma_max ~= 14.61.

A config saved by a recent diffusers *does* carry ``timestep_spacing`` (``"leading"`` for DDPM
and PNDM). Reloaded as is, it gives t = [801, 601, 401, 201, 1] and ``init_noise_sigma``
~= 5.23: a different sampler. :func:`make_scheduler` therefore forces ``"linspace"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diffusers import DDPMScheduler, EulerAncestralDiscreteScheduler, SchedulerMixin

# Paper §5.2 / authors' main.py:249: 5 Euler-ancestral steps, guidance 1 (no CFG).
DEFAULT_NUM_INFERENCE_STEPS = 5

# The SD-1.x noise schedule (scaled-linear betas 0.00085 -> 0.012 over 1000 steps), as the
# DDPMScheduler of an SD-inpainting folder describes it (official-implementation.md §2).
SD_DDPM_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}

# Keys of a DDPM/PNDM config that fix the noise schedule; everything else is sampler-specific.
_SCHEDULE_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "prediction_type",
    "steps_offset",
)


def _as_config(base_config: Mapping[str, Any] | SchedulerMixin | None) -> dict[str, Any]:
    if base_config is None:
        return dict(SD_DDPM_SCHEDULER_CONFIG)
    if isinstance(base_config, SchedulerMixin):
        return dict(base_config.config)
    if isinstance(base_config, Mapping):
        return dict(base_config)
    raise TypeError(
        f"base_config must be a scheduler config mapping or a scheduler, got {type(base_config).__name__}"
    )


def make_scheduler(
    base_config: Mapping[str, Any] | SchedulerMixin | None = None, **overrides: Any
) -> EulerAncestralDiscreteScheduler:
    """The inference scheduler: Euler ancestral on the base model's noise schedule.

    Args:
        base_config: the base model's scheduler config (a dict, a ``FrozenDict`` or a scheduler
            instance; any class: DDPM, PNDM, Euler ...). ``None`` uses the SD-1.x schedule.
        **overrides: config values that win over ``base_config``.

    Returns:
        An ``EulerAncestralDiscreteScheduler`` with ``timestep_spacing="linspace"`` forced (see the
        module docstring), unless ``overrides`` names another spacing explicitly.
    """
    config = _as_config(base_config)
    config["timestep_spacing"] = "linspace"  # authors' effective spacing; a saved "leading" is wrong here
    config.update(overrides)
    return EulerAncestralDiscreteScheduler.from_config(config)


def make_training_scheduler(
    base_config: Mapping[str, Any] | SchedulerMixin | None = None, **overrides: Any
) -> DDPMScheduler:
    """The training noise scheduler: ``DDPMScheduler`` with the SD scaled-linear betas.

    Only the noise-schedule keys of ``base_config`` are taken (so a PNDM or Euler config works
    too); ``t ~ U{0..num_train_timesteps-1}`` and ``add_noise`` come from it
    (official-implementation.md §2, "Objective").

    Args:
        base_config: a scheduler config or scheduler; ``None`` uses the SD-1.x schedule.
        **overrides: config values that win.

    Returns:
        A ``DDPMScheduler`` (epsilon prediction, no sample clipping).
    """
    base = _as_config(base_config)
    config = dict(SD_DDPM_SCHEDULER_CONFIG)
    config.update({k: base[k] for k in _SCHEDULE_KEYS if k in base})
    config.update(overrides)
    return DDPMScheduler.from_config(config)

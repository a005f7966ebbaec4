"""The x0 error along the sampler's own trajectory, step by step, against copying the composite.

:mod:`harmonylib.diagnostics.x0_error` asks the UNet for x0 from the *real* latent noised to each
level: what the UNet could do if every earlier step had been right. Sampling never sees that input.
From the second step on, x_t is built from the UNet's own earlier estimates, so an error made at
t = 999 is either corrected by the later steps (which read the condition: mask + composite
latents) or carried to the end. This diagnostic runs the pipeline itself (its resize, its
posterior sample of the composite, its seeded Euler-ancestral steps) and records, at each step,
the scheduler's ``pred_original_sample`` and finally the sampled latents, compared with the real
image's latent (posterior mode, scaled):

* ``fg_mse``: on the foreground (the UNet's mask channel), the part the model must change;
* ``bg_mse``: on the background, which the condition holds exactly: a model that reads its
  condition copies it;
* ``copy_fg_mse``: the composite's latents copied, the answer of a model that changes nothing.

A final ``fg_mse`` above ``copy_fg_mse`` means the sampled foreground is further from the real one
than the unedited composite's, whatever the decoder does afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import torch

from harmonylib.diagnostics.x0_error import _squash, foreground_mse
from harmonylib.models.scheduler import DEFAULT_NUM_INFERENCE_STEPS
from harmonylib.models.unet import prepare_mask_latents
from harmonylib.reproducibility import derive_seed, make_generator

TRAJECTORY_COLUMNS = ("image", "subset", "size", "step", "timestep", "fg_mse", "bg_mse", "copy_fg_mse")
FINAL_STEP = "final"  # the ``step`` label of the sampled latents (after the last scheduler step)


@contextlib.contextmanager
def _recording_steps(scheduler: Any) -> Iterator[list[tuple[float, torch.Tensor]]]:
    """Record ``(timestep, pred_original_sample)`` of every ``scheduler.step`` call inside the block.

    The scheduler's own ``step`` is wrapped on the instance and restored on exit, so the sampler's
    arithmetic and random draws are untouched.
    """
    record: list[tuple[float, torch.Tensor]] = []
    original = scheduler.step

    def step(model_output, timestep, sample, *args, **kwargs):
        out = original(model_output, timestep, sample, *args, **kwargs)
        record.append((float(timestep), out.pred_original_sample.detach().float().clone()))
        return out

    scheduler.step = step
    try:
        yield record
    finally:
        del scheduler.step  # back to the class's method


def _region_mse(x: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE of (B, 4, h, w) latents over a (B, 1, h, w) {0, 1} region; NaN where it is empty."""
    return foreground_mse(x, target, region)


@torch.no_grad()
def trajectory_errors(
    pipe: Any,
    samples: Sequence[Any],
    size: int,
    num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
    seed: int = 0,
    batch_size: int = 16,
) -> pd.DataFrame:
    """Foreground and background latent MSE of x0 at every sampling step and of the final latents.

    Args:
        pipe: a forward :class:`~harmonylib.pipeline.DiffHarmonyPipeline`; it is called with
            ``size_mode="square"``, ``output_type="latent"`` and one generator per sample.
        samples: objects with ``.name``, ``.subset``, ``.real``, ``.composite``, ``.mask``.
        size: square processing side in pixels, a multiple of the VAE's scale factor.
        num_inference_steps: the sampler's steps (paper: 5).
        seed: per-sample generators ``(seed, "trajectory", name)``: a result depends neither on
            the batch nor on the order.
        batch_size: composites per pipeline call.

    Returns:
        One row per (sample, step) with columns :data:`TRAJECTORY_COLUMNS`; ``step`` is the step
        index as a string, then :data:`FINAL_STEP` (``timestep`` NaN) for the sampled latents.
    """
    if size % pipe.vae_scale_factor:
        raise ValueError(
            f"size must be a multiple of {pipe.vae_scale_factor} (the VAE's scale factor), got {size}"
        )
    vae, device = pipe.vae, pipe._execution_device
    sf = vae.config.scaling_factor
    rows: list[dict[str, Any]] = []
    for start in range(0, len(samples), batch_size):
        batch = list(samples[start : start + batch_size])
        real, comp, mask = (
            torch.cat(t).to(device) for t in zip(*(_squash(s, size) for s in batch), strict=True)
        )  # (b, 3, S, S), (b, 3, S, S), (b, 1, S, S)
        z_real = vae.encode(real.to(vae.dtype)).latent_dist.mode().float() * sf  # (b, 4, h, w)
        z_comp = vae.encode(comp.to(vae.dtype)).latent_dist.mode().float() * sf
        fg = prepare_mask_latents(mask, tuple(z_real.shape[-2:])).float()  # (b, 1, h, w) in {0, 1}
        bg = 1.0 - fg
        gens = [make_generator(derive_seed(seed, "trajectory", s.name)) for s in batch]
        with _recording_steps(pipe.scheduler) as record:
            final = pipe(
                [str(s.composite) for s in batch], [str(s.mask) for s in batch],
                num_inference_steps=num_inference_steps, generator=gens, output_type="latent",
                size_mode="square", size=size,
            ).images  # fmt: skip
        final = torch.stack(list(final)).float().to(device)  # (b, 4, h, w), scaled
        copy_err = _region_mse(z_comp, z_real, fg)
        stages = [(str(i), t, x0) for i, (t, x0) in enumerate(record)] + [(FINAL_STEP, float("nan"), final)]
        for label, t, x0 in stages:
            fg_err, bg_err = _region_mse(x0, z_real, fg), _region_mse(x0, z_real, bg)
            for j, s in enumerate(batch):
                rows.append(
                    {
                        "image": s.name,
                        "subset": s.subset,
                        "size": size,
                        "step": label,
                        "timestep": t,
                        "fg_mse": float(fg_err[j]),
                        "bg_mse": float(bg_err[j]),
                        "copy_fg_mse": float(copy_err[j]),
                    }
                )
    order = {s.name: i for i, s in enumerate(samples)}
    steps = [str(i) for i in range(num_inference_steps)] + [FINAL_STEP]
    df = pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
    key = df["image"].map(order) * len(steps) + df["step"].map(steps.index)
    return df.iloc[key.argsort(kind="stable")].reset_index(drop=True)


def summarise_trajectory(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SE per (split, size, step) of the three errors, and how often x0 beats the copy."""
    from harmonylib.diagnostics.common import summarise

    by = [c for c in ("split", "size", "step", "timestep") if c in per_image]
    out = summarise(per_image.fillna({"timestep": -1.0}), by, ["fg_mse", "bg_mse", "copy_fg_mse"])
    valid = per_image.dropna(subset=["fg_mse", "copy_fg_mse"]).fillna({"timestep": -1.0})
    wins = valid.assign(win=valid["fg_mse"] < valid["copy_fg_mse"]).groupby(by, sort=False)["win"].mean()
    return out.merge(wins.rename("beats_copy").reset_index(), on=by, how="left")

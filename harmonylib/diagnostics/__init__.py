"""Diagnostics that locate where a harmonization model loses to the unedited composite.

* :func:`run_diagnostics`: everything, per split, written to ``results/<profile>/diagnostics``
  (also ``python -m harmonylib.diagnostics``);
* :func:`unet_x0_errors`: the UNet's x0 error at each inference noise level vs copying the composite;
* :func:`ceiling_scores`: the VAE / Harmony-VAE ceilings at each inference size;
* :func:`pixel_scores`: the pixel baseline, scored like any predictions;
* :func:`trajectory_errors`: the x0 error along the sampler's own trajectory vs copying the composite;
* :mod:`harmonylib.diagnostics.latent_limits`: the mini profile's latent-model limits report.
"""

from harmonylib.diagnostics.ceilings import ceiling_scores, composite_scores
from harmonylib.diagnostics.common import available_splits, mean_se, pick
from harmonylib.diagnostics.pixel import load_pixel_baseline, pixel_scores
from harmonylib.diagnostics.report import DiagnosticsResult, DiagnosticsSettings, run_diagnostics
from harmonylib.diagnostics.trajectory import trajectory_errors
from harmonylib.diagnostics.x0_error import unet_x0_errors

__all__ = [
    "DiagnosticsResult",
    "DiagnosticsSettings",
    "available_splits",
    "ceiling_scores",
    "composite_scores",
    "load_pixel_baseline",
    "mean_se",
    "pick",
    "pixel_scores",
    "run_diagnostics",
    "trajectory_errors",
    "unet_x0_errors",
]

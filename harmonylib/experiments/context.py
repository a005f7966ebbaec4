"""What every experiment needs: the config, where outputs go, the split scored, and its settings.

:func:`setup` loads a profile, builds (built-in) or checks the data and reads the split scored;
the returned :class:`Experiment` is passed to every other function of :mod:`harmonylib.experiments`.
The names the tables and claims use for datasets and arms and the two inference sizes of the
resolution ladder (:func:`inference_sizes`) are defined here, once; the training seeds are the
claims' (:func:`harmonylib.claim_rule.default_seeds`, which Table 2 uses too).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonylib import claims as _claims
from harmonylib.config import Config, load_config
from harmonylib.evaluation import GroundTruthCache
from harmonylib.paths import resolve, results_dir

STEPS = 5  # paper §5.2: 5 Euler-ancestral steps
IHARMONY4 = "iHarmony4"
HUMAN_HARMONY = "Human Harmony"
PIXEL_ARM = "PixelHarmonizer"  # the claims' name of the pixel baseline (harmonylib.claims.ARMS)
CLAIMS_DIR = _claims.CLAIMS_DIR
MEASUREMENTS_FILE = _claims.MEASUREMENTS_FILE


@dataclass
class Experiment:
    """What every experiment function needs: the config, where outputs go, the test split."""

    cfg: Config
    out: Path  # results root (results/<profile> by default)
    data_root: Path
    samples: list  # the iHarmony4-layout test split
    cache: GroundTruthCache
    progress: bool = True
    _components: dict[str, Any] | None = field(default=None, repr=False)
    _unet_key: str | None = field(default=None, repr=False)
    _vae_key: str | None = field(default=None, repr=False)
    _clusters: tuple[dict[str, str], str] | None = field(default=None, repr=False)
    split: str = "test"  # the split scored (validation while settings are chosen)

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def tables_dir(self) -> Path:
        return self.out / "tables"

    @property
    def per_image_dir(self) -> Path:
        return self.out / "tables" / "per_image"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    @property
    def predictions_dir(self) -> Path:
        return self.out / "predictions"


def setup(
    profile: str = "mini",
    data_root: str = "",
    out_dir: str = "",
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    split: str = "test",
    progress: bool = True,
) -> Experiment:
    """Load the profile, build (built-in) or check the data, read the test split.

    Args:
        profile: ``smoke``, ``mini``, ``paper`` or a YAML path.
        data_root: the dataset root; empty: the profile's ``data.root``.
        out_dir: the results root; empty: ``results/<profile>``.
        seed: the base seed (``cfg.seed``): the UNet and refinement runs, and sampling by default.
        overrides: more config overrides (dotted keys).
        split: the split scored.
        progress: progress bars.
    """
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.data.iharmony4 import read_split

    ov = {"seed": seed, **({"data.root": data_root} if data_root else {}), **dict(overrides or {})}
    cfg = load_config(profile, ov)
    out = resolve(out_dir) if out_dir else results_dir(cfg.profile)
    root = ensure_dataset(cfg, progress=progress)
    samples = read_split(root, split)
    return Experiment(
        cfg, out, root, samples, GroundTruthCache(cache_dir=out / "cache"), progress, split=split
    )


def inference_sizes(cfg: Config) -> dict[str, int]:
    """``{"low": R_inf 512's rung, "high": R_inf 1024's rung}`` of the profile's ladder (paper: 512, 1024)."""
    return {"low": int(cfg.ladder.r_inf_low), "high": int(cfg.ladder.r_inf_high)}


def size_note(cfg: Config) -> str:
    """The caption sentence that states the profile's resolution ladder (:mod:`harmonylib.ladder`)."""
    from harmonylib.ladder import ladder_note

    return ladder_note(cfg)


def data_note(exp: Experiment) -> str:
    """The caption sentence that says which data was scored (built-in split or iHarmony4)."""
    if exp.cfg.data.kind == "builtin":
        return (
            f"Measured on the {exp.cfg.profile} profile's built-in {exp.split} split ({len(exp.samples)} "
            "composites made from real photographs held out from training), so deltas compare different data "
            "and model scales. The built-in data's recolouring strengths were calibrated so that its Composite "
            "row matches the paper's: the Composite delta is by construction, not a finding."
        )
    return f"Measured on the iHarmony4 {exp.split} split ({len(exp.samples)} composites)."


def short_hash(obj: Any) -> str:
    """12 hex digits of the SHA-256 of ``obj`` as sorted-key JSON: names prediction folders."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]

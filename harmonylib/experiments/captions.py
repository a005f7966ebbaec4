"""Caption sentences shared by the tables: what varied with the seed, and which runs diverged.

A table's caption is a template of its :class:`~harmonylib.experiments.runner.ExperimentSpec`
(``caption``), filled by :func:`~harmonylib.experiments.runner.run_table` with the fields below and
the spec's own ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harmonylib.config import Config


def unet_note(cfg: Config) -> str:
    """What the forward UNet is: the same model for every training seed (read from the config)."""
    adopt = cfg.train.unet.adopt
    if adopt is not None:
        return (
            f"the forward UNet is the released one ({adopt}, train.unet.adopt), adopted as it is and "
            "the same for every seed"
        )
    start = cfg.train.unet.init or f"random {cfg.train.unet.arch} weights"
    return f"the forward UNet is trained once, at the base seed {cfg.seed} from {start}, and shared by every seed"


def seed_text(seeds: Sequence[int], cfg: Config | None = None, retrained: str = "the Harmony-VAE is") -> str:
    """The seeds of a caption and, given ``cfg``, what varied with them: what was retrained per
    seed (``retrained``), and that the forward UNet did not (:func:`unet_note`)."""
    n = len(seeds)
    text = (
        f"mean over {n} training seeds ({', '.join(map(str, seeds))})"
        if n > 1
        else f"training seed {seeds[0]}"
    )
    if cfg is None:
        return text
    return (
        f"{text}; per seed, {retrained} retrained with that seed and the test predictions are sampled "
        f"with it, while {unet_note(cfg)}"
    )


def diverged_text(diverged: Mapping[str, Sequence[int]]) -> str:
    """Which rows had a diverged run (row name -> seeds), or that none did."""
    if not diverged:
        return "No run diverged (a cell would be NaN only if a non-finite training loss was logged)."
    return (
        "Diverged runs (a non-finite training loss was logged): "
        + "; ".join(f"{k}: seeds {v}" for k, v in diverged.items())
        + ". A cell is NaN only if every seed of it diverged; otherwise it is the mean of the others."
    )

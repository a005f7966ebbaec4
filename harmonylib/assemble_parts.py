"""The parts a pipeline assembly draws on: where runs and pipelines live, and each component's source.

Run and pipeline folders under a results root; a config turned to a direction; the base VAE and
the empty-prompt embedding exactly as the recipes built them; the released UNet a profile adopts;
and the check that two VAEs share a latent space. :mod:`harmonylib.assemble` puts them together.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from harmonylib.config import Config
from harmonylib.paths import resolve, results_dir
from harmonylib.training.base_models import adopted_unet_dir, unet_prompt_embeds  # noqa: F401  (re-exported)

DIRECTIONS = ("forward", "inverse")


# ---- where things go -----------------------------------------------------------------------------


def runs_root(cfg: Config, out_dir: str | os.PathLike | None = None) -> Path:
    """``<out_dir>/runs`` when ``out_dir`` is given, else ``results/<profile>/runs``."""
    return (resolve(out_dir) if out_dir else results_dir(cfg.profile)) / "runs"


def run_dir_for(cfg: Config, recipe: str, out_dir: str | os.PathLike | None = None) -> Path:
    """The run folder of ``recipe`` under ``cfg``: ``runs_root(cfg, out_dir) / run_name``."""
    from harmonylib.training.runs import run_name

    return runs_root(cfg, out_dir) / run_name(cfg, recipe)


def pipeline_dir(
    cfg: Config,
    direction: str = "forward",
    harmony_vae: bool = True,
    out_dir: str | os.PathLike | None = None,
) -> Path:
    """``runs/pipeline`` (forward, Harmony-VAE); other kinds get ``-inverse`` / ``-sd_vae`` suffixes."""
    name = "pipeline" + ("-inverse" if direction == "inverse" else "") + ("" if harmony_vae else "-sd_vae")
    return runs_root(cfg, out_dir) / name


def with_direction(cfg: Config, recipe: str, direction: str) -> Config:
    """``cfg`` with ``train.<recipe>.direction`` set (the run name and hash follow it); an inverse
    Harmony-VAE always trains on the latent of its target (``latent: real``)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
    section = dataclasses.replace(getattr(cfg.train, recipe), direction=direction)
    if recipe == "harmony_vae" and direction == "inverse":
        # z'_0 comes from the forward UNet: the inverse Harmony-VAE keeps Eq. 2's latent (§4.1)
        section = dataclasses.replace(section, latent="real")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **{recipe: section}))


# ---- components ----------------------------------------------------------------------------------


def base_vae(cfg: Config, recipe: str):
    """The base ``AutoencoderKL`` that ``recipe`` (``unet`` or ``harmony_vae``) was built on.

    Same loader, path and init seed as :mod:`harmonylib.training.recipes`, so a randomly
    initialised VAE (smoke) is the very one that run trained against.
    """
    from harmonylib.training.base_models import _init_seed, load_base_vae

    rc = getattr(cfg.train, recipe)
    return load_base_vae(rc.vae, rc.vae_arch, _init_seed(cfg, recipe, "vae"), f"train.{recipe}.vae")


def _tree_stamp(folder: Path) -> list:
    """Names, sizes and mtimes of a folder's files: cheap change detection for committed weights."""
    return sorted(
        [str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns]
        for f in folder.rglob("*")
        if f.is_file()
    )


def _encoder_state(vae) -> dict[str, torch.Tensor]:
    return {
        **{f"encoder.{k}": v for k, v in vae.encoder.state_dict().items()},
        **{f"quant_conv.{k}": v for k, v in vae.quant_conv.state_dict().items()},
    }


def same_latent_space(vae_a, vae_b, atol: float = 0.0) -> bool:
    """True when two VAEs (``AutoencoderKL`` or ``HarmonyVAE``) have the same encoder and ``quant_conv``."""
    a, b = _encoder_state(vae_a), _encoder_state(vae_b)
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a
    )

"""The resolution ladder: the paper's sizes mapped to a profile, and the ratios that must hold.

The quantity that makes a smaller profile a miniature of the paper is not a pixel size but the
number of latent values per content value at the scale the metric sees (``latent_ratio``):

    ratio(R) = (R / f)^2 * C_latent / (content^2 * 3)

Paper (content 256, f8): R_inf 1024 -> 1/3, R_inf 512 -> 1/12. The mini profile keeps both with
an f4 VAE at 2x and 1x its 64 px content (128 -> 1/3, 64 -> 1/12). ``check_ladder`` ties every
recipe size of a config to its rung, so a profile cannot drift from its own table.
"""

from __future__ import annotations

from fractions import Fraction

from harmonylib.config import Config

#: Rungs that pass through the VAE (their ratio is the latent one); the rest are pixel models.
LATENT_RUNGS = (
    "harmony_vae_train",
    "unet_train",
    "refinement_stage1",
    "table2_inference",
    "r_inf_low",
    "r_inf_high",
)
PIXEL_RUNGS = ("hdnet", "refinement")


def latent_ratio(cfg: Config, size: int) -> Fraction:
    """Latent values per content value when a ``size`` px image goes through the profile's VAE."""
    lad = cfg.ladder
    if size % lad.vae_scale_factor:
        raise ValueError(f"{size} px is not a multiple of the VAE's scale factor {lad.vae_scale_factor}")
    side = size // lad.vae_scale_factor
    return Fraction(side * side * lad.latent_channels, lad.content * lad.content * 3)


def pixel_ratio(cfg: Config, size: int) -> Fraction:
    """Pixels per content pixel for a pixel-space model run at ``size`` px (HDNet, refinement)."""
    return Fraction(size * size, cfg.ladder.content * cfg.ladder.content)


def recipe_sizes(cfg: Config) -> dict[str, int]:
    """The size each rung names, as the profile's recipes and inference settings actually set it."""
    t = cfg.train
    return {
        "harmony_vae_train": int(t.harmony_vae.resolution),
        "unet_train": int(t.unet.resolution),
        "hdnet": int(t.pixel_baseline.resolution),
        "refinement": int(t.refinement.resolution),
        "refinement_stage1": int(t.refinement.stage1_resolution),
        "table2_inference": int(cfg.augment.table2_inference_size),
    }


def check_ladder(cfg: Config) -> list[str]:
    """Every disagreement between the ladder and the sizes the profile's recipes set (empty: none)."""
    problems = []
    for rung, got in recipe_sizes(cfg).items():
        want = getattr(cfg.ladder, rung)
        if got != want:
            problems.append(f"{cfg.profile}: {rung} is {got} px in the recipe but {want} px on the ladder")
    for rung in LATENT_RUNGS:
        size = getattr(cfg.ladder, rung)
        if size % cfg.ladder.vae_scale_factor:
            problems.append(
                f"{cfg.profile}: {rung} = {size} px is not a multiple of f{cfg.ladder.vae_scale_factor}"
            )
    return problems


def ladder_table(cfg: Config) -> list[dict[str, object]]:
    """One row per rung: paper size, this profile's size, and the ratio it keeps (for captions, README)."""
    from harmonylib.config import LadderConfig

    paper = LadderConfig()
    rows = []
    for rung in (*LATENT_RUNGS, *PIXEL_RUNGS):
        size = getattr(cfg.ladder, rung)
        latent = rung in LATENT_RUNGS
        ratio = latent_ratio(cfg, size) if latent else pixel_ratio(cfg, size)
        rows.append(
            {
                "rung": rung,
                "paper_px": getattr(paper, rung),
                "profile_px": size,
                "kind": "latent values per content value" if latent else "pixels per content pixel",
                "ratio": str(ratio),
            }
        )
    return rows


def ladder_note(cfg: Config) -> str:
    """One caption sentence stating the ladder (R_inf rungs and their latent ratios)."""
    lad = cfg.ladder
    lo, hi = latent_ratio(cfg, lad.r_inf_low), latent_ratio(cfg, lad.r_inf_high)
    if cfg.ladder == type(cfg.ladder)():
        head = "R_inf as the paper: 512 px and 1024 px"
    else:
        head = (
            f"Profile {cfg.profile} ladder (content {lad.content} px, f{lad.vae_scale_factor} VAE): the paper's "
            f"R_inf 512 px is {lad.r_inf_low} px and 1024 px is {lad.r_inf_high} px"
        )
    return (
        f"{head}, keeping {lo} and {hi} latent values per content value at the evaluation scale "
        "(square squash, 5 Euler-ancestral steps, outputs resized to 256)."
    )

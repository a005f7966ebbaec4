"""The resolution ladder: the paper's latent ratios, and every profile agrees with its own table."""

from fractions import Fraction

import pytest

from harmonylib.config import load_config
from harmonylib.ladder import check_ladder, ladder_table, latent_ratio, pixel_ratio


@pytest.mark.parametrize("profile", ["paper", "mini", "smoke"])
def test_recipes_sit_on_their_rungs(profile):
    assert check_ladder(load_config(profile)) == []


@pytest.mark.parametrize("profile", ["paper", "mini"])
def test_paper_ratios(profile):
    cfg = load_config(profile)
    # (1024/8)^2*4 / (256^2*3) = 1/3 and (512/8)^2*4 / (256^2*3) = 1/12 -- mini must keep both.
    assert latent_ratio(cfg, cfg.ladder.r_inf_high) == Fraction(1, 3)
    assert latent_ratio(cfg, cfg.ladder.r_inf_low) == Fraction(1, 12)
    assert latent_ratio(cfg, cfg.ladder.unet_train) == Fraction(1, 12)
    # HDNet_512 sees 2x content in the paper; mini runs its pixel model at 1x (budget, mini.yaml)
    assert pixel_ratio(cfg, cfg.ladder.hdnet) == (4 if profile == "paper" else 1)


def test_mini_vae_matches_its_ladder():
    """The committed mini VAE's topology gives the ladder's scale factor (f = 2^(levels - 1))."""
    import json

    from harmonylib.paths import resolve

    cfg = load_config("mini")
    vae_cfg = json.loads((resolve(cfg.train.harmony_vae.vae) / "config.json").read_text())
    assert 2 ** (len(vae_cfg["down_block_types"]) - 1) == cfg.ladder.vae_scale_factor
    assert vae_cfg["latent_channels"] == cfg.ladder.latent_channels


def test_mismatch_is_reported():
    cfg = load_config("mini", {"train.unet.resolution": 96})
    assert any("unet_train is 96 px" in p for p in check_ladder(cfg))


def test_table_rows():
    rows = {r["rung"]: r for r in ladder_table(load_config("mini"))}
    assert rows["r_inf_high"]["paper_px"] == 1024 and rows["r_inf_high"]["profile_px"] == 128
    assert rows["r_inf_high"]["ratio"] == "1/3"

"""claims.md is rebuilt from per-seed measurements by a rule declared before measuring."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harmonylib import claim_rule, claims
from harmonylib.claim_rule import Bootstrap, cluster_bootstrap, seed_stats, t_critical
from harmonylib.claims import (
    BY_CONSTRUCTION,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    INSUFFICIENT,
    NOT_MEASURED,
    build_claims,
    claim_differences,
    claim_verdict,
    write_claims,
)

# ---------------------------------------------------------------- the rule on bare values


def _boot(lo: float, hi: float) -> Bootstrap:
    return Bootstrap((lo + hi) / 2, lo, hi, 4, 0)


def test_t_bound_over_seeds():
    assert t_critical(3) == pytest.approx(2.919986, abs=1e-6)  # t(0.95, 2), the 2.92
    assert t_critical(10) == pytest.approx(1.833113, abs=1e-6)
    assert math.isnan(t_critical(1))
    s = seed_stats([1.0, 1.2, 0.8, np.nan])
    se = np.std([1.0, 1.2, 0.8], ddof=1) / math.sqrt(3)
    assert (s.n, s.n_nan, s.mean, s.se) == (3, 1, pytest.approx(1.0), pytest.approx(se))
    assert s.lower == pytest.approx(1.0 - 2.919986 * se, abs=1e-6)
    assert s.upper == pytest.approx(1.0 + 2.919986 * se, abs=1e-6)


def test_directional_needs_both_conditions():
    good = [_boot(0.1, 0.5)] * 3
    v = claim_verdict([1.0, 1.2, 0.8], 3, good)
    assert v.verdict == HOLDS and "(b) every seed" in v.reason
    # (i) (a) passes, one seed's bootstrap lower bound is not above 0 -> inconclusive
    v = claim_verdict([1.0, 1.2, 0.8], 3, [good[0], _boot(-0.01, 0.5), good[0]])
    assert v.verdict == INCONCLUSIVE and "(b)" in v.reason and "-0.01" in v.reason
    # an undefined bootstrap (an arm empty in some resample) cannot pass
    assert claim_verdict([1.0, 1.2, 0.8], 3, [*good[:2], Bootstrap(1.0, np.nan, np.nan, 2, 5)]).verdict == (
        INCONCLUSIVE
    )
    # (iii) the mirror
    bad = [_boot(-0.5, -0.1)] * 3
    assert claim_verdict([-1.0, -1.2, -0.8], 3, bad).verdict == DOES_NOT_HOLD
    assert claim_verdict([-1.0, -1.2, -0.8], 3, [*bad[:2], _boot(-0.5, 0.02)]).verdict == INCONCLUSIVE
    # mean > 2 SE (version 1's HOLDS) is not enough: t(0.95, 2) = 2.92
    x = np.array([0.0, 1.0, 2.0])
    se = x.std(ddof=1) / math.sqrt(3)
    at_2se = x - x.mean() + 2.5 * se
    v = claim_verdict(at_2se, 3, good)
    assert v.verdict == INCONCLUSIVE and "(a)" in v.reason
    assert claim_verdict(x - x.mean() + 2.93 * se, 3, good).verdict == HOLDS
    assert claim_verdict(-(x - x.mean() + 2.93 * se), 3, bad).verdict == DOES_NOT_HOLD
    # no per-image values: (b) cannot be checked, whatever the seeds say
    v = claim_verdict([1.0, 1.2, 0.8], 3, None)
    assert v.verdict == INCONCLUSIVE and "not checked" in v.reason
    assert claim_verdict([1.0, 1.2, 0.8], 3, [good[0], None, good[0]]).verdict == INCONCLUSIVE
    # identical seeds: SE 0, the t-bound is the mean
    assert claim_verdict([0.5, 0.5, 0.5], 3, good).verdict == HOLDS
    assert claim_verdict([0.0, 0.0, 0.0], 3, good).verdict == INCONCLUSIVE


def test_verdict_insufficient_seeds_and_nan():
    good = [_boot(0.1, 0.5)] * 3
    v = claim_verdict([5.0, 5.1], n_min=3)
    assert v.verdict == INSUFFICIENT and v.n == 2  # a clear effect, but too few seeds: no verdict
    assert claim_verdict([], 3).verdict == INSUFFICIENT
    # NaN: counted, left out; bootstraps are given for the finite seeds only
    v = claim_verdict([1.0, np.nan, 1.2, 0.8], 3, good)
    assert v.verdict == HOLDS and v.n == 3 and v.n_nan == 1 and v.mean == pytest.approx(1.0)
    # enough seeds, too few finite: inconclusive, not insufficient
    v = claim_verdict([1.0, np.nan, np.inf], n_min=3)
    assert v.verdict == INCONCLUSIVE and v.n == 1 and v.n_nan == 2 and math.isnan(v.se)
    with pytest.raises(ValueError, match="n_min"):
        claim_verdict([1.0, 2.0], n_min=1)


def test_equivalence_tost():
    # (v) the 90 % t-interval mean ± 2.92 SE against a declared bound
    vals = [0.02, -0.01, 0.03]  # mean 0.0133, SE 0.012: interval about [-0.022, +0.049]
    s = seed_stats(vals)
    kw = {"kind": claim_rule.EQUIVALENCE}
    assert claim_verdict(vals, 3, bound=0.1, **kw).verdict == HOLDS
    assert claim_verdict(vals, 3, bound=0.04, **kw).verdict == INCONCLUSIVE  # upper end is outside
    assert s.upper > 0.04 > s.mean
    assert claim_verdict([0.5, 0.6, 0.55], 3, bound=0.1, **kw).verdict == DOES_NOT_HOLD  # wholly above
    assert claim_verdict([-0.5, -0.6, -0.55], 3, bound=0.1, **kw).verdict == DOES_NOT_HOLD
    assert claim_verdict([0.5, 0.6], 3, bound=0.1, **kw).verdict == INSUFFICIENT
    with pytest.raises(ValueError, match="bound"):
        claim_verdict(vals, 3, kind=claim_rule.EQUIVALENCE)
    with pytest.raises(ValueError, match="kind"):
        claim_verdict(vals, 3, kind="better")


def test_claim_declares_its_bound():
    terms = (("E_c+D/zero", 1.0), ("E_c/zero", -1.0))
    with pytest.raises(ValueError, match="bound"):
        claims.Claim(
            "x", "s", "Table 5", "table5", "psnr", terms, ("training",), kind="equivalence", bound=0.1
        )
    with pytest.raises(ValueError, match="no bound"):
        claims.Claim("x", "s", "Table 5", "table5", "psnr", terms, ("training",), bound=0.1)
    with pytest.raises(ValueError, match="kind"):
        claims.Claim("x", "s", "Table 5", "table5", "psnr", terms, ("training",), kind="better")
    for c in claims.CLAIMS:  # every declared equivalence claim says why its bound
        assert c.kind in claim_rule.KINDS
        assert c.kind == "directional" or (c.bound > 0 and c.bound_reason)


# ---------------------------------------------------------------- the photo bootstrap


def test_cluster_bootstrap_is_wider_than_image_bootstrap_for_correlated_photos():
    # (iv) 6 photos x 20 images; every image of a photo has its photo's value (perfect correlation)
    photo_effect = np.array([1.0, -0.5, 2.0, 0.3, -1.2, 0.8])
    values = np.repeat(photo_effect, 20)  # (120,)
    photos = np.repeat([f"p{i}" for i in range(6)], 20)
    images = np.array([f"im{i}" for i in range(120)])
    by_photo = cluster_bootstrap([(values, photos, 1.0)], np.random.default_rng(0))
    by_image = cluster_bootstrap([(values, images, 1.0)], np.random.default_rng(0))
    assert by_photo.estimate == pytest.approx(by_image.estimate) == pytest.approx(photo_effect.mean())
    assert (by_photo.n_clusters, by_image.n_clusters) == (6, 120)
    width_photo, width_image = by_photo.upper - by_photo.lower, by_image.upper - by_image.lower
    # the image bootstrap treats 120 copies of 6 numbers as 120 draws: about sqrt(20) too narrow
    assert width_photo > 3 * width_image
    se = photo_effect.std(ddof=0) / math.sqrt(6)
    assert width_photo == pytest.approx(2 * 1.645 * se, rel=0.2)


def test_cluster_bootstrap_is_paired_and_seeded():
    rng = np.random.default_rng(7)
    photos = np.repeat(["a", "b", "c", "d"], 5)
    base = rng.normal(30.0, 3.0, 20)  # large between-image spread...
    better = base + 0.2  # ...and a constant paired gain: every resample sees exactly +0.2
    b = cluster_bootstrap([(better, photos, 1.0), (base, photos, -1.0)], np.random.default_rng(1))
    assert b.lower == pytest.approx(0.2) and b.upper == pytest.approx(0.2)
    # (vi) determinism: the same seed gives the same bounds; another seed other bounds
    noisy = [(base + rng.normal(0.2, 1.0, 20), photos, 1.0), (base, photos, -1.0)]
    one = cluster_bootstrap(noisy, np.random.default_rng(3))
    assert one == cluster_bootstrap(noisy, np.random.default_rng(3))
    assert one != cluster_bootstrap(noisy, np.random.default_rng(4))
    # non-finite values are out of that arm's mean; an arm empty in a resample makes it undefined
    with_nan = cluster_bootstrap([(np.array([1.0, np.nan, 3.0]), np.array(["a", "a", "b"]), 1.0)], rng)
    assert with_nan.estimate == pytest.approx(2.0)
    lonely = cluster_bootstrap(
        [(np.array([1.0]), np.array(["a"]), 1.0), (np.array([0.0, 0.0]), np.array(["b", "c"]), -1.0)], rng
    )
    assert lonely.n_undefined > 0 and math.isnan(lonely.lower)


# ---------------------------------------------------------------- measurements -> claims


def _table1_images(effects: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-made per-image values and their measurements for claims 1a / 1b.

    ``effects`` (seeds, photos): DiffHarmony++'s PSNR gain over DiffHarmony on every image of a
    photo (5 images per photo), per training seed; its fMSE falls by 10x the gain.
    """
    rng = np.random.default_rng(0)
    n_seeds, n_photos = effects.shape
    photos = np.repeat([f"photo{p}" for p in range(n_photos)], 5)  # (5P,)
    images = [f"c{p}_{i}_1" for p in range(n_photos) for i in range(5)]
    rows = []
    for s in range(n_seeds):
        psnr = rng.normal(30.0, 2.0, photos.size)
        fmse = rng.uniform(200.0, 400.0, photos.size)
        gain = np.repeat(effects[s], 5)
        for arm, p, f in (("DiffHarmony", psnr, fmse), ("DiffHarmony++", psnr + gain, fmse - 10 * gain)):
            rows.append(
                pd.DataFrame(
                    {
                        "experiment": "table1",
                        "arm": arm,
                        "seed_kind": "training",
                        "seed": s,
                        "image": images,
                        "cluster": photos,
                        "cluster_kind": "source photo",
                        "psnr": p,
                        "mse": f / 10,
                        "fmse": f,
                    }
                )
            )
    per_image = pd.concat(rows, ignore_index=True)
    long = per_image.melt(["experiment", "arm", "seed_kind", "seed"], ["psnr", "mse", "fmse"], "metric")
    meas = long.groupby(["experiment", "arm", "metric", "seed_kind", "seed"], as_index=False)["value"].mean()
    return meas[list(claims.MEASUREMENT_COLUMNS)], per_image


def test_both_conditions_end_to_end(tmp_path):
    # (ii) every photo gains in every seed -> both conditions pass
    effects = np.array([[0.5, 0.6, 0.4, 0.7], [0.55, 0.5, 0.6, 0.45], [0.6, 0.5, 0.5, 0.5]])
    meas, pim = _table1_images(effects)
    df = _by_claim(build_claims(meas, pim))
    assert df.loc["1a", "verdict"] == HOLDS and df.loc["1b", "verdict"] == HOLDS
    assert df.loc["1a", "mean"] == pytest.approx(effects.mean())
    assert df.loc["1a", "boot_lower"] > 0 and "4 source photos (20 images)" in df.loc["1a", "clusters"]
    assert df.loc["1a", "per_seed"].count("[") == 3
    # (i) seed 2 gains on average (the t-bound still passes) but loses badly on one photo of 4
    mixed = effects.copy()
    mixed[2] = [2.5, 2.5, 2.5, -5.0]
    meas, pim = _table1_images(mixed)
    df = _by_claim(build_claims(meas, pim))
    assert df.loc["1a", "lower"] > 0  # (a) passes
    assert df.loc["1a", "verdict"] == INCONCLUSIVE and "(b)" in df.loc["1a", "reason"]
    # (iii) the mirror: DiffHarmony++ worse everywhere
    meas, pim = _table1_images(-effects)
    df = _by_claim(build_claims(meas, pim))
    assert df.loc["1a", "verdict"] == DOES_NOT_HOLD and df.loc["1b", "verdict"] == DOES_NOT_HOLD
    assert df.loc["1a", "boot_upper"] < 0
    # without per-image values (b) cannot be checked
    df = _by_claim(build_claims(meas))
    assert df.loc["1a", "verdict"] == INCONCLUSIVE and "not checked" in df.loc["1a", "reason"]
    # (vi) the whole build is deterministic, and the per-image CSV reads back as written
    pd.testing.assert_frame_equal(build_claims(meas, pim), build_claims(meas, pim))
    csv = tmp_path / "table1.csv"
    seed0 = pim[pim["seed"] == 0].assign(seed=np.nan, seed_kind="none")  # as the Composite row
    seed0.to_csv(csv, index=False, na_rep="nan")
    back = claims.read_per_image([csv])
    assert back["seed"].isna().all() and back["psnr"].tolist() == pytest.approx(seed0["psnr"].tolist())


def test_per_image_values_must_match_the_measurements(tmp_path):
    meas, pim = _table1_images(np.full((3, 4), 0.5))
    pim.loc[0, "psnr"] += 10.0
    with pytest.raises(ValueError, match="different runs"):
        build_claims(meas, pim)
    bad = pim.drop(columns="cluster")
    bad.to_csv(tmp_path / "t1.csv", index=False)
    with pytest.raises(ValueError, match=r"t1\.csv.*cluster"):
        build_claims(meas, [tmp_path / "t1.csv"])
    with pytest.raises(ValueError, match="cluster"):
        claims.read_per_image(pim.assign(cluster_kind="crop"))
    with pytest.raises(ValueError, match="twice"):
        claims.read_per_image([pim, pim.head(1)])


def test_equivalence_claim_end_to_end():
    terms = (("DiffHarmony++", 1.0), ("DiffHarmony", -1.0))
    claim = claims.Claim(
        "eq", "negligible", "Table 1", "table1", "psnr", terms, ("training",),
        kind="equivalence", bound=0.1, bound_reason="test margin",
    )  # fmt: skip
    meas, pim = _table1_images(np.array([[0.01] * 4, [-0.02] * 4, [0.0] * 4]))
    df = build_claims(meas, pim, claims=[claim])
    assert df.loc[0, "verdict"] == HOLDS and "inside ±0.1" in df.loc[0, "reason"]
    assert df.loc[0, "bound"] == 0.1 and df.loc[0, "kind"] == "equivalence"
    meas, pim = _table1_images(np.full((3, 4), 0.5))
    assert build_claims(meas, pim, claims=[claim]).loc[0, "verdict"] == DOES_NOT_HOLD
    assert "equivalence, bound ±0.1 (test margin)" in claims.to_markdown(build_claims(meas, claims=[claim]))


def test_per_image_from_frame_bins_and_clusters():
    frame = pd.DataFrame(
        {
            "image": ["c1_1_1", "c1_1_2", "c2_5_1", "c3_1_1"],
            "fg_ratio": [0.01, 0.2, 0.07, 0.5],
            "psnr": [30.0, 31.0, np.inf, 29.0],
            "mse": 1.0,
            "fmse": [10.0, 20.0, 30.0, np.nan],
            "missing": [False, False, False, True],
        }
    )
    photos = {"c1_1_1": "coffee", "c1_1_2": "coffee", "c2_5_1": "china", "c3_1_1": "china"}
    rows = claims.per_image_from_frame(
        frame, "table3", "DiffHarmony++", 0, "training", photos, "source photo", True
    )
    assert list(rows["arm"]) == ["DiffHarmony++/0-5%", "DiffHarmony++/15-100%", "DiffHarmony++/5-15%"]
    assert list(rows["cluster"]) == ["coffee", "coffee", "china"]  # the missing prediction left out
    claims.read_per_image(rows)  # valid arms
    with pytest.raises(ValueError, match="no photo known"):
        claims.per_image_from_frame(frame, "table1", "DiffHarmony", 0, "training", {}, "source photo")


def test_builtin_composite_photos_match_the_build(tmp_path, monkeypatch, smoke_data_root):
    from harmonylib.config import load_config
    from harmonylib.data import builtin
    from harmonylib.data.builtin import build as builtin_build  # where _generate looks _write_lists up
    from harmonylib.data.iharmony4 import read_split

    recorded = {}
    write_lists = builtin_build._write_lists

    def spy(out, records, splits):
        recorded.update({r["name"]: r["photo"] for r in records})
        write_lists(out, records, splits)

    monkeypatch.setattr(builtin_build, "_write_lists", spy)
    root = tmp_path / "smoke"
    builtin.build_builtin(load_config("smoke").data.builtin, root)
    photos = builtin.composite_photos(root)  # read from composites.csv
    assert photos == recorded and len(set(photos.values())) > 1
    (root / builtin.COMPOSITES_FILE).unlink()  # rebuilt from BUILD.json's draws: the same table
    assert builtin.composite_photos(root) == recorded
    test_names = {s.name for s in read_split(smoke_data_root, "test")}
    assert test_names <= set(builtin.composite_photos(smoke_data_root))
    assert builtin.composite_photos(tmp_path) is None  # not a built-in dataset


def _rows(experiment, arm, metric, values, kind="training"):
    if kind == "none":
        return [(experiment, arm, metric, "none", None, values)]
    return [(experiment, arm, metric, kind, s, v) for s, v in enumerate(values)]


def _synthetic() -> pd.DataFrame:
    rows = []
    # Claim 1: DiffHarmony++ better on PSNR and on fMSE across 3 training seeds -> both hold.
    rows += _rows("table1", "DiffHarmony++", "psnr", [30.5, 30.7, 30.6])
    rows += _rows("table1", "DiffHarmony", "psnr", [30.0, 30.1, 30.05])
    rows += _rows("table1", "DiffHarmony++", "fmse", [500.0, 505.0, 498.0])
    rows += _rows("table1", "DiffHarmony", "fmse", [520.0, 530.0, 515.0])
    rows += _rows("table1", "Composite", "psnr", 28.0, "none")
    rows += _rows("table1", "Composite", "fmse", 900.0, "none")
    # Claim 2: high/harmony_vae lacks seed 2 -> 2 complete seeds, 1 incomplete -> insufficient.
    rows += _rows("table4", "low/plain", "psnr", [30.0, 30.0, 30.0])
    rows += _rows("table4", "low/harmony_vae", "psnr", [30.1, 30.12, 30.09])
    rows += _rows("table4", "high/plain", "psnr", [31.0, 31.0, 31.0])
    rows += _rows("table4", "high/harmony_vae", "psnr", [31.5, 31.6])
    # Claim 3: random init *better* for E_c+D (does not hold); E_c random diverged in 2 of 3 seeds
    # (NaN -> inconclusive); E_c+D vs E_c, both zero init: noisy (inconclusive).
    rows += _rows("table5", "E_c+D/zero", "psnr", [30.0, 30.1, 30.05])
    rows += _rows("table5", "E_c+D/random", "psnr", [30.5, 30.7, 30.6])
    rows += _rows("table5", "E_c/zero", "psnr", [29.0, 31.0, 29.5])
    rows += _rows("table5", "E_c/random", "psnr", [np.nan, 25.0, np.nan])
    # Claim 4: sampling seeds only; the pixel baseline evaluated once (seed_kind none).
    rows += _rows("table3", "DiffHarmony++/0-5%", "fmse", [300.0, 310.0, 305.0], "sampling")
    rows += _rows("table3", "DiffHarmony++/15-100%", "fmse", [200.0, 205.0, 198.0], "sampling")
    rows += _rows("table3", "PixelHarmonizer/0-5%", "fmse", 250.0, "none")
    rows += _rows("table3", "PixelHarmonizer/15-100%", "fmse", 260.0, "none")
    return pd.DataFrame(rows, columns=list(claims.MEASUREMENT_COLUMNS))


def _by_claim(df):
    return df.set_index("claim")


def test_build_claims_verdicts(tmp_path):
    csv = tmp_path / "measurements.csv"
    _synthetic().to_csv(csv, index=False)
    df = _by_claim(build_claims(csv))
    assert list(df.index) == [c.id for c in claims.CLAIMS]
    # no per-image values: (a) passes, (b) cannot be checked -> inconclusive, and it says so
    assert df.loc["1a", "verdict"] == INCONCLUSIVE and df.loc["1a", "lower"] > 0
    assert "(b) not checked" in df.loc["1a", "reason"]
    assert df.loc["1a", "mean"] == pytest.approx(np.mean([0.5, 0.6, 0.55]))
    assert df.loc["1b", "verdict"] == INCONCLUSIVE and df.loc["1b", "lower"] > 0  # lower fMSE, positive d
    assert df.loc["1b", "mean"] == pytest.approx(np.mean([20.0, 25.0, 17.0]))
    assert df.loc["2", "verdict"] == INSUFFICIENT
    assert (df.loc["2", "n_seeds"], df.loc["2", "n_incomplete"]) == (2, 1)
    assert df.loc["2", "mean"] == pytest.approx(np.mean([0.1 - 0.5, 0.12 - 0.6]))
    assert df.loc["3a", "verdict"] == INCONCLUSIVE and df.loc["3a", "upper"] < 0
    assert df.loc["3a", "mean"] == pytest.approx(-0.55)
    assert df.loc["3b", "verdict"] == INCONCLUSIVE
    assert (df.loc["3b", "n"], df.loc["3b", "n_nan"], df.loc["3b", "n_seeds"]) == (1, 2, 3)
    assert df.loc["3b", "mean"] == pytest.approx(6.0)
    assert df.loc["3c", "verdict"] == INCONCLUSIVE and df.loc["3c", "n"] == 3
    assert "(a)" in df.loc["3c", "reason"]  # the seeds disagree: decided before (b)
    # 4c: advantage (pixel − latent fMSE) grows from −55 to +60 on average; (b) not checked
    assert df.loc["4c", "verdict"] == INCONCLUSIVE and df.loc["4c", "lower"] > 0
    assert df.loc["4c", "mean"] == pytest.approx(
        np.mean([(260 - 200) - (250 - 300), (260 - 205) - (250 - 310), (260 - 198) - (250 - 305)])
    )
    # 4a / 4b: the levels in each bin; 4d: Human Harmony not measured
    assert df.loc["4a", "mean"] == pytest.approx(260 - np.mean([200.0, 205.0, 198.0]))
    assert df.loc["4b", "mean"] == pytest.approx(np.mean([300.0, 310.0, 305.0]) - 250)
    assert df.loc["4d", "verdict"] == NOT_MEASURED
    # claim 5 is judged like the others: (a) passes, (b) not checked
    assert df.loc["5a", "verdict"] == INCONCLUSIVE and df.loc["5b", "verdict"] == INCONCLUSIVE
    assert (df.loc[["6a", "6b", "7a", "7b"], "verdict"] == NOT_MEASURED).all()
    assert df.loc["8", "verdict"] == BY_CONSTRUCTION
    assert df.loc["5a", "mean"] == pytest.approx(np.mean([2.5, 2.7, 2.6]))
    assert df.loc["5b", "mean"] == pytest.approx(900 - np.mean([500.0, 505.0, 498.0]))
    # the paper's own d, from the reported tables
    assert df.loc["1a", "paper_effect"] == pytest.approx(41.66 - 40.97)
    assert df.loc["4c", "paper_effect"] == pytest.approx((152.01 - 136.67) - (143.93 - 173.40))
    assert math.isnan(df.loc["3b", "paper_effect"]) and "NaN" in df.loc["3b", "paper_text"]
    assert df.loc["1a", "effect_ratio"] == pytest.approx(np.mean([0.5, 0.6, 0.55]) / (41.66 - 40.97))
    assert (df["effect"].dropna() == df["mean"].dropna()).all()


def test_claim4_bins_bootstrap_with_a_fixed_baseline():
    # Claim 4's arms are bins (different images) and the baseline was evaluated once (seed_kind none).
    rng = np.random.default_rng(5)
    ratios = np.tile([0.01, 0.02, 0.5, 0.6, 0.1], 8)  # 40 images, 5 per photo-bin mix
    frame = {"image": [f"c{i}_1_1" for i in range(40)], "fg_ratio": ratios, "mse": 1.0, "psnr": 30.0}
    photos = {f"c{i}_1_1": f"photo{i % 8}" for i in range(40)}
    big = ratios >= 0.15
    pix = pd.DataFrame(frame | {"fmse": np.where(big, 300.0, 100.0) + rng.normal(0, 5, 40)})
    rows = [
        claims.per_image_from_frame(
            pix, "table3", "PixelHarmonizer", None, "none", photos, "source photo", True
        )
    ]
    for s in range(3):  # latent model: much better on large foregrounds, a bit worse on small ones
        ours = pd.DataFrame(frame | {"fmse": np.where(big, 150.0, 130.0) + rng.normal(0, 5, 40)})
        rows.append(
            claims.per_image_from_frame(
                ours, "table3", "DiffHarmony++", s, "sampling", photos, "source photo", True
            )
        )
    pim = pd.concat(rows, ignore_index=True)
    means = pim.groupby(["experiment", "arm", "seed_kind", "seed"], dropna=False, as_index=False)[
        "fmse"
    ].mean()
    meas = means.assign(metric="fmse", value=means["fmse"])[list(claims.MEASUREMENT_COLUMNS)]
    meas = meas[~meas["arm"].str.endswith("/5-15%")]
    df = _by_claim(build_claims(meas, pim))
    assert df.loc["4c", "verdict"] == HOLDS, df.loc["4c", "reason"]
    assert df.loc["4c", "n_seeds"] == 3 and df.loc["4c", "boot_lower"] > 0
    # the levels: much better at 15-100 % (4a), a bit worse at 0-5 % (4b), as the paper says
    assert df.loc["4a", "verdict"] == HOLDS and df.loc["4b", "verdict"] == HOLDS


def test_training_claims_do_not_count_sampling_seeds():
    m = _synthetic()
    m.loc[m["experiment"] == "table1", "seed_kind"] = m.loc[m["experiment"] == "table1", "seed_kind"].replace(
        "training", "sampling"
    )
    df = _by_claim(build_claims(m))
    assert df.loc["1a", "verdict"] == INSUFFICIENT and df.loc["1a", "n_seeds"] == 0
    assert df.loc["5a", "n_seeds"] == 3  # claim 5 may use sampling seeds


def test_claim_differences_mark_nan_and_incomplete():
    d = claim_differences(_synthetic())
    b = d[d["claim"] == "3b"]
    assert list(b["complete"]) == [True, True, True]
    assert np.isnan(b["d"].iloc[0]) and b["d"].iloc[1] == pytest.approx(31.0 - 25.0)
    two = d[d["claim"] == "2"]
    assert list(two["complete"]) == [True, True, False] and np.isnan(two["d"].iloc[2])


@pytest.mark.parametrize(
    "change,message",
    [
        ({"experiment": "table9"}, "unknown experiment"),
        ({"arm": "HDNet"}, "unknown arm"),
        ({"metric": "ssim"}, "unknown metric"),
        ({"seed_kind": "eval"}, "unknown seed_kind"),
        ({"seed_kind": "none"}, "empty seed"),
    ],
)
def test_bad_measurements_are_rejected(change, message):
    m = _synthetic().head(1).copy()
    for k, v in change.items():
        m[k] = v
    with pytest.raises(ValueError, match=message):
        build_claims(m)


def test_duplicate_measurement_rejected():
    m = _synthetic()
    with pytest.raises(ValueError, match="several values"):
        build_claims(pd.concat([m, m.head(1)]))


def test_write_claims_renders_rule_first_and_is_rebuilt_from_csv(tmp_path):
    csv = tmp_path / "claims_measurements.csv"
    _synthetic().to_csv(csv, index=False)
    paths = claims.rebuild_claims(csv, tmp_path / "out", title="Claims (synthetic)")
    md = paths["md"].read_text()
    assert md.index("## Declared rule") < md.index("## Claims") < md.index("## Per-seed values")
    assert "t(0.95, n−1)" in md and "photos" in md and "Why version 2" in md and "NaN" in md
    for verdict in (INCONCLUSIVE, INSUFFICIENT, NOT_MEASURED, BY_CONSTRUCTION):
        assert f"**{verdict}**" in md
    assert "+0.69 (DiffHarmony++ 41.66, DiffHarmony 40.97)" in md  # the paper's numbers
    assert "training:0=" in md
    written = pd.read_csv(paths["csv"])
    pd.testing.assert_frame_equal(
        written[["claim", "verdict", "n", "n_nan"]],
        build_claims(csv)[["claim", "verdict", "n", "n_nan"]],
        check_dtype=False,
    )
    prov = json.loads(paths["provenance"].read_text())
    assert prov["rule"] == list(claims.RULE) and "measurements" in prov["sha256"]
    assert set(prov["outputs"]) == {"md", "csv", "per_seed"}
    per_seed = pd.read_csv(paths["per_seed"])
    assert list(per_seed.columns) == ["claim", "seed_kind", "seed", "d", "complete"]
    assert "3 training (needs 3 training)" in md and "3 sampling (needs 3, any kind)" in md
    assert not list((tmp_path / "out").glob(".*"))  # atomic: no temporary files left


def test_write_claims_with_given_provenance(tmp_path):
    df = build_claims(_synthetic())
    paths = write_claims(df, tmp_path / "claims.md", tmp_path / "claims.csv", {"seeds": {"train": [0, 1, 2]}})
    assert json.loads(paths["provenance"].read_text())["seeds"] == {"train": [0, 1, 2]}
    assert set(paths) == {"md", "csv", "provenance"}


def test_measurements_from_summary():
    summary = pd.DataFrame(
        {"subset": ["HCOCO", "All"], "psnr": [30.0, 31.0], "mse": [5.0, 4.0], "fmse": [50.0, 40.0]}
    )
    rows = claims.measurements_from_summary(summary, "table1", "DiffHarmony++", seed=2, seed_kind="training")
    assert list(rows.columns) == list(claims.MEASUREMENT_COLUMNS)
    assert rows.set_index("metric")["value"].to_dict() == {"psnr": 31.0, "mse": 4.0, "fmse": 40.0}
    bins = pd.DataFrame(
        {
            "subset": ["All"] * 3,
            "fg_bin": ["0-5%", "5-15%", "15-100%"],
            "psnr": [1.0, 2.0, 3.0],
            "mse": 1.0,
            "fmse": 1.0,
        }
    )
    rows = claims.measurements_from_summary(
        bins, "table3", "DiffHarmony++", seed=0, seed_kind="sampling", metrics=("fmse",)
    )
    assert list(rows["arm"]) == ["DiffHarmony++/0-5%", "DiffHarmony++/5-15%", "DiffHarmony++/15-100%"]
    claims.read_measurements(rows)  # the arms are valid

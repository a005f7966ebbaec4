"""claims.md is rebuilt from per-seed measurements by a rule declared before measuring."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harmonylib import claims
from harmonylib.claims import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    INSUFFICIENT,
    REPORTED,
    build_claims,
    claim_differences,
    claim_verdict,
    write_claims,
)

# ---------------------------------------------------------------- the rule on bare values


def test_verdict_holds_does_not_hold_inconclusive():
    v = claim_verdict([1.0, 1.2, 0.8], n_min=3)
    assert v.verdict == HOLDS and v.n == 3 and v.n_nan == 0
    assert v.mean == pytest.approx(1.0)
    assert v.se == pytest.approx(np.std([1.0, 1.2, 0.8], ddof=1) / math.sqrt(3))
    assert claim_verdict([-1.0, -1.2, -0.8], 3).verdict == DOES_NOT_HOLD
    assert claim_verdict([1.0, -1.0, 0.5], 3).verdict == INCONCLUSIVE
    # the threshold sits at 2 SE (shifting all values keeps SE)
    x = np.array([0.0, 1.0, 2.0])
    at_threshold = x - x.mean() + 2 * x.std(ddof=1) / math.sqrt(3)
    assert claim_verdict(at_threshold - 1e-6, 3).verdict == INCONCLUSIVE
    assert claim_verdict(at_threshold + 1e-6, 3).verdict == HOLDS
    assert claim_verdict(-at_threshold + 1e-6, 3).verdict == INCONCLUSIVE
    assert claim_verdict(-at_threshold - 1e-6, 3).verdict == DOES_NOT_HOLD
    # identical seeds: SE 0, any positive mean holds; zero is inconclusive
    assert claim_verdict([0.5, 0.5, 0.5], 3).verdict == HOLDS
    assert claim_verdict([0.0, 0.0, 0.0], 3).verdict == INCONCLUSIVE


def test_verdict_insufficient_seeds_and_nan():
    v = claim_verdict([5.0, 5.1], n_min=3)
    assert v.verdict == INSUFFICIENT and v.n == 2  # a clear effect, but too few seeds: no verdict
    assert claim_verdict([], 3).verdict == INSUFFICIENT
    # NaN: counted, left out of mean and SE
    v = claim_verdict([1.0, np.nan, 1.2, 0.8], n_min=3)
    assert v.verdict == HOLDS and v.n == 3 and v.n_nan == 1 and v.mean == pytest.approx(1.0)
    # enough seeds, too few finite: inconclusive, not insufficient
    v = claim_verdict([1.0, np.nan, np.inf], n_min=3)
    assert v.verdict == INCONCLUSIVE and v.n == 1 and v.n_nan == 2 and math.isnan(v.se)
    with pytest.raises(ValueError, match="n_min"):
        claim_verdict([1.0, 2.0], n_min=1)


# ---------------------------------------------------------------- measurements -> claims


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
    assert df.loc["1a", "verdict"] == HOLDS
    assert df.loc["1a", "mean"] == pytest.approx(np.mean([0.5, 0.6, 0.55]))
    assert df.loc["1b", "verdict"] == HOLDS  # lower fMSE, positive d
    assert df.loc["1b", "mean"] == pytest.approx(np.mean([20.0, 25.0, 17.0]))
    assert df.loc["2", "verdict"] == INSUFFICIENT
    assert (df.loc["2", "n_seeds"], df.loc["2", "n_incomplete"]) == (2, 1)
    assert df.loc["2", "mean"] == pytest.approx(np.mean([0.1 - 0.5, 0.12 - 0.6]))
    assert df.loc["3a", "verdict"] == DOES_NOT_HOLD
    assert df.loc["3a", "mean"] == pytest.approx(-0.55)
    assert df.loc["3b", "verdict"] == INCONCLUSIVE
    assert (df.loc["3b", "n"], df.loc["3b", "n_nan"], df.loc["3b", "n_seeds"]) == (1, 2, 3)
    assert df.loc["3b", "mean"] == pytest.approx(6.0)
    assert df.loc["3c", "verdict"] == INCONCLUSIVE and df.loc["3c", "n"] == 3
    # 4: advantage (pixel − latent fMSE) grows from −55 to +60 on average -> holds
    assert df.loc["4", "verdict"] == HOLDS
    assert df.loc["4", "mean"] == pytest.approx(
        np.mean([(260 - 200) - (250 - 300), (260 - 205) - (250 - 310), (260 - 198) - (250 - 305)])
    )
    assert df.loc["5a", "verdict"] == REPORTED and df.loc["5b", "verdict"] == REPORTED
    assert df.loc["5a", "mean"] == pytest.approx(np.mean([2.5, 2.7, 2.6]))
    assert df.loc["5b", "mean"] == pytest.approx(900 - np.mean([500.0, 505.0, 498.0]))
    # the paper's own d, from the reported tables
    assert df.loc["1a", "paper"] == pytest.approx(41.66 - 40.97)
    assert df.loc["4", "paper"] == pytest.approx((152.01 - 136.67) - (143.93 - 173.40))
    assert math.isnan(df.loc["3b", "paper"]) and "NaN" in df.loc["3b", "paper_text"]


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
    assert "mean > 2·SE" in md and "NaN" in md
    for verdict in (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, INSUFFICIENT, REPORTED):
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

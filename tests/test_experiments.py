"""The table/figure orchestration (harmonylib.experiments) on the smoke profile, and the README block.

One module-scoped smoke run trains the tiny models once and writes Tables 1, 4 and 5 and Table 3's
iHarmony4 rows; the tests check what it recorded: table shapes, finite numbers, every reported
value present, per-image CSVs that re-aggregate to the table, claims, and that a rerun is cached.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmonylib import claims, experiments, readme, results_page, tables
from harmonylib.config import load_config
from harmonylib.evaluation import aggregate


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke_data_root):
    out = tmp_path_factory.mktemp("experiments") / "results"
    exp = experiments.setup("smoke", str(smoke_data_root), str(out), seed=0, progress=False)
    results = {
        1: experiments.table1(exp),
        4: experiments.table4(exp),
        5: experiments.table5(exp),
        3: experiments.table3(exp, human_harmony_root=None),
    }
    return exp, results


def _measured(df: pd.DataFrame, **keys) -> pd.DataFrame:
    sel = np.ones(len(df), bool)
    for k, v in keys.items():
        sel &= (df[k] == v).to_numpy()
    return df[sel]


# ---- settings -------------------------------------------------------------------------------------


def test_default_seeds_and_sizes():
    smoke, mini, paper = load_config("smoke"), load_config("mini"), load_config("paper")
    assert experiments.default_seeds(smoke) == [0]
    assert experiments.default_seeds(mini) == [0, 1, 2]
    assert experiments.default_seeds(mini, [5]) == [5]
    assert experiments.inference_sizes(paper) == {"low": 512, "high": 1024}
    assert experiments.inference_sizes(mini) == {"low": 64, "high": 128}
    assert "512 px is 64 px" in experiments.size_note(mini)
    assert "as the paper" in experiments.size_note(paper)


def test_captions_say_what_varied_with_the_seed():
    """Seeds: the Harmony-VAE is retrained per seed; the forward UNet is adopted (mini) or trained once."""
    mini = load_config("mini")
    text = experiments.seed_text([0, 1, 2], mini)
    assert text.startswith("mean over 3 training seeds (0, 1, 2)")
    assert "the Harmony-VAE is retrained with that seed" in text
    assert "harmonylib/weights/mini/unet" in text and "adopted as it is and the same for every seed" in text
    trained = experiments.unet_note(load_config("mini", {"train.unet.adopt": None, "seed": 4}))
    assert "trained once, at the base seed 4 from harmonylib/weights/mini/inpainting_unet" in trained
    assert experiments.seed_text([5]) == "training seed 5"


def test_table1_ours_is_table4_high_harmony_vae_settings(smoke_run):
    exp, _ = smoke_run
    a = experiments.inference_settings(exp, experiments.Arm("diffharmony++", "high", 0), "m")
    assert (a.size, a.size_mode, a.steps, a.output_resolution, a.keep_background) == (
        128,
        "square",
        5,
        256,
        False,
    )
    low = experiments.inference_settings(exp, experiments.Arm("diffharmony++", "low", 0), "m")
    assert low.size == 64


# ---- tables ---------------------------------------------------------------------------------------


def test_table1_shape_finite_and_reported(smoke_run):
    exp, res = smoke_run
    df = tables.read_table(res[1].paths["csv"])
    rep = tables.reported(1)
    ceilings = df["model"].isin(experiments.CEILINGS.values())
    assert len(df[~ceilings]) == len(rep)  # every paper cell; the only extra rows are the ceilings
    df = df[~ceilings]
    assert df["reported"].notna().sum() == rep["value"].notna().sum()
    for model in ("Composite", "DiffHarmony", "DiffHarmony++"):
        m = _measured(df, model=model)
        assert len(m) == 15 and np.isfinite(m["measured"]).all(), model
        assert np.isfinite(m["delta"]).all()
    others = df[~df["model"].isin(["Composite", "DiffHarmony", "DiffHarmony++"])]
    assert others["measured"].isna().all()  # shown as reported
    assert "1024 px is 128 px" in res[1].caption and "latent values per content value" in res[1].caption
    assert experiments.finite(res[1].summary)


def test_table1_ceiling_rows(smoke_run):
    exp, res = smoke_run
    df = tables.read_table(res[1].paths["csv"])
    for name in experiments.CEILINGS.values():
        m = _measured(df, model=name)
        assert len(m) == 15 and np.isfinite(m["measured"]).all() and m["reported"].isna().all(), name
    assert "VAE ceiling" in res[1].caption and "perfect latents" in res[1].caption
    # one per-image CSV each (one training seed in smoke), scored like every other row
    assert len(list(exp.per_image_dir.glob("table1_iHarmony4_VAE_ceiling_ceiling_high_seed0.csv"))) == 1
    assert (
        len(
            list(
                exp.per_image_dir.glob(
                    "table1_iHarmony4_Harmony-VAE_ceiling_ceilingpp_high_ecd_zero_seed0.csv"
                )
            )
        )
        == 1
    )


def test_table1_per_image_csvs_reaggregate(smoke_run):
    exp, res = smoke_run
    df = tables.read_table(res[1].paths["csv"])
    for model in ("Composite", "DiffHarmony++"):
        files = sorted((exp.per_image_dir).glob(f"table1_iHarmony4_{model}_*.csv"))
        assert len(files) == 1
        agg = aggregate(pd.read_csv(files[0])).set_index("subset")
        row = _measured(df, model=model, subset="All", metric="PSNR")
        assert row["measured"].iloc[0] == pytest.approx(agg.loc["All", "psnr"])


def test_table4_rows(smoke_run):
    _, res = smoke_run
    df = tables.read_table(res[4].paths["csv"])
    assert len(df) == 18 and np.isfinite(df["measured"]).all() and np.isfinite(df["reported"]).all()
    assert set(res[4].summary) == {s for s, *_ in experiments.TABLE4_ROWS}


def test_table4_and_table1_share_predictions(smoke_run):
    exp, res = smoke_run
    t1 = _measured(tables.read_table(res[1].paths["csv"]), model="DiffHarmony++", subset="All")
    t4 = _measured(tables.read_table(res[4].paths["csv"]), setting="1024/harmony_vae")
    for metric in ("PSNR", "MSE", "fMSE"):
        assert _measured(t1, metric=metric)["measured"].iloc[0] == pytest.approx(
            _measured(t4, metric=metric)["measured"].iloc[0]
        )


def test_table5_cells(smoke_run):
    _, res = smoke_run
    df = tables.read_table(res[5].paths["csv"])
    assert len(df) == 12
    assert np.isfinite(df["measured"]).all()  # no smoke run diverged
    assert (df["reported_status"] == "nan").sum() == 3  # E_c / random printed as NaN
    assert all(v["n_diverged"] == 0 for v in res[5].summary.values())


def test_table5_diverged_run_is_nan_only_then(smoke_run, monkeypatch, tmp_path):
    exp, _ = smoke_run
    real = experiments.harmony_vae_run

    def fake(exp_, seed, variant=experiments.PAPER_VARIANT):
        run = real(exp_, seed, variant)
        if variant == "ec_random":
            run = type(run)(**{**run.__dict__, "status": "diverged"})
        return run

    # predictions_for looks the run up in its module (harmonylib.experiments.trained): patch it there
    monkeypatch.setattr(experiments.trained, "harmony_vae_run", fake)
    exp2 = experiments.Experiment(exp.cfg, tmp_path, exp.data_root, exp.samples, exp.cache, False)
    shutil.copytree(exp.out / "runs", tmp_path / "runs")
    res = experiments.table5(exp2)
    df = tables.read_table(res.paths["csv"])
    cell = _measured(df, params="E_c", init="random")
    assert cell["measured"].isna().all()
    assert np.isfinite(_measured(df, params="E_c+D", init="random")["measured"]).all()
    assert "Diverged runs" in res.caption
    m = pd.read_csv(res.measurements)
    assert m[m["arm"] == "E_c/random"]["value"].isna().all()


def test_table3_bins(smoke_run):
    exp, res = smoke_run
    df = tables.read_table(res[3].paths["csv"])
    ih = df[df["dataset"] == "iHarmony4"]
    n = _measured(ih, model="N_samples")
    assert n["measured"].sum() == len(exp.samples)
    for model in ("HDNet_512", "DiffHarmony++", "colour_transfer"):
        vals = _measured(ih, model=model)["measured"]
        assert len(vals) == 9
        nonempty = n.set_index("fg_bin")["measured"] > 0
        assert np.isfinite(vals.to_numpy()[np.repeat(nonempty.to_numpy(), 3)]).all(), model
    assert "stand-in" in res[3].caption and "not public" in res[3].caption
    assert "not measured: no built Human Harmony root" in res[3].caption
    # reported values all present, Human Harmony shown as reported
    assert df["reported"].notna().sum() == tables.reported(3)["value"].notna().sum()


# ---- caching ---------------------------------------------------------------------------------------


def test_rerun_skips_training_and_inference(smoke_run, monkeypatch):
    exp, res = smoke_run

    def boom(*a, **k):
        raise AssertionError("inference ran again")

    monkeypatch.setattr(experiments.predictions, "predict_split", boom)
    again = experiments.table1(exp)
    for model, values in res[1].summary.items():
        assert again.summary[model] == pytest.approx(values)


# ---- claims -----------------------------------------------------------------------------------------


def test_claims_written_insufficient_with_one_seed(smoke_run):
    exp, _ = smoke_run
    assert (exp.out / "claims.md").is_file()
    m = claims.read_measurements(exp.out / experiments.MEASUREMENTS_FILE)
    assert set(m["experiment"]) == {"table1", "table3", "table4", "table5"}
    c = pd.read_csv(exp.out / "claims.csv").set_index("claim")
    for cid in ("1a", "1b", "2", "3a", "3b", "3c", "4a", "4b", "4c", "5a", "5b"):
        assert c.loc[cid, "verdict"] == claims.INSUFFICIENT
    assert c.loc["8", "verdict"] == claims.BY_CONSTRUCTION
    for cid in ("4d", "6a", "6b"):  # no Human Harmony root, Table 2 not run here
        assert c.loc[cid, "verdict"] == claims.NOT_MEASURED
    for cid in ("7a", "7b"):  # the refinement rows run at the base seed only
        assert c.loc[cid, "verdict"] == claims.INSUFFICIENT and c.loc[cid, "n_seeds"] == 1
    assert math.isfinite(c.loc["1a", "mean"])


# ---- README block -----------------------------------------------------------------------------------


def test_readme_block_from_tables(smoke_run, tmp_path):
    exp, _ = smoke_run
    block = readme.results_block("smoke", exp.out)
    assert "| DiffHarmony++ | " in block and "41.66" in block and "| claim | statement |" in block
    page = results_page.results_page("smoke", exp.out)
    assert "| Table 1 | All / DiffHarmony++ | PSNR |" in page
    assert "| Table 1 | HCOCO / DiffHarmony++ |" in page
    assert "| Table 5 |" in page and "08_table5" in page
    doc = tmp_path / "README.md"
    doc.write_text(
        "# T\n\nintro\n<!-- results:start (generated) -->\nold\n<!-- results:end -->\n\n## After\nkeep\n"
    )
    assert readme.update_readme(doc, block)
    text = doc.read_text()
    assert text.startswith("# T\n\nintro\n<!-- results:start (generated) -->\n") and "old" not in text
    assert text.endswith("<!-- results:end -->\n\n## After\nkeep\n")
    assert not readme.update_readme(doc, block)  # idempotent
    bad = tmp_path / "BAD.md"
    bad.write_text("no markers\n")
    with pytest.raises(ValueError, match="results:start"):
        readme.update_readme(bad, block)


def test_readme_without_results(tmp_path):
    assert "No Table 1 yet" in readme.results_block("smoke", tmp_path)
    page = results_page.results_page("smoke", tmp_path)
    assert "No tables yet" in page and "04_table1" in page


# ---- the pixel-baseline recipe -----------------------------------------------------------------------


def test_pixel_baseline_recipe_trained(smoke_run):
    exp, _ = smoke_run
    run = experiments.pixel_baseline_run(exp, 0)
    assert run.status == "completed" and run.steps == 4
    assert (Path(run.weights_dir()) / "config.json").is_file()


def test_readme_shows_candidate_fidelity(tmp_path):
    (tmp_path / "tables").mkdir()
    assert "original against generated" not in results_page.results_page("smoke", tmp_path)
    pd.DataFrame(
        [
            {
                "subset": "HFlickr",
                "source": "original",
                "n": 3,
                "fmse": 1015.8,
                "colour_shift": 24.5,
                "residual_fmse": 78.2,
            },
            {
                "subset": "HFlickr",
                "source": "generated",
                "n": 4,
                "fmse": 3552.6,
                "colour_shift": 39.1,
                "residual_fmse": 727.4,
            },
        ]
    ).to_csv(tmp_path / "tables" / "table2_candidates.csv", index=False)
    block = results_page.results_page("smoke", tmp_path)
    assert "| HFlickr | original | 3 | 1016 | 24.5 | 78 |" in block
    assert "| HFlickr | generated | 4 | 3553 | 39.1 | 727 |" in block

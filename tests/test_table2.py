"""Table 2 (augmentation with the inverse model) and the Human Harmony build, on the smoke profile.

Table 2's runs use a tiny random inverse pipeline (the generated pixels do not matter here, their
number and where they go do); the Human Harmony build runs the real orchestration end to end
(inverse runs, classifier run, generation, selection) at smoke size.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from harmonylib import experiments
from harmonylib import inverse_data as T
from harmonylib.augment import mixing_count
from harmonylib.config import load_config
from harmonylib.data.iharmony4 import read_split
from harmonylib.metrics import FG_BIN_LABELS

SUBSETS = ("Hday2night", "HFlickr")


@pytest.fixture(scope="module")
def smoke_cfg(smoke_data_root):
    return load_config("smoke", {"data.root": str(smoke_data_root)})


@pytest.fixture(scope="module")
def table2_result(smoke_data_root, tmp_path_factory):
    """Table 2 through ``experiments.table2``: data, the four trained runs, scores, files (about 10 s)."""
    from harmonylib.models.tiny import build_tiny_pipeline

    out = tmp_path_factory.mktemp("table2")
    exp = experiments.setup("smoke", str(smoke_data_root), str(out), progress=False)
    inverse = build_tiny_pipeline(0, direction="inverse")
    return out, experiments.table2(exp, inverse=inverse)


@pytest.fixture(scope="module")
def table2(table2_result):
    """Generated data, the four trained runs and their per-image scores."""
    out, result = table2_result
    return out, result.data, result.runs, result.per_image


def test_schedule_is_shared_and_follows_the_config(smoke_cfg):
    # smoke: the unet loop's max_steps; the batch is cut to a base list smaller than it
    assert T.table2_schedule(smoke_cfg, 7) == (smoke_cfg.train.unet.loop.max_steps, 4)
    assert T.table2_schedule(smoke_cfg, 2) == (smoke_cfg.train.unet.loop.max_steps, 2)
    over = load_config("smoke", {"augment.table2_steps": 9})
    assert T.table2_schedule(over, 7)[0] == 9
    # no max_steps: epochs over the *base* list (full batches), never over the augmented one
    epochs = load_config("mini", {"augment.table2_steps": None, "train.unet.loop.max_steps": None})
    loop = epochs.train.unet.loop
    assert T.table2_schedule(epochs, 129) == (loop.epochs * (129 // loop.batch_size), loop.batch_size)


def test_run_configs_differ_only_in_the_generated_root(smoke_cfg, tmp_path):
    base = T.table2_run_config(smoke_cfg, "HFlickr", "base", steps=5, batch_size=3)
    aug = T.table2_run_config(smoke_cfg, "HFlickr", "augmented", steps=5, batch_size=3, gen_root=tmp_path)
    for c in (base, aug):
        assert c.data.subsets == ("HFlickr",)
        assert c.train.unet.direction == "forward"
        assert (c.train.unet.loop.max_steps, c.train.unet.loop.batch_size) == (5, 3)
    assert base.data.extra_roots == {} and aug.data.extra_roots == {"gen": str(tmp_path)}
    assert base.train == aug.train and base.seed == aug.seed
    with pytest.raises(ValueError, match="needs gen_root"):
        T.table2_run_config(smoke_cfg, "HFlickr", "augmented", steps=5, batch_size=3)
    # Table 2's UNets start from init (SD-inpainting or its stand-in), never from the adopted UNet
    cfg = load_config("smoke", {"train.unet.init": "some/inpainting", "train.unet.adopt": "some/released"})
    unet = T.table2_run_config(cfg, "HFlickr", "base", steps=5, batch_size=3).train.unet
    assert unet.init == "some/inpainting" and unet.adopt is None


def test_augmented_run_hash_does_not_depend_on_where_the_clone_lies(smoke_cfg, tmp_path, monkeypatch):
    """The generated root is stored relative to the home: the augmented run's hash is the same in
    every clone, the path still resolves, and another generated root is another run."""
    from harmonylib.paths import resolve
    from harmonylib.training.runs import run_hash

    def augmented(home, name="generated-x"):
        monkeypatch.setenv("HARMONYLIB_HOME", str(home))
        gen = home / "results" / "smoke" / "table2" / name
        cfg = T.table2_run_config(smoke_cfg, "HFlickr", "augmented", steps=5, batch_size=3, gen_root=gen)
        assert cfg.data.extra_roots == {"gen": f"results/smoke/table2/{name}"}
        assert resolve(cfg.data.extra_roots["gen"]) == gen
        return run_hash(cfg, "unet")

    assert augmented(tmp_path / "a") == augmented(tmp_path / "b")
    assert augmented(tmp_path / "b", "generated-y") != augmented(tmp_path / "b")


def test_generated_root_name_does_not_depend_on_where_the_clone_lies(tmp_path, monkeypatch):
    """The generated root's key holds the data root relative to the home: two clones generate into
    folders of the same name (relative to their homes)."""
    from harmonylib.data.builtin import build_builtin
    from harmonylib.models.tiny import build_tiny_pipeline

    names = []
    for clone in ("a", "b"):
        home = tmp_path / clone
        monkeypatch.setenv("HARMONYLIB_HOME", str(home))
        cfg = load_config("smoke", {"data.root": "data/smoke", "augment.table2_subsets": ["Hday2night"]})
        build_builtin(cfg.data.builtin, home / "data" / "smoke")
        inverse = build_tiny_pipeline(0, direction="inverse")
        data = T.generate_table2_data(cfg, inverse, home / "results" / "smoke", progress=False)
        names.append(data.gen_root.relative_to(home))
    assert names[0] == names[1] and names[0].parent.as_posix() == "results/smoke/table2"


def test_training_note_reads_the_config():
    """Table 2's caption states start weights, steps and seeds from the config, never hard-coded."""
    mini = T.table2_training_note(load_config("mini"))
    assert "from harmonylib/weights/mini/inpainting_unet (train.unet.init)" in mini
    assert f"{load_config('mini').augment.table2_steps} optimizer steps each (augment.table2_steps)" in mini
    # mini: the claims' three training seeds, each UNet retrained per seed, cells the seed mean
    assert "3 training seeds (0, 1, 2)" in mini and "a cell is the mean over seeds" in mini
    other_cfg = load_config("mini", {"augment.table2_steps": 7, "seed": 3, "train.unet.init": "x/inpaint"})
    other = T.table2_training_note(other_cfg)
    assert (
        "from x/inpaint" in other and "7 optimizer steps" in other and "3 training seeds (3, 4, 5)" in other
    )
    one = T.table2_training_note(other_cfg, [3])
    assert "one training seed (3)" in one and "not a mean over seeds" in one
    smoke = T.table2_training_note(load_config("smoke", {"augment.table2_steps": None}))
    assert "from random tiny weights" in smoke and "(train.unet.loop.max_steps)" in smoke
    paper = T.table2_training_note(load_config("paper"))
    assert "checkpoints/stable-diffusion-inpainting" in paper and "epochs of the base list" in paper


def test_equal_total_steps_and_samples(table2):
    _, data, runs, _ = table2
    # smoke: one training seed (claim_rule.default_seeds), the base seed
    assert set(runs) == {(s, setting, 0) for s in SUBSETS for setting in T.SETTINGS}
    for s in SUBSETS:
        base, aug = runs[(s, "base", 0)], runs[(s, "augmented", 0)]
        assert base.seed == aug.seed == 0 and base.run.run_dir.name == f"table2-{s}-base-seed0"
        assert base.run.status == aug.run.status == "completed"
        assert base.run.steps == aug.run.steps == base.steps  # optimizer steps actually taken
        assert base.batch_size == aug.batch_size
        assert base.samples_seen == aug.samples_seen
        assert aug.n_train == base.n_train + data.subsets[s].added > base.n_train
        done = [json.loads((r.run.run_dir / "DONE").read_text()) for r in (base, aug)]
        assert done[0]["steps"] == done[1]["steps"] == done[0]["max_steps"] == done[1]["max_steps"]
    frame = T.runs_frame(runs)
    assert frame.groupby("subset")["samples_seen"].nunique().eq(1).all()


def test_augmented_list_holds_originals_and_the_generated_share(table2, smoke_cfg, smoke_data_root):
    from harmonylib.training.recipes import train_samples

    _, data, runs, _ = table2
    assert data.generation["generated"] > 0 and data.generation["candidates_per_second"] > 0
    for s in SUBSETS:
        original = read_split(smoke_data_root, "train", subsets=[s])
        pairs = {x.mask_id for x in original}
        m = mixing_count(1.0, len(pairs), len(original))
        mix = data.subsets[s]
        assert (mix.n_pairs, mix.n_composites, mix.per_pair) == (len(pairs), len(original), m)
        assert mix.k >= m

        merged = read_split({"main": smoke_data_root, "gen": data.gen_root}, "train", subsets=[s])
        assert merged[: len(original)] == original  # the originals first, unchanged
        added = merged[len(original) :]
        assert len(added) == len(pairs) * m
        assert {x.root_name for x in added} == {"gen"} and {x.subset for x in added} == {s}
        per_pair = pd.Series([x.mask_id for x in added]).value_counts()
        assert set(per_pair.index) == pairs and (per_pair == m).all()
        for x in added:  # the candidate's mask and real are the originals' (linked into the gen root)
            assert (
                x.mask.read_bytes() == next(o for o in original if o.mask_id == x.mask_id).mask.read_bytes()
            )
        # the training recipe reads the same list (two roots, one subset)
        assert [x.composite for x in train_samples(runs[(s, "augmented", 0)].cfg)] == [
            x.composite for x in merged
        ]
        assert [x.composite for x in train_samples(runs[(s, "base", 0)].cfg)] == [
            x.composite for x in original
        ]


def test_table2_frame_and_files(table2_result, smoke_cfg, smoke_data_root):
    from harmonylib.tables import read_table

    out, result = table2_result
    data, runs, per_image = result.data, result.runs, result.per_image
    for s in SUBSETS:
        n_test = len(read_split(smoke_data_root, "test", subsets=[s]))
        assert (per_image["subset"] == s).sum() == 2 * n_test
    table = result.table
    pd.testing.assert_frame_equal(
        experiments.render_table2(per_image), table
    )  # re-aggregated from the scores
    assert len(table) == len(SUBSETS) * 2 * 3
    assert set(zip(table["subset"], table["setting"], table["metric"], strict=True)) == {
        (s, setting, m) for s in SUBSETS for setting in T.SETTINGS for m in ("PSNR", "MSE", "fMSE")
    }
    assert table["reported"].notna().all() and (table["reported_status"] == "reported").all()
    assert table["measured"].map(math.isfinite).all()
    assert (
        table.set_index(["subset", "setting", "metric"]).loc[("Hday2night", "augmented", "PSNR"), "reported"]
        == 42.26
    )

    paths = result.paths
    assert paths == T.write_table2(smoke_cfg, table, runs, data, out, composite=T.composite_scores(smoke_cfg))
    back = read_table(paths["csv"])
    assert len(back) == len(table)
    prov = json.loads(paths["provenance"].read_text())
    assert prov["table"] == 2 and len(prov["runs"]) == 4 and set(prov["mix"]) == set(SUBSETS)
    assert "augmented_list" in prov["sha256"]
    for s in SUBSETS:
        for setting in T.SETTINGS:
            csv = pd.read_csv(out / "tables" / "per_image" / f"table2_{s}_{setting}_seed0.csv")
            assert {"run", "setting", "seed", "image", "subset", "mse", "psnr", "fmse"} <= set(csv.columns)
            assert (csv["seed"] == 0).all()
    assert prov["seeds"] == {"seeds": [0], "generation_seed": 0}
    findings = result.findings
    assert len(findings) == 6 and findings["augmented_better"].dtype == bool
    # the claims: one measurement per (subset, setting, seed) and metric, arms "<subset>/<setting>"
    claims = pd.read_csv(out / "claims" / "table2.csv")
    assert len(claims) == len(runs) * 3 and set(claims["arm"]) == {
        f"{s}/{g}" for s in SUBSETS for g in T.SETTINGS
    }
    assert result.measurements == out / "claims" / "table2.csv" and (out / "claims.md").is_file()
    assert result.summary == {f"{r.subset}/{r.setting}/{r.metric}": r.measured for r in table.itertuples()}


def test_measured_cells_are_the_mean_over_seeds_of_seed_means():
    """A Table 2 cell over training seeds is the mean of each seed's subset mean (as Table 1)."""
    rows = []
    for seed, (a, b) in {0: (10.0, 30.0), 1: (50.0, 50.0), 2: (20.0, 20.0)}.items():
        for i, mse in enumerate((a, b)):
            rows.append(
                {"setting": "base", "seed": seed, "subset": "HFlickr", "image": f"x{i}", "mse": mse,
                 "psnr": 30.0 + seed, "fmse": 2 * mse, "bmse": 0.0}
            )  # fmt: skip
    # one seed with an extra image must not weigh more than the others
    rows.append({"setting": "base", "seed": 2, "subset": "HFlickr", "image": "x2", "mse": 20.0,
                 "psnr": 32.0, "fmse": 40.0, "bmse": 0.0})  # fmt: skip
    cells = experiments.measured_table2(pd.DataFrame(rows)).set_index("metric")["value"]
    assert cells["MSE"] == pytest.approx((20.0 + 50.0 + 20.0) / 3)
    assert cells["fMSE"] == pytest.approx(2 * (20.0 + 50.0 + 20.0) / 3)
    assert cells["PSNR"] == pytest.approx(31.0)


def test_human_harmony_build_reads_as_iharmony4(smoke_cfg, tmp_path):
    out = tmp_path / "results"
    root = T.ensure_human_harmony(smoke_cfg, out)
    assert root == T.default_human_harmony_root(smoke_cfg, out) == out / "data" / "HumanHarmony"
    # one name per meaning: the old alias is gone; experiments.resolve_human_harmony_root chooses
    # between a given root and this default
    assert not hasattr(T, "human_harmony_root")
    train, test = read_split(root, "train"), read_split(root, "test")
    assert len(train) + len(test) == 12 and len(test) >= 1  # 14 stand-in images, 2 product shots
    assert {s.subset for s in train + test} == {"HumanHarmony"}
    stats = T.read_fg_ratio_stats(root)
    assert list(stats.columns) == ["split", "fg_bin", "n", "fraction", "paper_n", "paper_fraction"]
    assert stats.set_index(["split", "fg_bin"]).loc["all", "n"].sum() == 12
    paper = stats[stats["split"] == "test"].set_index("fg_bin")
    assert [paper.loc[b, "paper_n"] for b in FG_BIN_LABELS] == [26, 323, 2597]
    ratios = pd.read_csv(root / T.FG_RATIOS_FILE)
    assert len(ratios) == 12 and ratios["fg_ratio"].between(0, 1).all()
    done = json.loads((root / T.HUMAN_HARMONY_DONE).read_text())
    assert done["selection"]["n_selected"] == 12
    assert done["selection"]["n_candidates"] == 12 * smoke_cfg.augment.human_harmony_k
    assert done["generation"]["candidates_per_second"] > 0
    # built once: a second call reuses it
    mtime = (root / "IHD_train.txt").stat().st_mtime_ns
    assert T.ensure_human_harmony(smoke_cfg, out) == root
    assert (root / "IHD_train.txt").stat().st_mtime_ns == mtime


def test_real_data_profile_needs_the_release(tmp_path):
    paper = load_config("paper")
    with pytest.raises(FileNotFoundError, match="imaterialist_root"):
        T.imaterialist_source(paper, tmp_path)
    with pytest.raises(FileNotFoundError, match="no train.csv"):
        T.imaterialist_source(paper, tmp_path, imaterialist_root=tmp_path)


def test_a_forward_pipeline_is_refused(smoke_cfg, tmp_path):
    from harmonylib.models.tiny import build_tiny_pipeline

    with pytest.raises(ValueError, match="inverse"):
        T.generate_table2_data(smoke_cfg, build_tiny_pipeline(0), tmp_path, progress=False)

"""The one table runner (harmonylib.experiments.runner) and the paper's specs, without models.

``score`` is replaced by a deterministic fake, so these tests check what the runner does with
scores: which arms each spec asks for, the seed means, the claims' rows and their order, diverged
runs, the caption template and the summary. The smoke-profile run of the real tables is
tests/test_experiments.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harmonylib import experiments, tables
from harmonylib.config import load_config
from harmonylib.experiments import runner
from harmonylib.experiments.runner import ExperimentSpec, Row

SUBSETS = ("HCOCO", "HAdobe5k", "HFlickr", "Hday2night")


def _samples(n: int = 8) -> list:
    return [SimpleNamespace(name=f"c{i}", real_id=f"r{i // 2}", subset=SUBSETS[i % 4]) for i in range(n)]


def _value(arm) -> float:
    """A number that differs by method, variant, level, refinement and seed."""
    key = f"{arm.method}|{arm.variant}|{arm.level}|{arm.refine}|{arm.folder}"
    return 20.0 + sum(map(ord, key)) % 17 + arm.seed


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """An Experiment on the smoke config whose ``score`` is a fake; returns (exp, calls)."""
    calls = []
    diverge = set()

    def score(exp, arm, table, name, samples=None, dataset=experiments.IHARMONY4):
        calls.append((dataset, name, arm))
        if (arm.variant, arm.seed) in diverge:
            raise experiments.DivergedRun(f"fake: {arm.label()} diverged")
        samples = exp.samples if samples is None else samples
        v = _value(arm)
        ratios = np.linspace(0.01, 0.5, len(samples))  # every foreground bin filled
        return pd.DataFrame(
            {"image": [s.name for s in samples], "subset": [s.subset for s in samples], "fg_ratio": ratios,
             "mse": v, "psnr": v + ratios, "fmse": 10 * v, "bmse": 1.0, "missing": False}
        )  # fmt: skip

    monkeypatch.setattr(runner, "score", score)
    cfg = load_config("smoke")
    exp = experiments.Experiment(cfg, tmp_path / "out", tmp_path / "no-data", _samples(), None, False)
    return SimpleNamespace(exp=exp, calls=calls, diverge=diverge)


def test_a_folder_rows_csv_name_does_not_depend_on_where_the_clone_lies(tmp_path, monkeypatch):
    """The per-image CSV of a predictions-folder row hashes the folder relative to the home."""
    from harmonylib.experiments.context import short_hash
    from harmonylib.experiments.scoring import per_image_slug

    names = []
    for clone in ("a", "b"):
        monkeypatch.setenv("HARMONYLIB_HOME", str(tmp_path / clone))
        folder = tmp_path / clone / "results" / "mini" / "predictions" / "iHarmony4-colour_transfer"
        absolute, relative = (
            experiments.Arm("folder", folder=str(folder)),
            experiments.Arm("folder", folder="results/mini/predictions/iHarmony4-colour_transfer"),
        )
        assert absolute.label() == relative.label()  # the same folder, however it is written
        names.append(per_image_slug("table3", experiments.IHARMONY4, "colour_transfer", absolute))
    assert names[0] == names[1] and names[0].startswith("table3_iHarmony4_colour_transfer_folder-")
    other = experiments.Arm("folder", folder="results/mini/predictions/HumanHarmony-colour_transfer")
    assert other.label() != experiments.Arm("folder", folder=str(folder)).label()
    # a folder outside the home (not part of any clone) keeps its absolute path
    outside = experiments.Arm("folder", folder=str(tmp_path / "elsewhere"))
    assert outside.label() == "folder-" + short_hash(str(tmp_path / "elsewhere"))[:8]


def _weights_keys(tmp_path, monkeypatch, clone, unet_kind, vae_path, weights=b"w0", config_hash="c0", seed=0):
    """(unet_key, vae_key) of an Experiment in the clone ``tmp_path / clone``, whose assembly reports a
    UNet (an ``adopted`` folder, or a trained ``run``) and a base VAE (``vae_path`` a folder relative
    to the home, as the paper profile writes it, or None: random init) as assemble_components does."""
    import os

    from harmonylib import assemble
    from harmonylib.assemble_parts import _tree_stamp
    from harmonylib.experiments import trained
    from harmonylib.training.runs import TrainedRun

    home = tmp_path / clone
    monkeypatch.setenv("HARMONYLIB_HOME", str(home))
    for folder in (home / "checkpoints" / "unet", home / "checkpoints" / "vae"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")
        (folder / "diffusion_pytorch_model.safetensors").write_bytes(weights)
        for f in folder.iterdir():  # a fresh checkout: new file times, the same bytes
            os.utime(f, ns=(len(clone) * 10**18, len(clone) * 10**18))
    if unet_kind == "adopted":
        folder = home / "checkpoints" / "unet"
        unet = {"kind": "adopted", "path": str(folder), "files": _tree_stamp(folder)}
    else:
        run = TrainedRun(
            home / "results" / "smoke" / "runs" / "unet-forward", "unet", "completed", config_hash, 2, 0.5
        )
        unet = assemble._run_source(run)
    vae = {"kind": "base", "path": vae_path, "arch": "tiny"}
    asm = assemble.Assembly({}, {"unet": unet, "vae": vae})
    monkeypatch.setattr(assemble, "assemble_components", lambda *a, **k: asm)
    cfg = load_config("smoke", {"seed": seed})
    exp = experiments.Experiment(cfg, home / "results" / "smoke", home / "data", [], None, False)
    return trained.unet_key(exp), trained.vae_key(exp)


@pytest.mark.parametrize("unet_kind", ["adopted", "run"])
@pytest.mark.parametrize("vae_path", ["checkpoints/vae", None])
def test_weights_keys_do_not_depend_on_where_the_clone_lies(tmp_path, monkeypatch, unet_kind, vae_path):
    """unet_key and vae_key (in every prediction and ceiling folder's name) name the weights, not
    the clone: the same in two homes (other paths, other file times), another for other weights."""

    def keys(clone, **kw):
        return _weights_keys(tmp_path, monkeypatch, clone, unet_kind, vae_path, **kw)

    a, b = keys("a"), keys("bb")
    assert a == b
    if unet_kind == "adopted":  # other bytes in the adopted folder: another UNet key
        assert keys("c", weights=b"w1")[0] != a[0]
    else:  # a run trained from another config: another UNet key
        assert keys("c", config_hash="c1")[0] != a[0]
    # another base VAE: other bytes in its folder, or another init seed of a random one
    other_vae = keys("d", weights=b"w1") if vae_path else keys("d", seed=1)
    assert other_vae[1] != a[1]


def test_spec_rejects_what_it_cannot_run():
    row = Row(("x",), "diffharmony")
    with pytest.raises(ValueError, match="cells 'rows'; allowed: subset, fg_bin, all"):
        ExperimentSpec(9, ("model",), "rows", (row,), "", "nb")
    with pytest.raises(ValueError, match="seeds 'some'"):
        ExperimentSpec(9, ("model",), "all", (Row(("x",), "diffharmony", seeds="some"),), "", "nb")
    with pytest.raises(ValueError, match=r"key \('x',\) does not fill \('params', 'init'\)"):
        ExperimentSpec(9, ("params", "init"), "all", (row,), "", "nb")
    with pytest.raises(ValueError, match="unknown baseline 'magic'"):
        ExperimentSpec(9, ("model",), "all", (Row(("x",), "folder", make="magic"),), "", "nb")
    with pytest.raises(ValueError, match="on_diverged 'skip'"):
        ExperimentSpec(9, ("model",), "all", (row,), "", "nb", on_diverged="skip")


def test_every_caption_template_is_filled():
    """Each spec's template names only fields the runner or the spec's notes give."""
    cfg = load_config("mini")
    fields = dict.fromkeys(("paper", "seeds", "size_note", "data_note", "base_seed", "diverged"), "F")
    specs = [
        experiments.table1_spec({"GIFT": "x"}),
        experiments.table1_spec(ceilings=False),
        experiments.table3_spec(cfg, 5, "hh", {"Human Harmony": "y"}, colour_transfer=False),
        experiments.table3_spec(cfg),
        experiments.table4_spec(cfg),
        experiments.table5_spec(),
    ]
    for spec in specs:
        text = spec.caption.format(**fields, **spec.notes)
        assert text.startswith("F ") and "{" not in text, spec.table


def test_specs_as_data():
    cfg = load_config("mini")
    t1 = experiments.table1_spec({"GIFT": "preds/gift"}, ceilings=False)
    assert [r.name for r in t1.rows] == ["Composite", "DiffHarmony", "DiffHarmony++", "GIFT"]
    assert [r.claim_arm for r in t1.rows] == ["Composite", "DiffHarmony", "DiffHarmony++", None]
    assert [r.name for r in experiments.table1_spec().rows][-2:] == ["VAE ceiling", "Harmony-VAE ceiling"]
    t4 = experiments.table4_spec(cfg, refine=False)
    assert [r.name for r in t4.rows] == ["512/plain", "512/harmony_vae", "1024/plain", "1024/harmony_vae"]
    assert {r.seeds for r in experiments.table4_spec(cfg).rows if r.refine} == {"base"}
    assert [r.claim_arm for r in t4.rows] == [
        "low/plain",
        "low/harmony_vae",
        "high/plain",
        "high/harmony_vae",
    ]
    t3 = experiments.table3_spec(cfg, baseline_predictions={"Human Harmony": "preds/hdnet"})
    hh = [r for r in t3.rows if r.dataset == "Human Harmony"]
    assert [(r.name, r.method, r.claim_arm) for r in hh] == [
        ("DiffHarmony++", "diffharmony++", None),  # no pixel baseline there: no claims pair
        ("HDNet_512", "folder", None),
        ("colour_transfer", "folder", None),
    ]
    ih = [r for r in t3.rows if r.dataset == "iHarmony4"]
    assert [r.claim_arm for r in ih] == ["DiffHarmony++", "PixelHarmonizer", None]
    t5 = experiments.table5_spec()
    assert [(r.key, r.variant, r.level) for r in t5.rows][0] == (("E_c", "zero"), "ec_zero", "low")


def test_table1_seed_means_claims_order_and_summary(fake):
    res = runner.run_table(fake.exp, experiments.table1_spec(ceilings=False), seeds=[3, 4])
    # Composite once (no seed), each diffusion arm at both seeds
    assert [(n, a.seed) for _, n, a in fake.calls] == [
        ("Composite", 0), ("DiffHarmony", 3), ("DiffHarmony", 4), ("DiffHarmony++", 3), ("DiffHarmony++", 4),
    ]  # fmt: skip
    # the claims' rows: seedless first, then by seed (each seed's plain/Harmony-VAE pair together)
    m = pd.read_csv(res.measurements)
    order = list(dict.fromkeys(zip(m["arm"], m["seed"].fillna(-1).astype(int), strict=True)))
    assert order == [("Composite", -1), ("DiffHarmony", 3), ("DiffHarmony++", 3), ("DiffHarmony", 4),
                     ("DiffHarmony++", 4)]  # fmt: skip
    assert set(m.loc[m["arm"] == "Composite", "seed_kind"]) == {"none"}
    # a cell is the mean over the seeds
    plus = [_value(a) for _, n, a in fake.calls if n == "DiffHarmony++"]
    assert res.summary["DiffHarmony++"]["mse"] == pytest.approx(np.mean(plus))
    df = tables.read_table(res.paths["csv"])
    cell = df[(df["model"] == "DiffHarmony++") & (df["subset"] == "All") & (df["metric"] == "MSE")]
    assert cell["measured"].iloc[0] == pytest.approx(np.mean(plus))
    assert "mean over 2 training seeds (3, 4)" in res.caption and "{" not in res.caption
    assert (fake.exp.out / "claims.md").is_file()


def test_table5_diverged_seed_is_nan_and_counted(fake):
    fake.diverge.update({("ec_random", 3), ("ec_random", 4), ("ecd_random", 4)})
    res = runner.run_table(fake.exp, experiments.table5_spec(), seeds=[3, 4])
    assert res.summary["E_c/random"]["n_diverged"] == 2 and np.isnan(res.summary["E_c/random"]["psnr"])
    assert res.summary["E_c+D/random"]["n_diverged"] == 1
    only = _value(experiments.Arm("diffharmony++", "low", 3, "ecd_random"))
    assert res.summary["E_c+D/random"]["mse"] == pytest.approx(only)  # the mean of the others
    assert "Diverged runs" in res.caption and "E_c/random: seeds [3, 4]" in res.caption
    m = pd.read_csv(res.measurements)
    assert m[(m["arm"] == "E_c/random")]["value"].isna().all() and len(m[m["arm"] == "E_c/random"]) == 6
    assert list(dict.fromkeys(m["arm"])) == ["E_c/zero", "E_c/random", "E_c+D/zero", "E_c+D/random"]  # by row


def test_table1_diverged_run_is_an_error(fake):
    fake.diverge.add(("ecd_zero", 3))
    with pytest.raises(experiments.DivergedRun, match="diverged"):
        runner.run_table(fake.exp, experiments.table1_spec(ceilings=False), seeds=[3])


def test_table3_datasets_bins_and_clusters(fake, monkeypatch):
    hh = [SimpleNamespace(name=f"h{i}", real_id=f"hr{i}", subset="HumanHarmony") for i in range(6)]
    made = []
    monkeypatch.setattr(
        runner, "_baselines", lambda: {"colour_transfer": lambda s, f: made.append((len(s), f))}
    )
    spec = experiments.table3_spec(fake.exp.cfg, len(hh))
    res = runner.run_table(fake.exp, spec, seeds=[0], datasets={"Human Harmony": hh})
    assert set(res.summary) == {"iHarmony4", "Human Harmony"}
    assert set(res.summary["Human Harmony"]) == {"DiffHarmony++", "HDNet_512", "colour_transfer"}
    assert [n for n, _ in made] == [8, 6]  # the baseline folder written per dataset before scoring
    df = tables.read_table(res.paths["csv"])
    stand_in = df[(df["model"] == "HDNet_512") & df["measured"].notna()]
    assert set(stand_in["stand_in"]) == {"PixelHarmonizer"}
    n = df[(df["model"] == "N_samples") & (df["dataset"] == "Human Harmony")]
    assert n["measured"].sum() == len(hh)
    pim = pd.read_csv(fake.exp.out / "claims" / "per_image" / "table3.csv")
    hh_rows = pim[pim["arm"].str.startswith("Human Harmony/")]
    assert set(hh_rows["cluster_kind"]) == {"real image"}
    assert set(hh_rows["cluster"]) <= {x.real_id for x in hh}
    assert "on the built Human Harmony test split (6 pairs" in res.caption

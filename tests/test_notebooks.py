"""Committed notebooks are sources: stripped, one `parameters` cell, thin; each runs on smoke."""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"00_data.ipynb", "04_table1.ipynb"} <= names


def test_make_reproduce_runs_every_notebook_but_the_pretraining_one():
    """The Makefile's NB_ORDER (what `make reproduce` runs) names every notebook except 12."""
    import re

    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    order = re.search(r"^NB_ORDER = (.*)$", text, re.M).group(1).split()
    assert len(order) == len(set(order))
    assert set(order) == {p.stem for p in NOTEBOOKS} - {"12_pretrain_mini"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_and_parameterised(path):
    nb = json.loads(path.read_text())
    cells = _code_cells(nb)
    assert all(not c.get("outputs") for c in cells), "committed notebook holds outputs"
    assert all(c.get("execution_count") is None for c in cells), "execution counts not stripped"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "want exactly one cell tagged 'parameters'"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    # the parameters cell holds lower-case literal assignments only
    tree = ast.parse("".join(tagged[0]["source"]))
    names = []
    for node in tree.body:
        assert isinstance(node, ast.Assign), "parameters cell may only assign literals"
        ast.literal_eval(node.value)
        names += [t.id for t in node.targets]
    assert names and all(n == n.lower() for n in names)
    assert "profile" in names and "seed" in names
    # thin notebooks: no def or class
    for c in cells:
        for node in ast.walk(ast.parse("".join(c["source"]))):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)), (
                "def/class belongs in harmonylib"
            )
    assert nb["cells"][0]["cell_type"] == "markdown" and nb["cells"][0]["source"][0].startswith("# ")


# ---------------------------------------------------------------------------------------------
# Smoke runs: every notebook executes under papermill with profile=smoke.

SMOKE_OUTPUTS = {
    # notebook -> files (relative to out_dir) that the smoke run must write
    "00_data.ipynb": ["figures/00_data_fg_ratio.png", "figures/00_data_samples.png"],
    "01_train_harmony_vae.ipynb": [
        "runs/harmony_vae-forward-ecd_zero/DONE",
        "figures/01_harmony_vae-forward-ecd_zero_loss.png",
        "figures/01_harmony_vae-forward-ecd_zero_reconstructions.png",
        "tables/01_harmony_vae-forward-ecd_zero_psnr.csv",
    ],
    "02_train_inverse_model.ipynb": [
        "runs/unet-inverse/DONE",
        "figures/02_unet-inverse_loss.png",
        "figures/02_unet-inverse_samples.png",
        "tables/02_unet-inverse_samples.csv",
    ],
    "03_train_classifier.ipynb": [
        "runs/classifier/DONE",
        "figures/03_classifier_loss.png",
        "figures/03_classifier_examples.png",
    ],
    "04_table1.ipynb": [
        "tables/table1.csv",
        "tables/table1.md",
        "tables/table1.tex",
        "tables/table1.provenance.json",
        "claims.md",
        "claims_measurements.csv",
        "claims/table1.csv",
        "figures/04_table1_psnr.png",
        "figures/04_table1_psnr.csv",
        "figures/figure3_grid.png",
    ],
    "06_table3.ipynb": [
        "tables/table3.csv",
        "tables/table3.md",
        "tables/table3.tex",
        "tables/table3.provenance.json",
        "claims/table3.csv",
    ],
    "07_table4.ipynb": [
        "tables/table4.csv",
        "tables/table4.md",
        "tables/table4.tex",
        "tables/table4.provenance.json",
        "claims/table4.csv",
    ],
    "08_table5.ipynb": [
        "tables/table5.csv",
        "tables/table5.md",
        "tables/table5.tex",
        "tables/table5.provenance.json",
        "claims/table5.csv",
    ],
    "09_figure2.ipynb": [
        "figures/figure2_fg_ratio_cdf.png",
        "figures/figure2_fg_ratio_cdf.pdf",
        "figures/figure2_fg_ratio_cdf.csv",
        "figures/figure2_fg_ratio_cdf_shares.csv",
    ],
    "10_inference.ipynb": [
        "figures/10_inference.png",
        "figures/10_inference_diffharmony.png",
        "figures/10_inference_diffharmony_pp.png",
        "figures/figure3_grid.png",
        "figures/figure3_grid.pdf",
    ],
    "05_table2.ipynb": [
        "tables/table2.csv",
        "tables/table2.md",
        "tables/table2.tex",
        "tables/table2.provenance.json",
        "tables/per_image/table2_Hday2night_base_seed0.csv",
        "tables/per_image/table2_Hday2night_augmented_seed0.csv",
        "tables/per_image/table2_HFlickr_base_seed0.csv",
        "tables/per_image/table2_HFlickr_augmented_seed0.csv",
    ],
    "11_build_human_harmony.ipynb": [
        "data/HumanHarmony/IHD_train.txt",
        "data/HumanHarmony/IHD_test.txt",
        "data/HumanHarmony/HUMAN_HARMONY.json",
        "data/HumanHarmony/human_harmony_fg_ratio_stats.csv",
        "data/HumanHarmony/human_harmony_fg_ratios.csv",
        "data/HumanHarmony/BUILD_DONE.json",
    ],
}


def _run(nb_path, out_nb, **params):
    import papermill as pm

    return pm.execute_notebook(
        str(nb_path),
        str(out_nb),
        parameters=params,
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_smoke_run(path, tmp_path, smoke_data_root):
    out_dir = tmp_path / "results"
    _run(path, tmp_path / path.name, profile="smoke", data_root=str(smoke_data_root), out_dir=str(out_dir))
    for rel in SMOKE_OUTPUTS.get(path.name, []):
        assert (out_dir / rel).is_file(), f"{path.name} did not write {rel}"


@pytest.mark.notebook
def test_papermill_unknown_profile_fails_loudly(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="unknown profile 'nonsense'"):
        _run(ROOT / "notebooks" / "04_table1.ipynb", tmp_path / "out.ipynb", profile="nonsense")

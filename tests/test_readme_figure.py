"""The README's figure (harmonylib.readme_figure) from made-up Table 1 prediction folders.

The smoke dataset's test split stands in for Table 1's; DiffHarmony's folder holds black images
(a prediction whose background is wrong everywhere) and DiffHarmony++'s the real images, so what
"as scored" means can be checked pixel for pixel.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harmonylib import readme_figure
from harmonylib.config import load_config
from harmonylib.data.iharmony4 import read_split


@pytest.fixture()
def table1_results(tmp_path, smoke_data_root):
    """A results root with Table 1's three per-image CSVs at seed 0 and the two prediction folders."""
    samples = read_split(smoke_data_root, "test")
    res = tmp_path / "results"
    per_image = res / "tables" / "per_image"
    per_image.mkdir(parents=True)
    folders = {"diffharmony": tmp_path / "pred_dh", "diffharmony_pp": tmp_path / "pred_dhpp"}
    for f in folders.values():
        f.mkdir()
    for s in samples:
        size = Image.open(s.real).size
        Image.new("RGB", size).save(folders["diffharmony"] / f"{s.name}.png")
        shutil.copy(s.real, folders["diffharmony_pp"] / f"{s.name}.png")
    paths = readme_figure.per_image_files(res, 0)
    for i, (key, path) in enumerate(paths.items()):
        pd.DataFrame(
            {
                "image": [s.name for s in samples],
                "subset": [s.subset for s in samples],
                "fg_ratio": np.linspace(0.01, 0.5, len(samples)),
                "psnr": 30.0 + i,
                "fmse": 100.0 * (i + 1),
                "missing": False,
                "predictions": "<composites>" if key == "composite" else str(folders[key]),
            }
        ).to_csv(path, index=False)
    return res, samples


def test_rows_show_every_image_as_scored(table1_results):
    res, samples = table1_results
    csvs = readme_figure.per_image_files(res, 0)
    scores = {k: readme_figure.read_scores(p) for k, p in csvs.items()}
    names = readme_figure.pick_images(scores, 3, seed=0)
    assert len(names) == 3 and names == sorted(names)
    assert names == readme_figure.pick_images(scores, 3, seed=0)  # seeded
    rows, record = readme_figure.grid_rows(samples, scores, names, csvs, load_config("smoke").eval)
    for row in rows:
        real, black = np.asarray(row["real"]), np.asarray(row["diffharmony"])
        assert real.shape == (256, 256, 3)
        np.testing.assert_array_equal(np.asarray(row["diffharmony_pp"]), real)  # the real image, pasted
        bg = (black == real).all(axis=2)  # the pasted background equals the real one exactly
        fg = (black == 0).all(axis=2) & ~(real == 0).all(axis=2)
        assert bg.any() and fg.any() and not (bg & fg).any()
        assert "PSNR comp 30.0, DH 31.0, DH++ 32.0" in row["label"]
    assert len(record) == 3 * 4 and set(record["column"]) == {
        "composite",
        "diffharmony",
        "diffharmony_pp",
        "real",
    }
    assert record.loc[record["column"] == "diffharmony_pp", "psnr"].eq(32.0).all()


def test_make_readme_grid_writes_png_and_csv(table1_results, smoke_data_root):
    res, _ = table1_results
    out = readme_figure.make_readme_grid("smoke", res, smoke_data_root, n=2, seed=0)
    assert out == res / "figures" / "readme_grid.png" and Image.open(out).size[0] > 100
    assert pd.read_csv(out.with_suffix(".csv"))["image"].nunique() == 2


def test_missing_table1_is_named(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="table1_iHarmony4_Composite_composite.csv: missing"):
        readme_figure.make_readme_grid("smoke", tmp_path, tmp_path, n=2)
    with pytest.raises(SystemExit) as exc:
        readme_figure.main(["--profile", "smoke", "--results", str(tmp_path), "--data-root", str(tmp_path)])
    assert exc.value.code == 2 and "make table1" in capsys.readouterr().err


def test_missing_prediction_file_is_named(table1_results):
    res, samples = table1_results
    csvs = readme_figure.per_image_files(res, 0)
    scores = {k: readme_figure.read_scores(p) for k, p in csvs.items()}
    folder = readme_figure._folder(scores["diffharmony"], "diffharmony", csvs["diffharmony"])
    (folder / f"{samples[0].name}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"{samples[0].name}.png: the diffharmony image"):
        readme_figure.grid_rows(samples, scores, [samples[0].name], csvs, load_config("smoke").eval)

"""Plots of written tables: measured beside the paper, from small synthetic table CSVs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from harmonylib import plots, tables
from harmonylib.config import load_config


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _table1_csv(tmp_path):
    rows = [
        {"subset": s, "model": m, "metric": "PSNR", "value": v}
        for s, base in (
            ("HCOCO", 30.0),
            ("HAdobe5k", 31.0),
            ("HFlickr", 28.0),
            ("Hday2night", 29.0),
            ("All", 30.5),
        )
        for m, v in (("Composite", base), ("DiffHarmony++", base + 1.0))
    ]
    df = tables.render_table(pd.DataFrame(rows), 1)
    return tables.write_table(df, 1, tmp_path / "tables", config={}, seeds={})["csv"]


def _table3_csv(tmp_path):
    rows = []
    for b, v in (("0-5%", 300.0), ("5-15%", 200.0), ("15-100%", 100.0)):
        rows.append(
            {"dataset": "iHarmony4", "fg_bin": b, "model": "DiffHarmony++", "metric": "fMSE", "value": v}
        )
        rows.append({"dataset": "iHarmony4", "fg_bin": b, "model": "HDNet_512", "metric": "fMSE",
                     "value": v / 2, "stand_in": "PixelHarmonizer"})  # fmt: skip
    df = tables.render_table(pd.DataFrame(rows), 3)
    return tables.write_table(df, 3, tmp_path / "tables", config={}, seeds={})["csv"]


def test_table1_psnr_bars_measured_beside_paper(tmp_path):
    out = tmp_path / "figures" / "psnr"
    fig = plots.table1_psnr(_table1_csv(tmp_path), out, title="mini profile, built-in data (not iHarmony4)")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "iHarmony4 subset" and ax.get_ylabel() == "PSNR (dB)"
    assert "built-in data" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "HCOCO",
        "HAdobe5k",
        "HFlickr",
        "Hday2night",
        "All",
    ]
    # 3 models x (measured, paper) x 5 subsets; DiffHarmony was not measured: no measured bars
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 3 * 2 * 5
    assert 31.5 in heights and 41.66 in heights  # DiffHarmony++ All: measured 31.5, paper 41.66
    assert out.with_suffix(".png").is_file()
    data = pd.read_csv(out.with_suffix(".csv"))
    assert list(data.columns) == ["subset", "model", "measured", "reported"] and len(data) == 15
    row = data[(data["subset"] == "All") & (data["model"] == "DiffHarmony++")].iloc[0]
    assert (row["measured"], row["reported"]) == (31.5, 41.66)


def test_table3_fmse_names_the_stand_in(tmp_path):
    out = tmp_path / "fmse"
    fig = plots.table3_fmse(_table3_csv(tmp_path), out)
    assert len(fig.axes) == 2  # iHarmony4 and Human Harmony (the paper's values alone)
    ax = fig.axes[0]
    assert (
        ax.get_title() == "iHarmony4" and ax.get_xlabel() == "foreground ratio" and ax.get_ylabel() == "fMSE"
    )
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "HDNet_512 (stand-in: PixelHarmonizer): measured" in labels
    assert "DiffHarmony++: measured" in labels
    heights = [p.get_height() for p in ax.patches]
    assert 150.0 in heights and 136.67 in heights  # stand-in measured at 0-5%; paper DiffHarmony++ at 15-100%
    assert np.isnan(fig.axes[1].patches[0].get_height())  # Human Harmony not measured
    data = pd.read_csv(out.with_suffix(".csv"))
    assert set(data["fg_bin"]) == {"0-5%", "5-15%", "15-100%"} and out.with_suffix(".png").is_file()


def test_plots_reject_the_wrong_table(tmp_path):
    with pytest.raises(ValueError, match="expected Table 3"):
        plots.table3_fmse(_table1_csv(tmp_path))
    with pytest.raises(ValueError, match="none of the models"):
        plots.table1_psnr(_table1_csv(tmp_path), models=("GIFT-x",))


def test_data_title_says_built_in():
    assert "built-in data" in plots.data_title(load_config("mini"))
    assert plots.data_title(load_config("paper")) == "paper profile, iHarmony4"

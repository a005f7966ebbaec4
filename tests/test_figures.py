"""Figure 2 (foreground-ratio CDF) and the qualitative comparison grid write re-renderable files."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harmonylib import figures


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _ratios():
    rng = np.random.default_rng(0)
    return {
        "iHarmony4": rng.beta(0.8, 8.0, 300),  # mostly small foregrounds
        "Human Harmony": rng.beta(4.0, 6.0, 200),  # mostly large ones
    }


def test_share_above_is_strict():
    r = np.array([0.1, 0.2, 0.2, 0.2000001, 0.9])
    assert figures.share_above(r, 0.2) == pytest.approx(2 / 5)
    assert np.isnan(figures.share_above(np.array([]), 0.2))


def test_cdf_points_handle_ties():
    x, f = figures.fg_ratio_cdf_points(np.array([0.3, 0.1, 0.3, 0.5]))
    np.testing.assert_array_equal(x, [0.1, 0.3, 0.3, 0.5])
    np.testing.assert_allclose(f, [0.25, 0.75, 0.75, 1.0])


def test_fg_ratio_cdf_writes_files_and_shares(tmp_path):
    ratios = _ratios()
    out = tmp_path / "figures" / figures.FIGURE2_STEM
    fig, shares = figures.plot_fg_ratio_cdf(ratios, out, provenance={"seed": 0})
    assert isinstance(fig, plt.Figure)
    for suffix in (".png", ".pdf", ".csv", ".provenance.json"):
        path = out.with_suffix(suffix)
        assert path.is_file() and path.stat().st_size > 0, suffix
    assert out.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"
    for name, r in ratios.items():
        assert shares[name] == pytest.approx(np.mean(r > 0.2))
    assert shares["Human Harmony"] > 0.5 > 0.15 > shares["iHarmony4"]

    table = pd.read_csv(tmp_path / "figures" / f"{figures.FIGURE2_STEM}_shares.csv")
    assert list(table["dataset"]) == list(ratios)
    np.testing.assert_allclose(table["share_above"], [shares[k] for k in ratios])
    assert set(table["paper"]) == {"about 70%", "under 15%"}

    # The CSV holds every ratio with its CDF value, and re-renders to the same shares.
    cdf = pd.read_csv(out.with_suffix(".csv"))
    assert list(cdf.columns) == ["dataset", "fg_ratio", "cdf"]
    assert len(cdf) == sum(len(r) for r in ratios.values())
    last = cdf.groupby("dataset", sort=False)["cdf"].max()
    np.testing.assert_allclose(last.to_numpy(), 1.0)
    back = figures.read_fg_ratio_csv(out.with_suffix(".csv"))
    assert list(back) == list(ratios)
    for name in ratios:
        np.testing.assert_allclose(back[name], np.sort(ratios[name]))
    _, shares2 = figures.plot_fg_ratio_cdf(back, tmp_path / "again")
    assert shares2 == shares


def test_fg_ratio_cdf_other_threshold_without_files():
    fig, shares = figures.plot_fg_ratio_cdf({"a": np.array([0.0, 0.5, 1.0])}, annotate_threshold=0.5)
    assert shares == {"a": pytest.approx(1 / 3)}
    with pytest.raises(ValueError):
        figures.plot_fg_ratio_cdf({})


def test_comparison_grid_from_images_and_paths(tmp_path):
    rng = np.random.default_rng(1)

    def rgb(h, w):
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

    mask = Image.fromarray(np.where(rng.random((30, 40)) > 0.5, 255, 0).astype(np.uint8), "L")
    real_path = tmp_path / "real.png"
    rgb(30, 40).save(real_path)
    rows = [
        {
            "name": "c1_1_1",
            "composite": rgb(30, 40),
            "mask": mask,
            "diffharmony": rgb(16, 16),  # a prediction at another resolution
            "diffharmony_pp": rgb(16, 16),
            "real": real_path,
        }
    ] * 2
    out = tmp_path / "figure4_grid"
    fig = figures.plot_comparison_grid(rows, out, size=64)
    assert len(fig.axes) == 2 * 5
    assert [ax.get_title() for ax in fig.axes[:5]] == [t for _, t in figures.COMPARISON_COLUMNS]
    for suffix in (".png", ".pdf", ".csv"):
        assert out.with_suffix(suffix).is_file()
    src = pd.read_csv(out.with_suffix(".csv"))
    assert len(src) == 10 and set(src.loc[src["column"] == "real", "source"]) == {str(real_path)}
    with pytest.raises(ValueError, match="lacks"):
        figures.plot_comparison_grid([{"name": "x", "composite": rgb(8, 8)}])


def test_grid_shows_predictions_as_scored(tmp_path):
    """With the protocol, a prediction's background is the ground truth's, pasted by the evaluator."""
    from harmonylib.config import EvalConfig
    from harmonylib.metrics import evaluation_mask, prepare_protocol_arrays, resize_rgb

    rng = np.random.default_rng(3)
    real = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    m = np.zeros((40, 60), np.uint8)
    m[10:30, 20:45] = 255
    mask = Image.fromarray(m, "L")
    pred = Image.fromarray(np.full((64, 64, 3), 7, np.uint8))  # wrong everywhere, at another size
    row = {"name": "c1_1_1", "label": "HCOCO: a lake\nforeground 21%", "composite": real, "mask": mask,
           "diffharmony": pred, "diffharmony_pp": pred, "real": real}  # fmt: skip
    protocol = EvalConfig(resolution=32)
    shown = np.asarray(figures.scored_view("diffharmony", row, protocol))
    expected, gt, fg = prepare_protocol_arrays(pred, real, mask, real, resolution=32)
    assert np.array_equal(shown, expected)
    assert np.array_equal(shown[~fg], gt[~fg]) and (shown[fg] == 7).all()  # pasted exactly as scored
    assert np.array_equal(np.asarray(figures.scored_view("real", row, protocol)), resize_rgb(real, 32))
    assert np.array_equal(
        np.asarray(figures.scored_view("mask", row, protocol)) > 0, evaluation_mask(mask, 32)
    )

    fig = figures.plot_comparison_grid(
        [row], tmp_path / "g", size=32, protocol=protocol, title="built-in data"
    )
    pp = fig.axes[3].get_images()[0].get_array()
    assert np.array_equal(np.asarray(pp), expected)
    assert fig.axes[0].get_ylabel() == row["label"]  # words, not the file id
    assert fig._suptitle.get_text() == "built-in data"
    # without the protocol the file is shown as it is (no paste)
    raw = figures.plot_comparison_grid([row], size=32)
    assert (np.asarray(raw.axes[3].get_images()[0].get_array()) == 7).all()
    with pytest.raises(ValueError, match="needs 'real'"):
        figures.scored_view("diffharmony", {"name": "x", "mask": mask, "diffharmony": pred}, protocol)


def test_readable_label():
    assert figures.readable_label("HCOCO", 0.234, "lomiri_picosdeeuropa", "white_balance") == (
        "HCOCO: lomiri picosdeeuropa\nwhite balance, foreground 23%"
    )
    assert figures.readable_label("HFlickr", 0.05) == "HFlickr\nforeground 5%"

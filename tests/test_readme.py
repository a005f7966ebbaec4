"""The README's results block and the results page (harmonylib.readme, harmonylib.results_page).

Tables and claims files are written here by the real writers (``tables.write_table``) or in the
columns ``harmonylib.claims`` writes, with made-up numbers, so every test runs in about a second.
"""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image

from harmonylib import readme, results_page, tables


def _write_table1(res, rows):
    """``rows``: (subset, model, PSNR, MSE, fMSE); written as results/tables/table1.*."""
    meas = pd.DataFrame(
        [
            {"subset": s, "model": m, "metric": k, "value": v}
            for s, m, *vals in rows
            for k, v in zip(("PSNR", "MSE", "fMSE"), vals, strict=True)
        ]
    )
    tables.write_table(tables.render_table(meas, 1), 1, res / "tables", caption="test caption")


def _claims(**overrides):
    row = {
        "claim": "2", "statement": "Harmony-VAE helps | PSNR", "source": "Table 4", "metric": "PSNR",
        "n_seeds": 3, "mean": 0.05, "se": 0.01, "verdict": "HOLDS", "paper_effect": 1.31,
        "effect": 0.05, "effect_ratio": 0.05 / 1.31, "paper_text": "+1.31 (…)",
    }  # fmt: skip
    return row | overrides


def test_block_and_page_say_what_is_missing(tmp_path):
    block = readme.results_block("smoke", tmp_path)
    assert "No Table 1 yet: run `make table1 PROFILE=smoke`" in block
    assert "No claims yet" in block and "No figure yet" in block and "readme_figure" in block
    assert "none written yet" in block
    page = results_page.results_page("smoke", tmp_path)
    assert "No tables yet" in page and "04_table1" in page and "08_table5" in page
    assert "`python -m harmonylib.readme_figure --profile smoke`" in page


def test_table1_compact_one_row_per_measured_method_all_only(tmp_path):
    _write_table1(
        tmp_path,
        [
            ("All", "Composite", 34.0, 60.0, 600.0),
            ("HCOCO", "Composite", 35.5, 40.0, 500.0),
            ("All", "DiffHarmony++", 30.5, 90.25, 2000.0),
            ("All", "VAE ceiling", 40.0, 10.0, 200.0),
        ],
    )
    block = readme.results_block("smoke", tmp_path)
    assert "| method | PSNR ↑ | paper | MSE ↓ | paper | fMSE ↓ | paper |" in block
    assert "| Composite | 34.00 | 34.35 | 60.00 | 59.67 | 600.00 | 594.67 |" in block
    assert "| DiffHarmony++ | 30.50 | 41.66 | 90.25 | 13.98 | 2000.00 | 153.98 |" in block
    assert "| VAE ceiling | 40.00 | – | 10.00 | – | 200.00 | – |" in block
    assert "DoveNet" not in block and "35.50" not in block  # unmeasured methods, other subsets
    assert "by construction" in block and "not a finding.\n\nThe ceilings (not in the paper)" in block
    assert "[Table 1](" in block and "tables/table1.md" in block
    page = results_page.results_page("smoke", tmp_path)
    assert "| Table 1 | HCOCO / Composite | PSNR | 35.50 | 35.47 | +0.03 |" in page


def test_stand_in_named_from_the_column_or_table3s_hdnet_row():
    assert results_page.stand_in_note(pd.Series({"table": 3, "model": "HDNet_512", "stand_in": "X"})) == (
        " (measured with X)"
    )
    assert "PixelHarmonizer" in results_page.stand_in_note(pd.Series({"table": 3, "model": "HDNet_512"}))
    assert results_page.stand_in_note(pd.Series({"table": 1, "model": "Composite", "stand_in": ""})) == ""


def test_claims_one_line_each_with_the_papers_effect_ours_and_the_ratio(tmp_path):
    pd.DataFrame(
        [
            _claims(),
            _claims(claim="6a", verdict="NOT MEASURED", effect=float("nan"), effect_ratio=float("nan")),
            _claims(claim="8", verdict="BY CONSTRUCTION (no verdict)", paper_effect=float("nan"),
                    paper_text="about 70 % above 0.2", effect=0.7),
        ]
    ).to_csv(tmp_path / "claims.csv", index=False)  # fmt: skip
    block = readme.results_block("smoke", tmp_path)
    assert "| 2 | Harmony-VAE helps \\| PSNR | +1.31 | +0.05 | ×0.038 | **HOLDS** |" in block
    assert "| 6a | Harmony-VAE helps \\| PSNR | +1.31 | — | — | **NOT MEASURED** |" in block
    # a claim with no verdict shows no effect of ours even when one is in the file
    assert "| 8 | Harmony-VAE helps \\| PSNR | about 70 % above 0.2 | — | — |" in block
    assert "3 claims: HOLDS 1, NOT MEASURED 1, BY CONSTRUCTION (no verdict) 1." in block
    assert "| 2 | Harmony-VAE helps | PSNR | 3 | +0.05 ± 0.01 | HOLDS |" in results_page.results_page(
        "smoke", tmp_path
    )


def test_claims_file_without_effect_columns_falls_back_to_mean(tmp_path):
    old = _claims(paper=1.0)
    for k in ("paper_effect", "effect", "effect_ratio"):
        old.pop(k)
    pd.DataFrame([old]).to_csv(tmp_path / "claims.csv", index=False)
    assert "| +1.00 | +0.05 | ×0.05 | **HOLDS** |" in readme.results_block("smoke", tmp_path)


def test_no_stats_verdicts_are_the_claims_packages():
    from harmonylib.claims.schema import BY_CONSTRUCTION, NOT_MEASURED

    assert set(readme.NO_STATS) == {NOT_MEASURED, BY_CONSTRUCTION}


def test_figure_embedded_when_it_exists(tmp_path):
    fig = tmp_path / "figures"
    fig.mkdir()
    Image.new("RGB", (4, 4)).save(fig / "readme_grid.png")
    pd.DataFrame({"image": ["a", "a", "b", "b"], "column": ["composite", "real"] * 2}).to_csv(
        fig / "readme_grid.csv", index=False
    )
    block = readme.results_block("smoke", tmp_path)
    assert f"]({tmp_path.as_posix()}/figures/readme_grid.png)" in block and "on 2 test images" in block
    assert "No figure yet" not in block


def test_main_writes_block_and_page_and_checks_both(tmp_path, capsys):
    doc = tmp_path / "README.md"
    doc.write_text("# T\n<!-- results:start (generated) -->\nold\n<!-- results:end -->\n\n## After\nkeep\n")
    res = tmp_path / "res"
    args = ["--profile", "smoke", "--results", str(res), "--readme", str(doc)]
    assert readme.main([*args, "--check"]) == 1
    assert readme.main(args) == 0
    text = doc.read_text()
    assert "old" not in text and text.endswith("<!-- results:end -->\n\n## After\nkeep\n")
    assert (res / "RESULTS.md").read_text() == results_page.results_page("smoke", res)
    assert readme.main([*args, "--check"]) == 0
    (res / "RESULTS.md").write_text("edited by hand\n")
    assert readme.main([*args, "--check"]) == 1
    assert "RESULTS.md" in capsys.readouterr().err
    assert not readme.update_readme(doc, readme.results_block("smoke", res))  # idempotent
    bad = tmp_path / "BAD.md"
    bad.write_text("no markers\n")
    with pytest.raises(ValueError, match="results:start"):
        readme.update_readme(bad, "x")

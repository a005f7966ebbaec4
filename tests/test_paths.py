"""Shipped files come from the package, generated ones from the home, whatever the current folder;
committed records hold paths relative to the home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import harmonylib
from harmonylib import assemble, paths
from harmonylib.config import load_config, to_dict
from harmonylib.provenance import provenance

PACKAGE = Path(harmonylib.__file__).resolve().parent


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A current folder outside any clone, with no HARMONYLIB_HOME."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    monkeypatch.chdir(d)
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    return d


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_home_is_the_env_var_else_the_clone_else_the_current_folder(elsewhere, tmp_path, monkeypatch):
    assert paths.project_root() == elsewhere.resolve()
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "harmonylib"\n')
    monkeypatch.chdir(clone / "notebooks")
    assert paths.project_root() == clone.resolve()
    assert paths.results_dir("mini", "runs") == clone.resolve() / "results" / "mini" / "runs"
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    assert paths.project_root() == (tmp_path / "home").resolve()
    assert paths.resolve("data/mini") == (tmp_path / "home").resolve() / "data" / "mini"


def test_shipped_files_resolve_from_any_folder(elsewhere):
    assert paths.package_path("profiles") == PACKAGE / "profiles"
    assert paths.resolve("harmonylib/weights/mini") == PACKAGE / "weights" / "mini"
    assert (
        paths.resolve("harmonylibx/a").parent == elsewhere.resolve() / "harmonylibx"
    )  # only the package name


def test_assemble_resolves_the_mini_profile_from_another_folder(elsewhere):
    cfg = load_config("mini")  # found through the package, not the current folder
    refs = [s for s in _strings(to_dict(cfg)) if s.startswith("harmonylib/")]
    assert refs, "the mini profile names committed weights"
    for ref in refs:
        assert paths.resolve(ref).exists(), ref
    # the forward UNet is the committed one, found from here (assembly's first question)
    assert assemble.adopted_unet_dir(cfg) == (PACKAGE / "weights" / "mini" / "unet").resolve()
    assert assemble.pipeline_dir(cfg) == elsewhere.resolve() / "results" / "mini" / "runs" / "pipeline"


def test_harmonize_default_is_the_committed_release_from_any_folder(tmp_path, monkeypatch, elsewhere):
    """No --pipeline: the mini release is found through the package, whatever the current folder
    and whatever the home; the user's own paths stay relative to where they are."""
    from harmonylib.cli import main

    Image.new("RGB", (32, 32), (120, 60, 30)).save(elsewhere / "c.png")
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    mask.save(elsewhere / "m.png")
    args = ["harmonize", "--image", "c.png", "--mask", "m.png", "--out", "o.png", "--steps", "1", "--quiet"]
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "empty_home"))
    assert main(args) == 0
    out = Image.open(elsewhere / "o.png")
    assert out.size == (32, 32)


def test_committed_records_hold_paths_relative_to_the_home(tmp_path, monkeypatch):
    home = tmp_path / "clone"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    outside = tmp_path / "external" / "iHarmony4"
    rec = provenance(
        config={"data": {"root": str(home / "data" / "mini"), "extra_roots": {"gen": str(outside)}}},
        run_dir=home / "results" / "mini" / "runs" / "table2-HFlickr-base",
        generation={"gen_root": str(home / "results" / "mini" / "table2" / "generated-x")},
        runs=[{"run_dir": str(home / "results" / "r")}],
        note="a sentence / with a slash",
    )
    text = json.dumps(rec, default=str)
    assert str(home) not in text
    assert rec["config"]["data"]["root"] == "data/mini"
    assert rec["run_dir"] == "results/mini/runs/table2-HFlickr-base"
    assert rec["generation"]["gen_root"] == "results/mini/table2/generated-x"
    assert rec["runs"] == [{"run_dir": "results/r"}]
    assert rec["config"]["data"]["extra_roots"]["gen"] == str(outside)  # not in the clone: kept whole
    assert rec["note"] == "a sentence / with a slash"


def test_grid_csv_sources_are_relative_to_the_home(tmp_path, monkeypatch):
    from harmonylib import figures

    home = tmp_path / "clone"
    monkeypatch.setenv(paths.HOME_ENV, str(home))
    src = home / "data" / "mini" / "c.png"
    src.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(src)
    figures.plot_comparison_grid(
        [{"name": "x", "composite": src}], home / "fig", columns=[("composite", "Composite")]
    )
    rows = (home / "fig.csv").read_text().splitlines()
    assert rows[1] == "x,composite,data/mini/c.png"


def test_committed_results_and_weights_name_no_machine_folder():
    """Committed text under results/ and the package's weights names no absolute folder of the
    machine that made it (a clone, a temporary folder, a home): a rerun elsewhere must leave an
    identical diff."""
    import re
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "results", "harmonylib/weights"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    machine = re.compile(r"(?<![\w.~-])/(?:work|tmp|home|root|Users|mnt|private)/[\w.-]")
    found = []
    for rel in tracked:
        if Path(rel).suffix not in {".csv", ".json", ".md", ".txt", ".tex", ".ipynb"}:
            continue
        for n, line in enumerate((root / rel).read_text(errors="ignore").splitlines(), 1):
            if machine.search(line):
                found.append(f"{rel}:{n}: {line.strip()[:120]}")
    assert not found, "absolute machine paths in committed files:\n" + "\n".join(found[:20])

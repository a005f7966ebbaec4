"""The vendored photo set: manifest against files, licences, splits, sizes, provenance."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import tomllib

from harmonylib.data import photo_set
from harmonylib.data.photo_set import (
    LICENSE_FILES,
    MANIFEST_COLUMNS,
    PACKAGE_SCENES,
    load_manifest,
    open_photo,
    parse_manifest,
    photo_root,
    scene_count,
    scenes,
    stamps,
    verify_assets,
)

ROOT = Path(str(photo_root()))
REPO = Path(__file__).resolve().parents[1]
# A phrase each licence text must contain, so a wrong file under the right name is caught.
_TITLES = {
    "GPL-2.0.txt": "GNU GENERAL PUBLIC LICENSE",
    "CC-BY-4.0.txt": "Attribution 4.0 International",
    "CC-BY-SA-3.0.txt": "Attribution-ShareAlike 3.0 Unported",
    "CC-BY-SA-4.0.txt": "Attribution-ShareAlike 4.0 International",
    "CC0-1.0.txt": "CC0 1.0 Universal",
}


def test_manifest_matches_files_exactly():
    assert verify_assets() == []
    on_disk = {p.relative_to(ROOT).as_posix() for d in ("scenes", "stamps") for p in (ROOT / d).iterdir()}
    assert on_disk == {e.file for e in load_manifest()}
    for e in load_manifest():
        assert hashlib.sha256((ROOT / e.file).read_bytes()).hexdigest() == e.sha256, e.file


def test_verify_assets_reports_tampering(tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(ROOT, root)
    first, second = scenes()[:2]
    (root / first.file).write_bytes(b"not the photo")
    (root / second.file).unlink()
    (root / "stamps" / "stray.png").write_bytes(b"")
    (root / "LICENSES" / "CC0-1.0.txt").unlink()
    problems = "\n".join(verify_assets(root))
    assert f"{first.file}: sha256 differs" in problems
    assert f"{second.file}: listed in MANIFEST.csv but missing" in problems
    assert "stamps/stray.png: present but not in MANIFEST.csv" in problems
    assert "LICENSES/CC0-1.0.txt" in problems


def _manifest_text(rows):
    lines = [",".join(MANIFEST_COLUMNS)] + [",".join(r) for r in rows]
    return "\n".join(lines) + "\n"


_GOOD = ["a", "scenes/a.jpg", "scene", "train", "pkg", "1", "/x.jpg", "me", "CC0-1.0", "0" * 64]


@pytest.mark.parametrize(
    ("col", "value", "message"),
    [
        (2, "photo", "kind 'photo'"),
        (3, "dev", "split 'dev'"),
        (8, "MIT", "licence 'MIT'"),
        (4, "plasma-workspace-wallpapers", "reserved as an outside test set"),
        (9, "abc", "sha256 'abc'"),
        (1, "stamps/a.jpg", "should be scenes/a.jpg"),
        (6, "", "column 'original_file' is empty"),
    ],
)
def test_parse_manifest_rejects_bad_values_naming_file_and_row(col, value, message):
    bad = list(_GOOD)
    bad[col] = value
    good2 = ["b", "scenes/b.jpg"] + _GOOD[2:]
    with pytest.raises(ValueError, match=r"^M\.csv: row 3: ") as err:
        parse_manifest(_manifest_text([good2, bad]), source="M.csv")
    assert message in str(err.value)


def test_parse_manifest_rejects_header_duplicates_and_stamp_splits():
    with pytest.raises(ValueError, match="M.csv: header"):
        parse_manifest("name,file\n", source="M.csv")
    with pytest.raises(ValueError, match=r"row 3: 'a' already used in row 2"):
        parse_manifest(_manifest_text([_GOOD, _GOOD]), source="M.csv")
    stamp = ["s", "stamps/s.png", "stamp", "test"] + _GOOD[4:]
    with pytest.raises(ValueError, match="stamps are train only"):
        parse_manifest(_manifest_text([stamp]), source="M.csv")
    assert parse_manifest(_manifest_text([_GOOD]))[0].licence == "CC0-1.0"


def test_every_licence_named_has_its_text():
    named = {e.licence for e in load_manifest()}
    assert named <= set(LICENSE_FILES)
    for lic in named:
        text = (ROOT / "LICENSES" / LICENSE_FILES[lic]).read_text(encoding="utf-8")
        assert _TITLES[LICENSE_FILES[lic]] in text, lic
    # attribution is recorded for every file
    assert all(e.author and e.original_file.startswith("/usr/share/") for e in load_manifest())


def test_splits_are_disjoint_and_large_enough():
    vendored = scenes()
    names = [e.name for e in vendored] + [s.name for s in PACKAGE_SCENES]
    assert len(names) == len(set(names))
    # one photo never sits in two splits under two names
    by_hash = {}
    for e in vendored:
        assert by_hash.setdefault(e.sha256, e.split) == e.split
    assert len(by_hash) == len(vendored)
    originals = [(e.source_package, e.original_file) for e in load_manifest()]
    assert len(originals) == len(set(originals))
    counts = scene_count()
    assert counts["all"] == len(names) >= 20
    assert counts["test"] >= 5 and counts["val"] >= 3
    # the vendored set alone also holds out enough whole photos
    assert len(scenes("test")) >= 5 and len(scenes("val")) >= 3
    assert {e.split for e in stamps()} == {"train"}
    with pytest.raises(ValueError, match="split 'dev'"):
        scenes("dev")


def test_total_size_within_budget():
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total <= photo_set.MAX_TOTAL_BYTES, f"{total / 1e6:.2f} MB"


def test_nothing_from_the_reserved_plasma_wallpapers():
    assert {e.source_package for e in load_manifest()}.isdisjoint(photo_set.FORBIDDEN_PACKAGES)
    assert not any("plasma" in e.original_file.lower() for e in load_manifest())


def test_open_photo_gives_rgb_scenes_and_rgba_stamps_at_their_sizes():
    for e in scenes():
        img = open_photo(e)
        assert img.mode == "RGB" and min(img.size) == photo_set.SCENE_SHORT_SIDE, e.name
    for e in stamps():
        img = open_photo(e)
        assert img.mode == "RGBA" and max(img.size) <= photo_set.STAMP_LONG_SIDE, e.name
        alpha = np.asarray(img.getchannel("A"))  # (h, w)
        assert alpha.max() == 255 and alpha.min() == 0, f"{e.name}: not a cut-out"


def test_assets_ship_in_the_wheel():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = cfg["tool"]["setuptools"]["package-data"]["harmonylib"]
    assert "assets/**/*" in patterns


def test_readme_lists_every_scene_with_its_split():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in photo_set.SPLITS and cells[1].startswith("`"):
            listed[cells[1].strip("`")] = cells[0]
    assert listed == {e.name: e.split for e in scenes()}


def test_builder_helpers_on_synthetic_input():
    from PIL import Image

    from harmonylib.data.photo_set_build import debian_licence_paragraph, shrink_scene, shrink_stamp

    dep5 = "Files: a.jpg\nLicense: X-1\n\nLicense: X-1\n Title line\n .\n Body\nLicense: Y\n"
    assert debian_licence_paragraph(dep5, "X-1") == "Title line\n\nBody\n"
    with pytest.raises(ValueError, match="'License: Z'"):
        debian_licence_paragraph(dep5, "Z")
    assert shrink_scene(Image.new("RGB", (1000, 800))).size == (480, 384)
    a = np.zeros((300, 600, 4), np.uint8)  # (h, w, RGBA)
    a[..., :3] = 200  # colour under transparent pixels must not survive
    a[100:200, 100:500] = (10, 20, 30, 255)  # a 400 x 100 opaque object
    out = np.asarray(shrink_stamp(Image.fromarray(a, "RGBA")))
    assert out.shape == (32, 128, 4) and out[..., 3].min() == 255  # cropped to the object
    b = a.copy()
    b[0, 0, 3] = 255  # widen the box: corners outside the object become transparent
    out = np.asarray(shrink_stamp(Image.fromarray(b, "RGBA")))
    assert (out[out[..., 3] == 0, :3] == 0).all()

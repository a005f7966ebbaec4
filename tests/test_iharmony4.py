"""The iHarmony4 reader: list styles, name -> path derivation, several roots, integrity errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonylib.cli import main as cli_main
from harmonylib.data.iharmony4 import (
    PUBLISHED_COUNTS,
    PUBLISHED_TOTALS,
    DataIntegrityError,
    count_report,
    derive_paths,
    find_list_style,
    read_list_entries,
    read_split,
    write_lists,
)


def _key(samples):
    return [(s.name, s.subset, s.composite, s.mask, s.real, s.root_name) for s in samples]


def test_published_counts_sum_to_totals():
    assert sum(v[0] for v in PUBLISHED_COUNTS.values()) == PUBLISHED_TOTALS[0] == 65742
    assert sum(v[1] for v in PUBLISHED_COUNTS.values()) == PUBLISHED_TOTALS[1] == 7404


@pytest.mark.parametrize(
    "comp, mask, real",
    [
        (
            "HCOCO/composite_images/c100300_1602094_1.jpg",
            "HCOCO/masks/c100300_1602094.png",
            "HCOCO/real_images/c100300.jpg",
        ),
        (
            "Hday2night/composite_images/d21901-20130410-181833_1_9.jpg",
            "Hday2night/masks/d21901-20130410-181833_1.png",
            "Hday2night/real_images/d21901-20130410-181833.jpg",
        ),
        (
            "HAdobe5k/composite_images/a0001_1_1.jpg",
            "HAdobe5k/masks/a0001_1.png",
            "HAdobe5k/real_images/a0001.jpg",
        ),
    ],
)
def test_derive_paths_from_file_name_keeps_absolute_root(comp, mask, real):
    root = Path("/abs/data.v2/iHarmony4_masks_composite")  # dots and folder names must not confuse it
    m, r = derive_paths(root / comp)
    assert m == root / mask and r == root / real
    assert m.is_absolute() and r.is_absolute()


def test_derive_paths_rejects_bad_names():
    with pytest.raises(ValueError, match="composite_images"):
        derive_paths("/x/HCOCO/masks/c1_2_3.jpg")
    with pytest.raises(ValueError, match="<id>_<mask>_<k>"):
        derive_paths("/x/HCOCO/composite_images/c1_2.jpg")


def test_three_list_styles_agree(iharmony4_root):
    root = iharmony4_root
    for split, n in (("train", 6), ("test", 4)):
        ihd = read_split(root, split, style="ihd")
        assert len(ihd) == n
        jsonl = read_split(root, split, style="jsonl")
        subset = read_split(root, split, style="subset")
        assert sorted(_key(ihd)) == sorted(_key(jsonl)) == sorted(_key(subset))
        assert _key(read_split(root, split)) == _key(ihd)  # auto picks IHD first


def test_auto_style_order(iharmony4_root):
    root = iharmony4_root
    assert find_list_style(root, "train") == "ihd"
    (root / "IHD_train.txt").unlink()
    assert find_list_style(root, "train") == "jsonl"
    (root / "train.jsonl").unlink()
    assert find_list_style(root, "train") == "subset"
    assert len(read_split(root, "train")) == 6


def test_sample_fields(iharmony4_root):
    by_name = {s.name: s for s in read_split(iharmony4_root, "train")}
    s = by_name["c100300_1602094_1"]
    assert s.subset == "HCOCO" and s.root_name == "main"
    assert s.composite == iharmony4_root / "HCOCO/composite_images/c100300_1602094_1.jpg"
    assert s.mask == iharmony4_root / "HCOCO/masks/c100300_1602094.png"
    assert s.real == iharmony4_root / "HCOCO/real_images/c100300.jpg"
    assert s.real_id == "c100300" and s.mask_id == "c100300_1602094"
    d = by_name["d21901-20130410-181833_1_9"]
    assert d.mask.name == "d21901-20130410-181833_1.png" and d.real.name == "d21901-20130410-181833.jpg"
    with pytest.raises(AttributeError):
        s.name = "x"  # frozen


def test_subset_filter(iharmony4_root):
    got = read_split(iharmony4_root, "train", subsets=["HCOCO", "Hday2night"])
    assert {s.subset for s in got} == {"HCOCO", "Hday2night"} and len(got) == 4


def test_subset_comes_from_folder_not_first_letter(tmp_path, iharmony4_factory):
    root = iharmony4_factory(
        tmp_path / "r", items=[("HFlickr", "a1234_1_1", "train"), ("HFlickr", "a1234_1_2", "test")]
    )
    (s,) = read_split(root, "train")
    assert s.subset == "HFlickr"


def test_per_subset_lists_at_root_level(tmp_path, iharmony4_factory):
    root = iharmony4_factory(tmp_path / "r", styles=())
    (root / "HCOCO_train.txt").write_text("c100300_1602094_1.jpg\nc100300_1602095_1.jpg\n")
    (root / "Hday2night_train.txt").write_text("d21901-20130410-181833_1_9.jpg\n")
    got = read_split(root, "train")
    assert [s.name for s in got] == ["c100300_1602094_1", "c100300_1602095_1", "d21901-20130410-181833_1_9"]


def test_no_list_names_root_and_files(tmp_path, iharmony4_factory):
    root = iharmony4_factory(tmp_path / "r", styles=())
    with pytest.raises(DataIntegrityError) as exc:
        read_split(root, "train")
    msg = str(exc.value)
    assert (
        str(root) in msg
        and "IHD_train.txt" in msg
        and "train.jsonl" in msg
        and "HCOCO/HCOCO_train.txt" in msg
    )


def test_several_roots_with_named_and_absolute_entries(tmp_path, iharmony4_factory):
    main = iharmony4_factory(tmp_path / "main")
    gen = iharmony4_factory(tmp_path / "gen", items=[("HFlickr", "f900_1_1", "train")], styles=())
    other = iharmony4_factory(
        tmp_path / "elsewhere", items=[("Hday2night", "d5-20100101-000000_1_2", "train")], styles=()
    )
    # a third root with its own list contributes its entries too
    extra = iharmony4_factory(
        tmp_path / "extra", items=[("HCOCO", "c77_123456789_1", "train")], styles=("ihd",)
    )
    absolute = other / "Hday2night/composite_images/d5-20100101-000000_1_2.jpg"
    with open(main / "IHD_train.txt", "a") as fh:
        fh.write("@gen/HFlickr/composite_images/f900_1_1.jpg\n")
        fh.write(f"{absolute}\n")
    got = read_split({"main": main, "gen": gen, "extra": extra}, "train")
    by_name = {s.name: s for s in got}
    assert len(got) == 6 + 3
    assert by_name["f900_1_1"].root_name == "gen"
    assert by_name["f900_1_1"].real == gen / "HFlickr/real_images/f900.jpg"
    assert by_name["d5-20100101-000000_1_2"].composite == absolute
    assert by_name["d5-20100101-000000_1_2"].mask == other / "Hday2night/masks/d5-20100101-000000_1.png"
    assert by_name["c77_123456789_1"].root_name == "extra"
    assert by_name["c77_123456789_1"].mask.name == "c77_123456789.png"
    # the test split of the extra root holds nothing: only main's test list counts
    assert len(read_split({"main": main, "gen": gen, "extra": extra}, "test")) == 4


def test_unknown_named_root(iharmony4_root):
    with open(iharmony4_root / "IHD_train.txt", "a") as fh:
        fh.write("@nope/HFlickr/composite_images/f900_1_1.jpg\n")
    with pytest.raises(DataIntegrityError, match="known roots"):
        read_split(iharmony4_root, "train", check=False)


def test_relative_root_resolves_against_project_root(tmp_path, iharmony4_factory, monkeypatch):
    iharmony4_factory(tmp_path / "data" / "ih")
    monkeypatch.setenv("HARMONYLIB_HOME", str(tmp_path))
    got = read_split("data/ih", "test")
    assert got[0].composite.is_absolute() and got[0].composite.is_file()


def test_missing_and_unreadable_files_all_listed_with_cap(tmp_path, iharmony4_factory):
    items = [("HFlickr", f"f{i}_1_1", "train") for i in range(30)] + [("HFlickr", "f999_1_1", "test")]
    root = iharmony4_factory(tmp_path / "r", items=items, size=(8, 8))
    for i in range(25):
        (root / f"HFlickr/real_images/f{i}.jpg").unlink()
    (root / "HFlickr/masks/f29_1.png").write_bytes(b"not a png")
    with pytest.raises(DataIntegrityError) as exc:
        read_split(root, "train")
    msg = str(exc.value)
    assert "26 of 90 files" in msg
    assert sum(line.startswith(f"  {root}") for line in msg.splitlines()) == 20  # the cap
    assert "... and 6 more" in msg
    assert len(exc.value.problems) == 26
    assert any("unreadable" in r for _, r in exc.value.problems)
    assert len(read_split(root, "train", check=False)) == 30  # check=False defers to the loader


def test_png_fallback_for_real_and_composite(iharmony4_root):
    d = iharmony4_root / "HAdobe5k"
    for p in (d / "real_images/a0001.jpg", d / "composite_images/a0001_1_1.jpg"):
        Image.open(p).save(p.with_suffix(".png"))
        p.unlink()
    (s,) = [s for s in read_split(iharmony4_root, "train") if s.name == "a0001_1_1"]
    assert s.real.name == "a0001.png" and s.composite.name == "a0001_1_1.png"


def test_duplicates_dropped_with_warning(iharmony4_root):
    with open(iharmony4_root / "IHD_test.txt", "a") as fh:
        fh.write("HCOCO/composite_images/c42_7_1.jpg\n")
    with pytest.warns(UserWarning, match="duplicate"):
        assert len(read_split(iharmony4_root, "test")) == 4


def test_count_report(iharmony4_root):
    rep = count_report(
        {"train": read_split(iharmony4_root, "train"), "test": read_split(iharmony4_root, "test")}
    )
    assert list(rep.index) == ["HCOCO", "HAdobe5k", "HFlickr", "Hday2night", "total"]
    assert rep.loc["HCOCO", "train"] == 3 and rep.loc["total", "train"] == 6 and rep.loc["total", "test"] == 4
    assert rep.loc["HCOCO", "test_published"] == 4283
    assert rep.loc["total", "train_published"] == 65742 and rep.loc["total", "test_published"] == 7404


def test_write_lists_regenerates_combined_from_per_subset(tmp_path, iharmony4_factory):
    ref = iharmony4_factory(tmp_path / "ref")
    root = iharmony4_factory(tmp_path / "r", styles=("subset",))
    written = write_lists(root)
    assert {p.name for p in written} >= {"IHD_train.txt", "IHD_test.txt", "train.jsonl", "test.jsonl"}
    for split in ("train", "test"):
        # same entries as the reference; order follows the subset order
        assert sorted((root / f"IHD_{split}.txt").read_text().split()) == sorted(
            (ref / f"IHD_{split}.txt").read_text().split()
        )
        lines = [json.loads(x) for x in (root / f"{split}.jsonl").read_text().splitlines()]
        assert all(set(x) == {"file_name", "text"} for x in lines)
        assert _key(read_split(root, split, style="ihd")) == _key(read_split(root, split, style="jsonl"))


def test_write_lists_per_subset_from_ihd(tmp_path, iharmony4_factory):
    root = iharmony4_factory(tmp_path / "r", styles=("ihd", "jsonl"))
    (root / "train.jsonl").write_text("")  # an existing style is kept unless overwrite
    written = write_lists(root, source_style="ihd")
    assert (root / "train.jsonl").read_text() == "" and root / "train.jsonl" not in written
    write_lists(root, source_style="ihd", overwrite=True)
    assert len((root / "train.jsonl").read_text().splitlines()) == 6
    assert (root / "HCOCO/HCOCO_train.txt").read_text().split() == [
        "c100300_1602094_1.jpg",
        "c100300_1602094_2.jpg",
        "c100300_1602095_1.jpg",
    ]
    assert sorted(_key(read_split(root, "train", style="subset"))) == sorted(_key(read_split(root, "train")))


def test_read_list_entries_rejects_bad_jsonl(iharmony4_root):
    (iharmony4_root / "test.jsonl").write_text('{"name": 1}\n')
    with pytest.raises(DataIntegrityError, match="test.jsonl:1"):
        read_list_entries(iharmony4_root, "test", "jsonl")
    with pytest.raises(ValueError, match="allowed"):
        read_list_entries(iharmony4_root, "test", "csv")


def test_cli_lists(tmp_path, iharmony4_factory, capsys):
    root = iharmony4_factory(tmp_path / "r", styles=("subset",))
    assert cli_main(["lists", "--root", str(root), "--write"]) == 0
    out = capsys.readouterr().out
    assert "HCOCO" in out and "65742" in out and "IHD_train.txt" in out
    assert (root / "IHD_test.txt").is_file()
    (root / "HCOCO/real_images/c100300.jpg").unlink()
    assert cli_main(["lists", "--root", str(root)]) == 1
    assert "missing" in capsys.readouterr().out


def test_fixture_images_are_valid(iharmony4_root):
    s = read_split(iharmony4_root, "train")[0]
    assert np.asarray(Image.open(s.mask)).max() == 255


def test_per_subset_lists_of_an_extra_subset_are_read(tmp_path):
    """A subset built like iHarmony4's (e.g. HumanHarmony, paper §4.2) is read from its own lists."""
    from conftest import write_iharmony4

    from harmonylib.data.iharmony4 import read_split, subset_folders

    items = [
        ("HumanHarmony", "h10_1_3", "train"),
        ("HumanHarmony", "h11_1_2", "test"),
        ("HFlickr", "f1_1_1", "train"),
    ]
    write_iharmony4(tmp_path, items, styles=("subset",))
    assert subset_folders(tmp_path)[-1] == "HumanHarmony"
    train = read_split(tmp_path, "train")
    assert sorted((s.subset, s.name) for s in train) == [("HFlickr", "f1_1_1"), ("HumanHarmony", "h10_1_3")]
    assert [s.name for s in read_split(tmp_path, "test")] == ["h11_1_2"]

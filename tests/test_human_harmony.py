"""Human Harmony builder (paper §4.2, §5.1.2) on a generated fixture in the imaterialist release format."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from harmonylib.data.human_harmony import (
    CSV_COLUMNS,
    PAPER_SPLIT,
    SUBSET,
    FilterRule,
    ImaterialistFormatError,
    assign_split,
    filter_images,
    is_product_only,
    prepare_human_harmony,
    read_annotations,
    read_label_descriptions,
    read_pairs,
    rle_decode,
    rle_encode,
    split_sizes,
    union_mask,
)
from harmonylib.data.iharmony4 import read_split
from harmonylib.data.imaterialist_fixture import CATEGORIES, build_imaterialist_fixture
from harmonylib.human_harmony_build import generate_human_harmony, select_human_harmony
from harmonylib.io import load_mask_l, load_rgb


@pytest.fixture(scope="module")
def fixture_src(tmp_path_factory):
    root = tmp_path_factory.mktemp("imat") / "imaterialist-fashion-2020-fgvc7"
    info = build_imaterialist_fixture(root, n_images=14, seed=0)
    return root, info


@pytest.fixture(scope="module")
def prepared(fixture_src, tmp_path_factory):
    src, _ = fixture_src
    out = tmp_path_factory.mktemp("hh") / "HumanHarmonyRoot"
    summary = prepare_human_harmony(src, out, seed=0, progress=False)
    return out, summary


def _copy_src(src, dst):
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------------- RLE


def test_rle_golden_column_major_one_indexed():
    expected = np.array([[0, 1], [1, 0], [1, 0]], dtype=bool)
    np.testing.assert_array_equal(rle_decode("2 3", 3, 2), expected)
    assert rle_encode(expected) == "2 3"


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    for h, w in ((1, 1), (3, 2), (17, 5), (40, 33)):
        m = rng.random((h, w)) < 0.4
        m[-1, -1] = m[0, 0] = True  # runs touching both ends
        assert np.array_equal(rle_decode(rle_encode(m), h, w), m)
    full = np.ones((4, 3), bool)
    assert rle_encode(full) == "1 12" and rle_decode("1 12", 4, 3).all()


@pytest.mark.parametrize(
    ("rle", "match"),
    [
        ("1 2 3", "pairs"),
        ("", "pairs"),
        ("1 x", "non-integer"),
        ("0 2", "start < 1"),
        ("3 0", "length < 1"),
        ("5 3", "past the last pixel 6"),
    ],
)
def test_rle_errors_name_the_image(rle, match):
    with pytest.raises(ImaterialistFormatError, match=rf"ImageId abc123: .*{match}"):
        rle_decode(rle, 3, 2, "abc123")


def test_size_mismatch_and_bad_rle_in_csv_name_the_image(fixture_src, tmp_path):
    src, info = fixture_src
    victim = info["person_ids"][2]
    bad = _copy_src(src, tmp_path / "bad_size")
    df = pd.read_csv(bad / "train.csv", dtype=str)
    df.loc[df["ImageId"] == victim, "Height"] = str(
        int(df.loc[df["ImageId"] == victim, "Height"].iloc[0]) + 1
    )
    df.to_csv(bad / "train.csv", index=False)
    with pytest.raises(ImaterialistFormatError, match=rf"ImageId {victim}: train.csv says"):
        prepare_human_harmony(bad, tmp_path / "out1", progress=False)

    bad2 = _copy_src(src, tmp_path / "bad_rle")
    df = pd.read_csv(bad2 / "train.csv", dtype=str)
    df.loc[df.index[df["ImageId"] == victim][0], "EncodedPixels"] = "10 999999"
    df.to_csv(bad2 / "train.csv", index=False)
    with pytest.raises(ImaterialistFormatError, match=rf"ImageId {victim}: .*past the last pixel"):
        prepare_human_harmony(bad2, tmp_path / "out2", progress=False)

    bad3 = _copy_src(src, tmp_path / "bad_class")
    df = pd.read_csv(bad3 / "train.csv", dtype=str)
    df.loc[df.index[df["ImageId"] == victim][0], "ClassId"] = "46"
    df.to_csv(bad3 / "train.csv", index=False)
    with pytest.raises(ImaterialistFormatError, match=rf"ImageId {victim}: ClassId 46"):
        prepare_human_harmony(bad3, tmp_path / "out3", progress=False)


# ------------------------------------------------------------------------------------ fixture


def test_fixture_has_the_release_format(fixture_src):
    src, info = fixture_src
    raw = pd.read_csv(src / "train.csv", dtype=str)
    assert tuple(raw.columns) == CSV_COLUMNS
    labels = json.loads((src / "label_descriptions.json").read_text())
    assert {"categories", "attributes"} <= set(labels)
    assert [c["id"] for c in labels["categories"]] == list(range(46))
    assert [(c["id"], c["name"], c["supercategory"]) for c in labels["categories"]] == list(CATEGORIES)
    assert all({"id", "name", "supercategory", "level"} <= set(c) for c in labels["categories"])
    assert all({"id", "name", "supercategory", "level"} <= set(a) for a in labels["attributes"])
    assert {c["supercategory"] for c in labels["categories"]} >= {
        "upperbody", "lowerbody", "wholebody", "legs and feet", "head", "others",
        "garment parts", "closures", "decorations",
    }  # fmt: skip
    ann = read_annotations(src / "train.csv")
    assert ann["ImageId"].nunique() == info["n_images"] == 14 and info["n_product"] == 2
    for image_id, g in ann.groupby("ImageId"):
        assert re.fullmatch(r"[0-9a-f]{32}", image_id)
        with Image.open(src / "train" / f"{image_id}.jpg") as im:
            assert im.size == (g["Width"].iloc[0], g["Height"].iloc[0])
    assert ann.groupby("ImageId").size().max() >= 5  # multi-segment images
    parts = ann[ann["ClassId"].isin([31, 33])]
    assert parts["AttributesIds"].isna().all() and ann[ann["ClassId"] == 23]["AttributesIds"].notna().all()
    # deterministic
    again = build_imaterialist_fixture(src.parent / "again", n_images=14, seed=0)
    assert (src.parent / "again" / "train.csv").read_bytes() == (src / "train.csv").read_bytes()
    assert again["product_ids"] == info["product_ids"]


# ---------------------------------------------------------------------------- filter and mask


def test_filter_drops_product_only_images(fixture_src):
    src, info = fixture_src
    cats = read_label_descriptions(src / "label_descriptions.json")
    kept, dropped = filter_images(read_annotations(src / "train.csv"), cats)
    assert set(dropped) == set(info["product_ids"]) and set(kept) == set(info["person_ids"])
    # the rule on its own
    assert is_product_only([10, 31, 31, 33], cats)  # a dress with its parts: one region
    assert is_product_only([23, 23], cats) and is_product_only([24], cats)
    assert not is_product_only([10, 23], cats) and not is_product_only([0, 6, 31], cats)
    assert not is_product_only([10], cats, FilterRule(min_body_regions=1))


def test_union_of_overlapping_segments(fixture_src, prepared):
    src, info = fixture_src
    out, _ = prepared
    ann = read_annotations(src / "train.csv")
    image_id = info["person_ids"][0]
    g = ann[ann["ImageId"] == image_id]
    h, w = int(g["Height"].iloc[0]), int(g["Width"].iloc[0])
    segs = [rle_decode(r, h, w, image_id) for r in g["EncodedPixels"]]
    union = union_mask(g, h, w, image_id)
    assert np.array_equal(union, np.logical_or.reduce(segs))
    assert sum(int(s.sum()) for s in segs) > int(union.sum())  # sleeves / neckline overlap the garment
    written = np.asarray(load_mask_l(out / SUBSET / "masks" / f"{image_id}_1.png"))
    assert set(np.unique(written)) <= {0, 255} and np.array_equal(written > 127, union)
    only_shoes = union_mask(g, h, w, image_id, mask_classes=[23])
    assert 0 < only_shoes.sum() < union.sum()


# ------------------------------------------------------------------------------------- split


def test_split_arithmetic():
    assert split_sizes(29103) == PAPER_SPLIT == (26157, 2946)
    assert split_sizes(29106) == (26160, 2946)  # the text's 29,106 does not give the paper's split
    assert split_sizes(73146) == (65742, 7404)  # iHarmony4 itself
    assert split_sizes(0) == (0, 0) and split_sizes(12) == (11, 1)
    ids = [f"{i:032x}" for i in range(200)]
    s = assign_split(ids, seed=0)
    assert sum(v == "test" for v in s.values()) == split_sizes(200)[1] == 20
    assert assign_split(ids[::-1], seed=0) == s and assign_split(ids, seed=1) != s


def test_prepare_split_counts_stats_and_resume(fixture_src, prepared):
    src, info = fixture_src
    out, summary = prepared
    assert summary["n_kept"] == 12 and summary["n_dropped_product_only"] == 2
    assert summary["split"] == {"train": 11, "test": 1}
    pairs = read_pairs(out)
    assert len(pairs) == 12 and (pairs["split"] == "test").sum() == 1
    # foreground-heavy like the real set (paper Table 3: 88% of test in the 15-100% bin)
    mix = summary["fg_ratio"]["all"]["fractions"]
    assert mix["15-100%"] >= 0.75 and summary["fg_ratio"]["all"]["mean_fg_ratio"] > 0.2
    assert summary["fg_ratio"]["paper_test"]["counts"] == {"0-5%": 26, "5-15%": 323, "15-100%": 2597}
    # resumable: a second run reuses the files and gives the same table
    before = (out / "human_harmony_pairs.csv").read_bytes()
    prepare_human_harmony(src, out, seed=0, progress=False)
    assert (out / "human_harmony_pairs.csv").read_bytes() == before


def test_generate_select_output_readable_by_read_split(fixture_src, prepared, tmp_path):
    from harmonylib.models.classifier import build_classifier
    from harmonylib.models.tiny import build_tiny_pipeline

    _, info = fixture_src
    src_out, _ = prepared
    out = tmp_path / "hh"
    shutil.copytree(src_out, out)
    pipe = build_tiny_pipeline(0, direction="inverse")
    generate_human_harmony(out, pipe, k=2, seed=0, batch_size=8, rank=0, world_size=1, progress=False)
    clf = build_classifier("mini", generator=torch.Generator().manual_seed(0)).eval()
    summary = select_human_harmony(out, clf, progress=False)
    assert summary["selection"]["n_selected"] == 12 and summary["selection"]["n_candidates"] == 24

    train, test = read_split(out, "train"), read_split(out, "test")  # the reader, unchanged
    assert (len(train), len(test)) == (11, 1)
    assert {s.subset for s in train + test} == {SUBSET}
    selection = pd.read_csv(out / "human_harmony_selection.csv", dtype={"image_id": str})
    manifest = [json.loads(x) for x in (out / "candidates" / "manifest.jsonl").read_text().splitlines()]
    for s in train + test:
        comp, real = np.asarray(load_rgb(s.composite)), np.asarray(load_rgb(s.real))
        assert comp.shape == real.shape
        scores = [r["score"] for r in manifest if r["mask_id"] == s.mask_id]
        assert len(scores) == 2
        row = selection[selection["composite"] == s.composite.name].iloc[0]
        assert row["score"] == max(scores)  # the classifier's argmax per mask
    assert set(read_pairs(out)["image_id"]) == set(info["person_ids"])
    names = (out / SUBSET / f"{SUBSET}_train.txt").read_text().split()
    assert sorted(names) == sorted(s.composite.name for s in train)


def test_cli_fixture_and_prepare(tmp_path, capsys):
    from harmonylib.cli import main

    assert main(["human-harmony", "fixture", "--out", str(tmp_path / "src"), "--n-images", "8"]) == 0
    assert (
        main(["human-harmony", "prepare", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
        == 0
    )
    out = capsys.readouterr().out
    assert "kept 7 of 8 images (1 product-only dropped)" in out and "train 6, test 1" in out

"""Pre-shrinking: sizes, lossless PNG outputs, binary masks, untouched source, resumability."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harmonylib.cli import main as cli_main
from harmonylib.data.datasets import HarmonyDataset
from harmonylib.data.iharmony4 import read_split
from harmonylib.data.shrink import shrink_dataset, shrunk_size
from harmonylib.provenance import sha256_tree


@pytest.fixture
def big_root(tmp_path, iharmony4_factory):
    return iharmony4_factory(tmp_path / "src", size=(40, 30))


def test_shrunk_size():
    assert shrunk_size(6048, 4032, 1024) == (1024, 683)
    assert shrunk_size(3000, 4000, 1024) == (768, 1024)
    assert shrunk_size(800, 600, 1024) == (800, 600)


def test_shrink_hadobe5k(big_root, tmp_path):
    before = sha256_tree(big_root)
    dst = tmp_path / "dst"
    counts = shrink_dataset(big_root, dst, max_side=16, progress=False)
    assert sha256_tree(big_root) == before  # source untouched
    assert counts["resized"] == 2 + 1 + 1  # HAdobe5k: 2 composites, 1 mask, 1 real
    assert counts["copied"] > 0 and counts["skipped"] == 0
    adobe = dst / "HAdobe5k"
    assert (adobe / "composite_images/a0001_1_1.png").is_file()
    assert not (adobe / "composite_images/a0001_1_1.jpg").exists()
    assert Image.open(adobe / "real_images/a0001.png").size == (16, 12)
    mask = np.asarray(Image.open(adobe / "masks/a0001_1.png"))
    assert mask.shape == (12, 16) and set(np.unique(mask)) == {0, 255}  # binary stays binary
    # other subsets copied byte for byte; lists copied
    assert (dst / "HCOCO/real_images/c100300.jpg").read_bytes() == (
        big_root / "HCOCO/real_images/c100300.jpg"
    ).read_bytes()
    assert (dst / "IHD_train.txt").read_text() == (big_root / "IHD_train.txt").read_text()
    assert (dst / "HAdobe5k/HAdobe5k_test.txt").is_file()
    # the reader finds the PNGs through the unchanged lists
    samples = {s.name: s for s in read_split(dst, "train")}
    s = samples["a0001_1_1"]
    assert s.composite.suffix == ".png" and s.real.suffix == ".png"
    item = HarmonyDataset([s], 8)[0]
    assert item["composite"].shape == (3, 8, 8)


def test_shrink_is_resumable(big_root, tmp_path):
    dst = tmp_path / "dst"
    first = shrink_dataset(big_root, dst, max_side=16, progress=False)
    total = first["resized"] + first["copied"]
    again = shrink_dataset(big_root, dst, max_side=16, progress=False)
    assert again == {"resized": 0, "copied": 0, "skipped": total}
    (dst / "HAdobe5k/composite_images/a0001_1_2.png").unlink()
    (dst / "HCOCO/masks/c42_7.png").unlink()
    third = shrink_dataset(big_root, dst, max_side=16, progress=False)
    assert third == {"resized": 1, "copied": 1, "skipped": total - 2}
    assert not [p for p in dst.rglob(".*") if p.is_file()]  # no temp files left


def test_shrink_refuses_nested_roots(big_root):
    with pytest.raises(ValueError, match="outside"):
        shrink_dataset(big_root, big_root / "small", progress=False)
    with pytest.raises(ValueError, match="unknown subsets"):
        shrink_dataset(big_root, big_root.parent / "x", subsets=("HAdobe",), progress=False)


def test_cli_shrink(big_root, tmp_path, capsys):
    assert (
        cli_main(
            [
                "shrink",
                "--src",
                str(big_root),
                "--dst",
                str(tmp_path / "d"),
                "--max-side",
                "20",
                "--others",
                "skip",
            ]
        )
        == 0
    )
    assert "resized" in capsys.readouterr().out
    assert not (tmp_path / "d/HCOCO/composite_images").exists()
    assert Image.open(tmp_path / "d/HAdobe5k/real_images/a0001.png").size == (20, 15)

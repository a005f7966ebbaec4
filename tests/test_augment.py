"""Inverse-model augmentation: candidate generation, γ mixing, classifier selection (paper §4.1, §4.2)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from harmonylib.augment import (
    MANIFEST,
    PARTS_DIR,
    AugmentError,
    Pair,
    candidate_seed,
    generate_candidates,
    merge_manifests,
    mix_training_list,
    mixing_count,
    pairs_from_samples,
    read_manifest,
    score_candidates,
    score_images,
    select_best,
)
from harmonylib.data.iharmony4 import derive_paths, read_split
from harmonylib.io import load_mask_l, load_rgb

# Three (real, mask) pairs of different sizes; HCOCO's mask already has composites _1 and _2.
GEN_ITEMS = (
    ("HCOCO", "c100300_1602094_1", "train"),
    ("HCOCO", "c100300_1602094_2", "train"),
    ("HFlickr", "f800_1_1", "train"),
    ("Hday2night", "d21901-20130410-181833_1_9", "train"),
)


class CopyPipeline:
    """Stands in for the inverse pipeline where pixels do not matter: returns the real image."""

    def __init__(self):
        self.calls = 0

    def __call__(self, image, mask_image, generator, **kwargs):
        assert kwargs["direction"] == "inverse" and len(generator) == len(image)
        self.calls += len(image)
        return SimpleNamespace(images=[load_rgb(p) for p in image])


@pytest.fixture(scope="module")
def tiny_pipe():
    from harmonylib.models.tiny import build_tiny_pipeline

    return build_tiny_pipeline(0, direction="inverse")


@pytest.fixture
def gen_pairs(tmp_path, iharmony4_factory):
    root = iharmony4_factory(tmp_path / "orig", items=GEN_ITEMS, styles=("ihd",), size=(24, 16))
    (root / "HCOCO" / "composite_images" / "c100300_1602094_5.jpg").write_bytes(
        (root / "HCOCO" / "composite_images" / "c100300_1602094_1.jpg").read_bytes()
    )  # an unlisted composite (e.g. of the test split) still reserves its k
    return root, pairs_from_samples(read_split(root, "train"))


def _pngs(root: Path) -> dict[str, np.ndarray]:
    return {
        p.name: np.asarray(Image.open(p)).astype(int) for p in sorted(root.glob("*/composite_images/*.png"))
    }


def _assert_same_pngs(a: Path, b: Path) -> None:
    pa, pb = _pngs(a), _pngs(b)
    assert pa.keys() == pb.keys() and pa
    for name in pa:
        assert np.abs(pa[name] - pb[name]).max() <= 1, name


def _strip(records):
    return sorted((r["name"], r["seed"], r["pair_id"], r["file"]) for r in records)


def test_pairs_and_names_never_collide(gen_pairs):
    _, pairs = gen_pairs
    by_id = {p.pair_id: p for p in pairs}
    assert list(by_id) == ["HCOCO/c100300_1602094", "HFlickr/f800_1", "Hday2night/d21901-20130410-181833_1"]
    assert by_id["HCOCO/c100300_1602094"].k_offset == 5  # largest existing k, listed or not
    assert by_id["HCOCO/c100300_1602094"].candidate_name(0) == "c100300_1602094_6"
    assert by_id["Hday2night/d21901-20130410-181833_1"].candidate_name(1) == "d21901-20130410-181833_1_11"


def test_candidate_seeds_differ_and_depend_only_on_pair_and_j(gen_pairs):
    _, pairs = gen_pairs
    seeds = {candidate_seed(0, p, j) for p in pairs for j in range(4)}
    assert len(seeds) == 12
    moved = Pair(pairs[0].subset, pairs[0].mask_id, Path("/elsewhere.jpg"), Path("/m.png"), k_offset=99)
    assert candidate_seed(0, moved, 2) == candidate_seed(0, pairs[0], 2)
    assert candidate_seed(1, pairs[0], 2) != candidate_seed(0, pairs[0], 2)


def test_generation_native_size_background_and_layout(tmp_path, gen_pairs, tiny_pipe):
    _, pairs = gen_pairs
    out = tmp_path / "gen"
    generate_candidates(
        tiny_pipe, pairs, out, k=2, seed=0, batch_size=4, rank=0, world_size=1, progress=False
    )
    records = read_manifest(out)
    assert len(records) == 6
    for rec in records:
        comp = out / rec["file"]
        mask_p, real_p = derive_paths(comp)  # the reader finds mask and real inside the generated root
        assert mask_p.is_file() and real_p.is_file() and real_p.is_relative_to(out)
        cand, real = np.asarray(Image.open(comp)), np.asarray(load_rgb(real_p))
        assert cand.shape == real.shape  # native size, aligned with the mask
        fg = np.asarray(load_mask_l(mask_p)) > 127
        assert np.array_equal(cand[~fg], real[~fg])  # the real background, exactly
        assert rec["models"] and all(v.startswith("state_dict_sha256:") for v in rec["models"].values())
        assert rec["score"] is None and rec["seed"] == candidate_seed(
            0, next(p for p in pairs if p.pair_id == rec["pair_id"]), rec["j"]
        )
    # the two candidates of one pair differ (own seeds), in the foreground
    a, b = (
        np.asarray(Image.open(out / r["file"])).astype(int)
        for r in records
        if r["pair_id"] == "HFlickr/f800_1"
    )
    assert np.abs(a - b).max() > 5


def test_generation_independent_of_batch_size_and_order(tmp_path, gen_pairs, tiny_pipe):
    _, pairs = gen_pairs
    kw = dict(k=2, seed=3, rank=0, world_size=1, progress=False)
    generate_candidates(tiny_pipe, pairs, tmp_path / "b1", batch_size=1, **kw)
    generate_candidates(tiny_pipe, pairs[::-1], tmp_path / "b4", batch_size=4, **kw)
    _assert_same_pngs(tmp_path / "b1", tmp_path / "b4")
    assert _strip(read_manifest(tmp_path / "b1")) == _strip(read_manifest(tmp_path / "b4"))


def test_two_ranks_union_equals_one_process(tmp_path, gen_pairs, tiny_pipe):
    _, pairs = gen_pairs
    kw = dict(k=2, seed=0, batch_size=2, progress=False)
    generate_candidates(tiny_pipe, pairs, tmp_path / "one", rank=0, world_size=1, **kw)
    for rank in (0, 1):
        generate_candidates(tiny_pipe, pairs, tmp_path / "two", rank=rank, world_size=2, **kw)
    assert not (tmp_path / "two" / MANIFEST).exists()  # explicit ranks: the caller merges
    parts = sorted(p.name for p in (tmp_path / "two" / PARTS_DIR).iterdir())
    assert parts == ["rank000-of-002.jsonl", "rank001-of-002.jsonl"]
    merge_manifests(tmp_path / "two")
    _assert_same_pngs(tmp_path / "one", tmp_path / "two")
    assert _strip(read_manifest(tmp_path / "one")) == _strip(read_manifest(tmp_path / "two"))


def test_generation_resumes(tmp_path, gen_pairs):
    _, pairs = gen_pairs
    out, pipe = tmp_path / "gen", CopyPipeline()
    generate_candidates(pipe, pairs, out, k=3, seed=0, batch_size=2, rank=0, world_size=1, progress=False)
    assert pipe.calls == 9
    first = (out / MANIFEST).read_text()
    victim = out / read_manifest(out)[4]["file"]
    victim.unlink()
    part = out / PARTS_DIR / "rank000-of-001.jsonl"
    part.write_text(part.read_text()[:-30])  # a writer killed mid-record
    generate_candidates(pipe, pairs, out, k=3, seed=0, batch_size=2, rank=0, world_size=1, progress=False)
    assert pipe.calls == 10 and victim.is_file()  # only the missing candidate was generated again
    assert (out / MANIFEST).read_text() == first


def test_mixing_count_paper_arithmetic():
    # §5.3.2 counts are train+test and 3 higher than the files: HFlickr 4,833 reals / 8,277
    # composites (paper 4,836 / 8,280), Hday2night 106 / 444 (paper 109 / 447).
    assert mixing_count(1, 4833, 8277) == mixing_count(1, 4836, 8280) == 2
    assert mixing_count(1, 106, 444) == mixing_count(1, 109, 447) == 5
    assert mixing_count(1, 100, 300) == 3  # exact integers are not rounded up
    assert mixing_count(0.7, 10, 100) == 7  # float 0.7 * 100 / 10 = 7.000000000000001
    assert mixing_count(0, 10, 100) == 0
    with pytest.raises(ValueError, match="n_pairs"):
        mixing_count(1, 0, 10)


def _hday2night_like(root: Path, factory) -> Path:
    """311 train composites over N1 = 80 (real, mask) pairs (40 reals x 2 masks), plus test."""
    items, n = [], 0
    for i in range(80):
        real, mask = f"d{21000 + i // 2}-20130410-181833", 1 + i % 2
        for kk in range(1, (4 if i < 71 else 3) + 1):
            items.append(("Hday2night", f"{real}_{mask}_{kk}", "train"))
            n += 1
    assert n == 311
    items.append(("Hday2night", "d99999-20130410-181833_1_1", "test"))
    return factory(root, items=items, styles=("ihd",), size=(8, 8))


def test_gamma_mixing_counts_exact(tmp_path, iharmony4_factory):
    orig = _hday2night_like(tmp_path / "orig", iharmony4_factory)
    train = read_split(orig, "train")
    gen = tmp_path / "gen"
    generate_candidates(CopyPipeline(), pairs_from_samples(train), gen, k=4, seed=0, batch_size=64,
                        rank=0, world_size=1, progress=False)  # fmt: skip
    res = mix_training_list(orig, gen, gamma=1, seed=0)
    assert res.counts == {"Hday2night": {"n_pairs": 80, "n_composites": 311, "per_pair": 4, "added": 320}}
    mixed = read_split({"main": orig, "gen": gen}, "train")
    assert len(mixed) == 311 + 320
    assert sum(s.root_name == "gen" for s in mixed) == 320
    assert len(read_split({"main": orig, "gen": gen}, "test")) == 1  # test list untouched
    assert all(
        line.startswith("@gen/Hday2night/composite_images/")
        for line in res.list_path.read_text().splitlines()
    )
    assert json.loads((gen / "MIX.json").read_text())["counts"]["Hday2night"]["per_pair"] == 4

    half = mix_training_list(orig, gen, gamma=0.5, seed=0)  # ⌈0.5 · 311 / 80⌉ = ⌈1.94⌉ = 2
    assert half.counts["Hday2night"]["per_pair"] == 2 and len(half.added) == 160
    per_pair: dict[str, int] = {}
    for e in half.added:
        mask = Path(e).stem.rsplit("_", 1)[0]
        per_pair[mask] = per_pair.get(mask, 0) + 1
    assert set(per_pair.values()) == {2} and len(per_pair) == 80
    assert mix_training_list(orig, gen, gamma=0.5, seed=0, write=False).added == half.added  # seeded
    assert mix_training_list(orig, gen, gamma=0.5, seed=1, write=False).added != half.added

    with pytest.raises(AugmentError, match=r"⌈γ·N2/N1⌉ = ⌈2·311/80⌉ = 8.*smallest K = 4"):
        mix_training_list(orig, gen, gamma=2, seed=0)


def test_select_best_per_mask_unequal_groups():
    def rec(pair, j, score):
        subset, mask = pair.split("/")
        return {
            "name": f"{mask}_{j + 1}",
            "pair_id": pair,
            "subset": subset,
            "mask_id": mask,
            "j": j,
            "score": score,
        }

    records = [
        rec("HCOCO/c1_1", 0, 0.2), rec("HCOCO/c1_1", 1, 0.9), rec("HCOCO/c1_1", 2, 0.5),
        rec("HCOCO/c1_2", 0, 0.95),
        rec("HFlickr/f2_1", 0, 0.1), rec("HFlickr/f2_1", 1, 0.3), rec("HFlickr/f2_1", 2, 0.3),
        rec("HFlickr/f2_1", 3, 0.05), rec("HFlickr/f2_1", 4, 0.2),
    ]  # fmt: skip
    best = select_best(records)
    assert {k: v["name"] for k, v in best.items()} == {
        "HCOCO/c1_1": "c1_1_2", "HCOCO/c1_2": "c1_2_1", "HFlickr/f2_1": "f2_1_2",  # tie: lowest j
    }  # fmt: skip
    per_image = select_best(records, group_by="image")  # the authors' grouping, for comparison
    assert {k: v["name"] for k, v in per_image.items()} == {"HCOCO/c1": "c1_2_1", "HFlickr/f2": "f2_1_2"}
    with pytest.raises(AugmentError, match="no score"):
        select_best([{**records[0], "score": None}])


def test_scoring_batch_invariant_and_written_to_manifest(tmp_path, gen_pairs):
    from harmonylib.models.classifier import build_classifier

    _, pairs = gen_pairs
    gen = tmp_path / "gen"
    generate_candidates(
        CopyPipeline(), pairs, gen, k=3, seed=0, batch_size=8, rank=0, world_size=1, progress=False
    )
    clf = build_classifier("mini", generator=torch.Generator().manual_seed(0)).eval()
    files = [gen / r["file"] for r in read_manifest(gen)]
    s1, s4 = score_images(clf, files, batch_size=1), score_images(clf, files, batch_size=4)
    np.testing.assert_allclose(s1, s4, rtol=0, atol=1e-6)
    records = score_candidates(clf, gen, batch_size=4, progress=False)
    assert [r["score"] for r in read_manifest(gen)] == pytest.approx(list(s1), abs=1e-6)
    best = select_best(records)
    for pair_id, r in best.items():
        assert r["score"] == max(x["score"] for x in records if x["pair_id"] == pair_id)


_DDP_WORKER = """
import sys
import torch
torch.set_num_threads(1)
from harmonylib.augment import generate_candidates, pairs_from_samples
from harmonylib.data.iharmony4 import read_split
from harmonylib.models.tiny import build_tiny_pipeline
pipe = build_tiny_pipeline(0, direction="inverse")
pairs = pairs_from_samples(read_split(sys.argv[1], "train"))
generate_candidates(pipe, pairs, sys.argv[2], k=2, seed=0, batch_size=2, progress=False)
"""


@pytest.mark.slow
def test_real_two_process_run_equals_one_process(tmp_path, gen_pairs, tiny_pipe):
    """Two processes under torchrun (accelerate's PartialState picks rank and world size), ~10 s."""
    import socket
    import subprocess
    import sys

    root, pairs = gen_pairs
    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(script), str(root), str(tmp_path / "two")]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=300, cwd=Path(__file__).parents[1], capture_output=True)
    parts = sorted(p.name for p in (tmp_path / "two" / PARTS_DIR).iterdir())
    assert parts == ["rank000-of-002.jsonl", "rank001-of-002.jsonl"]
    generate_candidates(tiny_pipe, pairs, tmp_path / "one", k=2, seed=0, batch_size=2, rank=0, world_size=1,
                        progress=False)  # fmt: skip
    _assert_same_pngs(tmp_path / "one", tmp_path / "two")
    assert _strip(read_manifest(tmp_path / "one")) == _strip(read_manifest(tmp_path / "two"))


# ---- candidate fidelity: colour change vs everything else ----------------------------------


def _fidelity_fixture(seed: int = 0):
    rng = np.random.default_rng(seed)
    real = rng.integers(30, 220, size=(32, 40, 3)).astype(np.uint8)
    mask = np.zeros((32, 40), np.uint8)
    mask[8:24, 10:30] = 255
    return real, mask


def test_foreground_difference_separates_colour_from_blur():
    from harmonylib.augment import foreground_difference

    real, mask = _fidelity_fixture()
    # a global per-channel gain and offset: pure colour change, nothing left after the affine fit
    recoloured = (
        np.clip(real.astype(np.float64) * [0.8, 1.0, 0.9] + [20, -10, 5], 0, 255).round().astype(np.uint8)
    )
    d = foreground_difference(recoloured, real, mask)
    fg = mask > 127
    expected = np.mean((recoloured[fg].astype(np.float64) - real[fg]) ** 2)
    assert d["fmse"] == pytest.approx(expected)
    assert d["fmse"] > 100
    assert d["residual_fmse"] < 0.5  # only the uint8 rounding remains
    shift = np.abs(recoloured[fg].astype(np.float64).mean(0) - real[fg].mean(0)).mean()
    assert d["colour_shift"] == pytest.approx(shift)
    # a blur keeps the colour statistics but not the content: most of its error stays
    blurred = np.asarray(
        Image.fromarray(real).resize((10, 8), Image.BILINEAR).resize((40, 32), Image.BILINEAR)
    )
    b = foreground_difference(blurred, real, mask)
    assert b["residual_fmse"] > 0.5 * b["fmse"] > 50
    assert b["colour_shift"] < 5


def test_foreground_difference_reads_files_and_rejects_bad_input(tmp_path):
    from harmonylib.augment import foreground_difference

    real, mask = _fidelity_fixture()
    Image.fromarray(real).save(tmp_path / "r.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    d = foreground_difference(tmp_path / "r.png", tmp_path / "r.png", tmp_path / "m.png")
    assert d == {"fmse": 0.0, "colour_shift": 0.0, "residual_fmse": pytest.approx(0.0, abs=1e-9)}
    assert all(np.isnan(v) for v in foreground_difference(real, real, np.zeros_like(mask)).values())
    with pytest.raises(ValueError, match="sizes differ"):
        foreground_difference(real[:16], real, mask)


class _MaskFractionClassifier(torch.nn.Module):
    """A mask-pooled stand-in: P(composite) = the foreground fraction of the mask it is given."""

    requires_mask = True
    input_size = 16

    def predict_proba(self, images, mask=None):
        if mask is None:
            raise ValueError("needs the mask")
        assert mask.shape == (images.shape[0], 1, 16, 16)
        return mask.flatten(1).mean(1)


def test_mask_pooled_classifier_scores_each_candidate_with_its_own_mask(tmp_path, gen_pairs):
    from harmonylib.imageproc import threshold_mask

    _, pairs = gen_pairs
    gen = tmp_path / "gen"
    generate_candidates(
        CopyPipeline(), pairs, gen, k=2, seed=0, batch_size=8, rank=0, world_size=1, progress=False
    )
    clf = _MaskFractionClassifier()
    files = [gen / r["file"] for r in read_manifest(gen)]
    with pytest.raises(ValueError, match="pooling: mask"):
        score_images(clf, files)
    records = score_candidates(clf, gen, batch_size=3, progress=False)
    for r in records:
        m = threshold_mask(load_mask_l(gen / r["subset"] / "masks" / f"{r['mask_id']}.png"))
        m16 = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None], size=(16, 16), mode="area")
        assert r["score"] == pytest.approx(float(m16.mean()), abs=1e-6), r["name"]

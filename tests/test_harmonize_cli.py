"""``harmonylib harmonize`` on a tiny saved pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from harmonylib.cli import main
from harmonylib.models.tiny import build_tiny_pipeline


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipe") / "pipeline"
    pipe = build_tiny_pipeline()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():  # non-zero skips, so the Harmony-VAE condition matters
        for conv in pipe.vae.added_skip_convs():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.1)
    pipe.save_pretrained(d)
    return d


def _write_pairs(root, sizes=((40, 56), (32, 32), (37, 53))):
    comp, masks = root / "comp", root / "masks"
    comp.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(comp / f"img{k}_1_1.jpg")
        m = np.zeros((h, w), np.uint8)
        m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        # img0 by its own name, the others by the iHarmony4 rule (<stem minus _k>)
        Image.fromarray(m).save(masks / (f"img{k}_1_1.png" if k == 0 else f"img{k}_1.png"))
    return comp, masks


def _read(path):
    return np.asarray(Image.open(path), dtype=int)


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["harmonize", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--pipeline", "--input-dir", "--mask-dir", "--steps", "--seed", "--size-mode", "--dtype"):
        assert flag in out


def test_folders_resume_and_order_independence(pipeline_dir, tmp_path, capsys):
    comp, masks = _write_pairs(tmp_path)
    out = tmp_path / "out"
    args = ["harmonize", "--pipeline", str(pipeline_dir), "--input-dir", str(comp), "--mask-dir", str(masks),
            "--out-dir", str(out), "--seed", "3", "--quiet"]  # fmt: skip
    assert main(args) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["img0_1_1.png", "img1_1_1.png", "img2_1_1.png"]
    assert Image.open(out / "img2_1_1.png").size == (53, 37)  # keep_aspect: input size back
    assert not list(out.glob(".*"))  # no temporary files left

    mtime = (out / "img0_1_1.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "img0_1_1.png").stat().st_mtime_ns == mtime

    # a batch of 3, and one image alone: same pixels (each image has its own derived seed)
    out3 = tmp_path / "out3"
    assert main([*args[:-4], str(out3), "--seed", "3", "--batch-size", "3", "--quiet"]) == 0
    single = tmp_path / "single.png"
    assert main(["harmonize", "--pipeline", str(pipeline_dir), "--image", str(comp / "img1_1_1.jpg"),
                 "--mask", str(masks / "img1_1.png"), "--out", str(single), "--seed", "3", "--quiet"]) == 0  # fmt: skip
    for name in files:
        assert np.abs(_read(out / name) - _read(out3 / name)).max() <= 1
    assert np.abs(_read(single) - _read(out / "img1_1_1.png")).max() <= 1
    other = tmp_path / "other.png"
    main(["harmonize", "--pipeline", str(pipeline_dir), "--image", str(comp / "img1_1_1.jpg"),
          "--mask", str(masks / "img1_1.png"), "--out", str(other), "--seed", "4", "--quiet"])  # fmt: skip
    assert np.abs(_read(other) - _read(single)).max() > 1


def test_square_mode_and_dtype(pipeline_dir, tmp_path):
    comp, masks = _write_pairs(tmp_path, sizes=((40, 56),))
    out = tmp_path / "o.png"
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--image", str(comp / "img0_1_1.jpg"),
               "--mask", str(masks / "img0_1_1.png"), "--out", str(out), "--size-mode", "square", "--size", "32",
               "--dtype", "bf16", "--steps", "2", "--no-keep-background", "--quiet"])  # fmt: skip
    assert rc == 0 and Image.open(out).size == (32, 32)


def test_usage_errors(pipeline_dir, tmp_path, capsys, monkeypatch):
    comp, masks = _write_pairs(tmp_path)
    (masks / "img2_1.png").unlink()
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--input-dir", str(comp), "--mask-dir", str(masks),
               "--out-dir", str(tmp_path / "o"), "--quiet"])  # fmt: skip
    assert rc == 2 and "no mask for img2_1_1.jpg" in capsys.readouterr().err

    assert main(["harmonize", "--image", "a.png", "--quiet"]) == 2
    assert "--image, --mask and --out go together" in capsys.readouterr().err

    monkeypatch.setenv("HARMONYLIB_HOME", str(tmp_path / "fresh_checkout"))
    rc = main(["harmonize", "--image", str(comp / "img0_1_1.jpg"), "--mask", str(masks / "img0_1_1.png"),
               "--out", str(tmp_path / "x.png"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert (
        rc == 2
        and "results/mini/runs/pipeline" in err
        and "make pretrain-mini" in err
        and "--pipeline" in err
    )


def test_unreadable_file_is_reported_and_others_written(pipeline_dir, tmp_path, capsys):
    comp, masks = _write_pairs(tmp_path)
    data = (comp / "img1_1_1.jpg").read_bytes()
    (comp / "img1_1_1.jpg").write_bytes(data[: len(data) // 3])  # truncated
    out = tmp_path / "out"
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--input-dir", str(comp), "--mask-dir", str(masks),
               "--out-dir", str(out), "--batch-size", "2", "--quiet"])  # fmt: skip
    assert rc == 1
    assert "img1_1_1.jpg" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["img0_1_1.png", "img2_1_1.png"]


def test_iharmony4_root(pipeline_dir, tmp_path, iharmony4_factory):
    root = iharmony4_factory(tmp_path / "iHarmony4", size=(24, 16))
    out = tmp_path / "out"
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--iharmony4-root", str(root), "--split", "test",
               "--out-dir", str(out), "--steps", "1", "--quiet"])  # fmt: skip
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["c42_7_1.png", "a0001_1_2.png", "f801_2_3.png", "d21901-20130410-181833_1_1.png"])
    assert Image.open(out / "c42_7_1.png").size == (24, 16)


def test_builtin_smoke_data(pipeline_dir, tmp_path, smoke_data_root):
    out = tmp_path / "out"
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--iharmony4-root", str(smoke_data_root),
               "--split", "test", "--out-dir", str(out), "--steps", "1", "--batch-size", "8", "--quiet"])  # fmt: skip
    assert rc == 0
    assert len(list(out.glob("*.png"))) >= 8

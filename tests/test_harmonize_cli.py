"""``harmonylib harmonize`` on a tiny saved pipeline."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harmonylib.cli import main
from harmonylib.models.tiny import build_tiny_pipeline

ROOT = Path(__file__).resolve().parents[1]


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

    # a --pipeline folder that does not exist is named; without --pipeline the committed release is
    # used (tests/test_harmonize_acceptance.py), and a release that is missing is named with its remedy
    rc = main(["harmonize", "--pipeline", str(tmp_path / "nowhere"), "--image", str(comp / "img0_1_1.jpg"),
               "--mask", str(masks / "img0_1_1.png"), "--out", str(tmp_path / "x.png"), "--quiet"])  # fmt: skip
    assert rc == 2 and f"--pipeline {tmp_path / 'nowhere'}: folder does not exist" in capsys.readouterr().err
    from harmonylib import release

    monkeypatch.setattr(release, "released_dir", lambda cfg: tmp_path / "no_release")
    rc = main(["harmonize", "--image", str(comp / "img0_1_1.jpg"), "--mask", str(masks / "img0_1_1.png"),
               "--out", str(tmp_path / "x.png"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "no released Harmony-VAE" in err and "make retrain" in err and "--pipeline" in err


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


# ---- a user's mistakes: one line naming the path and the problem, exit status 2 ----------------


def _one(pipeline_dir, comp, masks, *extra):
    return ["harmonize", "--pipeline", str(pipeline_dir), "--image", str(comp / "img0_1_1.jpg"),
            "--mask", str(masks / "img0_1_1.png"), "--quiet", *extra]  # fmt: skip


def _single_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_output_inside_a_file(pipeline_dir, tmp_path, capsys):
    comp, masks = _write_pairs(tmp_path, sizes=((32, 32),))
    target = comp / "img0_1_1.jpg" / "o.png"
    assert main(_one(pipeline_dir, comp, masks, "--out", str(target))) == 2
    assert (
        _single_error_line(capsys)
        == f"harmonize: --out {target}: {comp / 'img0_1_1.jpg'} is a file, not a folder"
    )
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--input-dir", str(comp), "--mask-dir", str(masks),
               "--out-dir", str(comp / "img0_1_1.jpg"), "--quiet"])  # fmt: skip
    assert rc == 2 and "is a file, not a folder" in _single_error_line(capsys)


def test_output_in_an_unwritable_folder(pipeline_dir, tmp_path, capsys, monkeypatch):
    comp, masks = _write_pairs(tmp_path, sizes=((32, 32),))
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access  # root writes anywhere: simulate the refusal a user would meet
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == ro else real_access(p, m))
    assert main(_one(pipeline_dir, comp, masks, "--out", str(ro / "o.png"))) == 2
    assert _single_error_line(capsys) == f"harmonize: --out {ro / 'o.png'}: folder {ro} is not writable"


def test_output_without_an_extension(pipeline_dir, tmp_path, capsys):
    comp, masks = _write_pairs(tmp_path, sizes=((32, 32),))
    assert main(_one(pipeline_dir, comp, masks, "--out", str(tmp_path / "result"))) == 2
    assert "result: no file extension" in _single_error_line(capsys)
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--input-dir", str(comp), "--mask-dir", str(masks),
               "--out-dir", str(tmp_path / "o"), "--ext", "nope", "--quiet"])  # fmt: skip
    assert rc == 2 and ".nope is not an image format" in _single_error_line(capsys)
    assert not (tmp_path / "result").exists() and not (tmp_path / "o").exists()


def test_size_rule_is_in_help_and_enforced(pipeline_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["harmonize", "--help"])
    assert "multiple of 8" in " ".join(capsys.readouterr().out.split())
    comp, masks = _write_pairs(tmp_path, sizes=((32, 32),))
    assert main(_one(pipeline_dir, comp, masks, "--out", str(tmp_path / "o.png"), "--size", "300")) == 2
    assert _single_error_line(capsys).startswith("harmonize: --size 300: must be a positive multiple of 8")


def test_outputs_have_the_usual_permissions(pipeline_dir, tmp_path):
    comp, masks = _write_pairs(tmp_path, sizes=((32, 32),))
    old = os.umask(0o022)
    try:
        assert main(_one(pipeline_dir, comp, masks, "--out", str(tmp_path / "o.png"), "--steps", "1")) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "o.png").stat().st_mode) == 0o644


def test_transparent_composite_warns_naming_the_file(pipeline_dir, tmp_path, capsys):
    comp, masks = _write_pairs(tmp_path, sizes=((32, 32),))
    rgba = np.full((32, 32, 4), 200, np.uint8)
    rgba[..., 3] = 100  # semi-transparent everywhere
    Image.fromarray(rgba, "RGBA").save(comp / "t.png")
    rc = main(["harmonize", "--pipeline", str(pipeline_dir), "--image", str(comp / "t.png"), "--mask",
               str(masks / "img0_1_1.png"), "--out", str(tmp_path / "o.png"), "--steps", "1", "--quiet"])  # fmt: skip
    assert rc == 0
    line = _single_error_line(capsys)
    assert line.startswith(f"harmonize: warning: {comp / 't.png'}: 1024 of 1024 pixels are transparent")


def test_quiet_is_quiet(pipeline_dir, tmp_path):
    """A real process, so that diffusers' loading bar and Python's warning filters are the user's."""
    comp, masks = _write_pairs(tmp_path, sizes=((32, 32),))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)
    cmd = [
        sys.executable,
        "-m",
        "harmonylib",
        *_one(pipeline_dir, comp, masks, "--out", str(tmp_path / "o.png")),
    ]
    res = subprocess.run([*cmd, "--steps", "1"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr == ""
    assert (tmp_path / "o.png").is_file()

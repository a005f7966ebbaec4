"""Image reading names the file on failure; atomic writes leave nothing half-written."""

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonylib.io import (
    ImageReadError,
    OutputPathError,
    TransparencyWarning,
    atomic_path,
    atomic_save_image,
    atomic_write_text,
    check_image_output,
    check_output_path,
    load_mask_l,
    load_rgb,
)


def test_modes_convert_to_rgb(tmp_path):
    rgba = Image.new("RGBA", (4, 3), (200, 100, 50, 255))
    rgba.save(tmp_path / "a.png")
    Image.new("CMYK", (4, 3), (0, 0, 0, 0)).save(tmp_path / "c.jpg")
    Image.fromarray(np.full((3, 4), 65535, np.uint16)).save(tmp_path / "d.png")
    assert load_rgb(tmp_path / "a.png").getpixel((0, 0)) == (200, 100, 50)
    assert load_rgb(tmp_path / "c.jpg").mode == "RGB"
    assert load_rgb(tmp_path / "d.png").getpixel((0, 0)) == (255, 255, 255)
    assert load_mask_l(tmp_path / "d.png").getpixel((0, 0)) == 255


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (4, 2), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_rgb(tmp_path / "r.jpg").size == (2, 4)
    assert load_rgb(tmp_path / "r.jpg", exif_transpose=False).size == (4, 2)


def test_missing_and_truncated_files_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="nope.png: file does not exist"):
        load_rgb(tmp_path / "nope.png")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="t.jpg: cannot read image"):
        load_rgb(tmp_path / "t.jpg")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    atomic_save_image(tmp_path / "img.png", Image.new("L", (2, 2), 255))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "out.txt"]


def test_outputs_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_save_image(tmp_path / "a.png", Image.new("L", (2, 2), 255))
        atomic_write_text(tmp_path / "a.txt", "x")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600


def test_bad_output_paths_name_the_users_path(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputPathError, match=r"file.txt/o.png: .*file.txt is a file, not a folder"):
        atomic_save_image(tmp_path / "file.txt" / "o.png", Image.new("L", (2, 2)))
    with pytest.raises(OutputPathError, match=r"--out .*/noext: no file extension"):
        check_image_output(tmp_path / "noext", "--out")
    with pytest.raises(OutputPathError, match=r"o.xyz: .xyz is not an image format"):
        atomic_save_image(tmp_path / "o.xyz", Image.new("L", (2, 2)))
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_path(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # no hidden temporary left


def test_unwritable_folder_is_named(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    # root may write anywhere, so the refusal is simulated where a real one cannot happen
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == ro else real_access(p, m))
    with pytest.raises(OutputPathError, match=r"ro/sub/o.png: folder .*ro is not writable"):
        atomic_save_image(ro / "sub" / "o.png", Image.new("L", (2, 2)))


def test_write_failure_names_the_destination_not_the_temporary(tmp_path, monkeypatch):
    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied", kwargs["dir"] / ".o.png.x.png")

    monkeypatch.setattr("harmonylib.io.tempfile.mkstemp", refuse)
    with pytest.raises(OutputPathError) as info:
        atomic_save_image(tmp_path / "o.png", Image.new("L", (2, 2)))
    assert str(info.value) == f"{tmp_path / 'o.png'}: cannot write (Permission denied)"


def test_semi_transparent_rgba_warns(tmp_path):
    arr = np.zeros((3, 4, 4), np.uint8)
    arr[..., 0] = 200
    arr[..., 3] = 255
    arr[0, 0, 3] = 128
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    with pytest.warns(TransparencyWarning, match=r"t.png: 1 of 12 pixels are transparent"):
        img = load_rgb(tmp_path / "t.png")
    assert img.getpixel((0, 0)) == (100, 0, 0)  # flattened on black: 200 * 128/255
    assert img.getpixel((1, 0)) == (200, 0, 0)
    la = Image.new("LA", (2, 2), (90, 0))
    la.save(tmp_path / "la.png")
    with pytest.warns(TransparencyWarning):
        assert load_rgb(tmp_path / "la.png").getpixel((0, 0)) == (0, 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # opaque RGBA: no warning
        Image.fromarray(np.full((2, 2, 4), 255, np.uint8), "RGBA").save(tmp_path / "o.png")
        load_rgb(tmp_path / "o.png")

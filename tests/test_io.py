"""Image reading names the file on failure; atomic writes leave nothing half-written."""

import numpy as np
import pytest
from PIL import Image

from harmonylib.io import ImageReadError, atomic_path, atomic_save_image, load_mask_l, load_rgb


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

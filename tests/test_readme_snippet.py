"""The README's "Use it on your own images" section runs as written (about 10 s on one CPU thread).

The Python block is taken from README.md and executed, unchanged, in a temporary folder holding a
composite made from ``skimage.data.astronaut`` (a recoloured box) and its mask; it loads the
committed mini release. The shell one-liner's options are checked against the real parser.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use it on your own images"


def _section() -> str:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end > 0 else None]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(), flags=re.S)


def test_python_snippet_runs_as_written(tmp_path, monkeypatch):
    (code,) = [b for b in _blocks("python") if "from_pretrained" in b]
    assert len(code.strip().splitlines()) <= 8  # the README promises a short snippet
    from skimage import data

    real = data.astronaut()[::4, ::4]  # (128, 128, 3) uint8
    mask = np.zeros(real.shape[:2], np.uint8)
    mask[32:96, 40:100] = 255
    comp = real.astype(float)
    comp[mask > 0] *= (1.25, 0.9, 0.7)  # a warm cast on the foreground: the composite
    comp = comp.clip(0, 255).astype(np.uint8)
    Image.fromarray(comp).save(tmp_path / "comp.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_snippet"})
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert out.shape == comp.shape
    bg = mask == 0
    np.testing.assert_array_equal(out[bg], comp[bg])  # the input's background is pasted back
    assert np.abs(out[~bg].astype(int) - comp[~bg]).mean() > 1  # the foreground was changed


def test_shell_one_liner_uses_real_options(capsys):
    from harmonylib import cli

    (block,) = [b for b in _blocks("bash") if "harmonylib harmonize" in b]
    args = shlex.split(block.strip())
    assert args[0].endswith("harmonylib") and args[1] == "harmonize"
    with pytest.raises(SystemExit):
        cli.main(["harmonize", "--help"])
    help_text = capsys.readouterr().out
    for opt in (a for a in args[2:] if a.startswith("--")):
        assert re.search(rf"\s{re.escape(opt)}\b", help_text), f"README uses {opt}, which harmonize lacks"

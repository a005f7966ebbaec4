"""Writing a figure: PNG (and PDF where asked), atomically, at one resolution for every figure."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt

from harmonylib.io import atomic_path


def _save(fig: plt.Figure, out: str | os.PathLike, pdf: bool = False) -> list[Path]:
    out = Path(out)
    written = []
    for suffix in (".png", ".pdf") if pdf else (".png",):
        dest = out.with_suffix(suffix)
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150, bbox_inches="tight")
        written.append(dest)
    return written

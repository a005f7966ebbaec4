"""Shared fixtures: the smoke built-in dataset, and tiny datasets in the real iHarmony4 layout."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# One intra-op thread: on a 2-core machine that also runs notebook kernels and helper processes,
# torch's default thread pool oversubscribes the cores and slows the tiny-model tests ~10x.
# Results do not depend on it (tests that compare runs run both sides in this process).
torch.set_num_threads(1)

# The default tiny iHarmony4 fixture: (subset, composite stem, split). It covers shared masks and
# reals, HCOCO's long annotation ids and Hday2night's hyphenated ids.
IHARMONY4_FIXTURE: tuple[tuple[str, str, str], ...] = (
    ("HCOCO", "c100300_1602094_1", "train"),
    ("HCOCO", "c100300_1602094_2", "train"),
    ("HCOCO", "c100300_1602095_1", "train"),
    ("HCOCO", "c42_7_1", "test"),
    ("HAdobe5k", "a0001_1_1", "train"),
    ("HAdobe5k", "a0001_1_2", "test"),
    ("HFlickr", "f800_1_1", "train"),
    ("HFlickr", "f801_2_3", "test"),
    ("Hday2night", "d21901-20130410-181833_1_9", "train"),
    ("Hday2night", "d21901-20130410-181833_1_1", "test"),
)


def _pixels(key: str, size: tuple[int, int], channels: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    w, h = size
    if channels == 1:
        m = np.zeros((h, w), np.uint8)
        m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        return m
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_iharmony4(
    root: Path,
    items: Iterable[tuple[str, str, str]] = IHARMONY4_FIXTURE,
    styles: Iterable[str] = ("ihd", "jsonl", "subset"),
    size: tuple[int, int] = (20, 16),
) -> Path:
    """Write composites, masks, reals and lists in the real iHarmony4 layout under ``root``."""
    items = list(items)
    for subset, stem, _ in items:
        d = root / subset
        for sub in ("composite_images", "masks", "real_images"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pixels(stem, size, 3)).save(d / "composite_images" / f"{stem}.jpg", quality=95)
        mask = stem.rsplit("_", 1)[0]
        if not (d / "masks" / f"{mask}.png").exists():
            Image.fromarray(_pixels(mask, size, 1), "L").save(d / "masks" / f"{mask}.png")
        real = stem.split("_", 1)[0]
        if not (d / "real_images" / f"{real}.jpg").exists():
            Image.fromarray(_pixels(real, size, 3)).save(d / "real_images" / f"{real}.jpg", quality=95)
    styles = set(styles)
    for split in ("train", "test"):
        rows = [(s, n) for s, n, sp in items if sp == split]
        entries = [f"{s}/composite_images/{n}.jpg" for s, n in rows]
        if "ihd" in styles:
            (root / f"IHD_{split}.txt").write_text("".join(e + "\n" for e in entries))
        if "jsonl" in styles:
            (root / f"{split}.jsonl").write_text(
                "".join(json.dumps({"file_name": e, "text": ""}) + "\n" for e in entries)
            )
        if "subset" in styles:
            for s in sorted({s for s, _ in rows}):
                (root / s / f"{s}_{split}.txt").write_text("".join(f"{n}.jpg\n" for s2, n in rows if s2 == s))
    return root


@pytest.fixture
def iharmony4_factory() -> Callable[..., Path]:
    """``write_iharmony4(root, items=..., styles=..., size=...)``: a tiny dataset in the real layout."""
    return write_iharmony4


@pytest.fixture
def iharmony4_root(tmp_path: Path) -> Path:
    """The default tiny iHarmony4-layout dataset with all three list styles."""
    return write_iharmony4(tmp_path / "iHarmony4")


@pytest.fixture(scope="session")
def smoke_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke profile's built-in dataset, built once per session (about a second)."""
    from harmonylib.config import load_config
    from harmonylib.data.builtin import build_builtin

    root = tmp_path_factory.mktemp("builtin") / "smoke"
    build_builtin(load_config("smoke").data.builtin, root)
    return root

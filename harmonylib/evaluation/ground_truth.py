"""A test set's ground truth, prepared once by the authors' protocol and cached (memory and ``.npz``).

Scoring many methods on one test set decodes its reals and masks once. Pasting a background into a
prediction leaves the foreground error as it is, so the composite itself is not kept: only its
background error against the real, summed once (``composite_bg_sum``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from harmonylib.evaluation.parallel import _ordered_map, _progress, default_workers
from harmonylib.io import atomic_path, load_mask_l, load_rgb
from harmonylib.metrics import evaluation_mask, resize_rgb, squared_error_sums

_CACHE_VERSION = 1


class SampleLike(Protocol):
    """What the evaluator needs of a sample (``harmonylib.data.iharmony4.Sample`` has it)."""

    name: str  # composite stem, e.g. "a0001_1_1"
    subset: str
    composite: Path
    mask: Path
    real: Path


@dataclass
class GroundTruth:
    """A test set's ground truth, prepared by the protocol at one resolution and mask mode.

    The composite itself is not kept: pasting its background makes the background error
    ``Σ_bg (composite − real)²``, which depends on the ground truth only, so it is summed once.
    """

    key: str
    names: list[str]
    subsets: list[str]
    real: np.ndarray  # (N, R, R, 3) uint8, resized
    mask: np.ndarray  # (N, R, R) bool, binarised then resized
    composite_bg_sum: np.ndarray | None = None  # (N,) int64 Σ_bg (composite − real)², all channels

    @property
    def n_fg(self) -> np.ndarray:
        """(N,) foreground pixel counts at the metric resolution."""
        return self.mask.sum(axis=(1, 2), dtype=np.int64)


def _stat(path: str) -> list[int]:
    try:
        st = os.stat(path)
    except OSError:
        return [-1, -1]
    return [st.st_size, st.st_mtime_ns]


def ground_truth_key(samples: Sequence[SampleLike], resolution: int, mask_mode: str) -> str:
    """A hash of the sample list's content: names, subsets, paths, and each file's size and mtime.

    Editing the list, or any of its files, gives a new key, so a stale cache is never used.
    """
    h = hashlib.sha256()
    h.update(json.dumps({"v": _CACHE_VERSION, "resolution": resolution, "mask_mode": mask_mode}).encode())
    for s in samples:
        row = [s.name, s.subset]
        for p in (s.real, s.mask, s.composite):
            p = os.path.abspath(p)
            row += [p, *_stat(p)]
        h.update(json.dumps(row).encode() + b"\n")
    return h.hexdigest()[:20]


def _composite_bg_sum(composite: np.ndarray, real: np.ndarray, mask: np.ndarray) -> int:
    fg, total = squared_error_sums(composite, real, mask)
    return int(total - fg)


class GroundTruthCache:
    """Keeps prepared ground truth (resized real, binarised mask) per test set.

    In memory always; also as ``<cache_dir>/gt-<key>.npz`` when ``cache_dir`` is given, so a
    later process reuses it. The key is :func:`ground_truth_key`. About 200 KB per image at 256
    (the full iHarmony4 test set: 1.5 GB).

    Args:
        cache_dir: folder for the ``.npz`` files, or None for memory only.
        workers: decoding threads (default :func:`default_workers`).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, workers: int | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.workers = workers or default_workers()
        self._entries: dict[str, GroundTruth] = {}

    def clear(self) -> None:
        """Forget the in-memory entries (files in ``cache_dir`` stay)."""
        self._entries.clear()

    def _file(self, key: str) -> Path | None:
        return self.cache_dir / f"gt-{key}.npz" if self.cache_dir is not None else None

    def _read(self, key: str, n: int, resolution: int) -> GroundTruth | None:
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                real = z["real"]
                mask = np.unpackbits(z["mask_bits"], axis=-1, count=resolution).astype(bool)
                comp = z["composite_bg_sum"] if "composite_bg_sum" in z.files else None
        except (OSError, ValueError, KeyError):
            return None  # unreadable or from another version: rebuild
        if real.shape != (n, resolution, resolution, 3) or mask.shape != (n, resolution, resolution):
            return None
        return GroundTruth(key, meta["names"], meta["subsets"], real, mask, comp)

    def _write(self, gt: GroundTruth) -> None:
        path = self._file(gt.key)
        if path is None:
            return
        arrays = {
            "meta": np.array(json.dumps({"names": gt.names, "subsets": gt.subsets})),
            "real": gt.real,
            "mask_bits": np.packbits(gt.mask, axis=-1),  # (N, R, R/8) uint8
        }
        if gt.composite_bg_sum is not None:
            arrays["composite_bg_sum"] = gt.composite_bg_sum
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)

    def get(
        self,
        samples: Sequence[SampleLike],
        resolution: int = 256,
        mask_mode: str = "dither",
        with_composite: bool = False,
        progress: bool = False,
    ) -> GroundTruth:
        """The prepared ground truth of ``samples``; decoded only if not cached.

        Args:
            samples: the test set, in order.
            resolution: the side the metrics are computed at.
            mask_mode: ``"dither"`` or ``"threshold"`` (see ``imageproc.evaluation_mask``).
            with_composite: also sum the composites' background errors (for
                ``background="composite"``); added to a cached entry when missing.
            progress: show a progress bar while decoding.
        """
        samples = list(samples)
        key = ground_truth_key(samples, resolution, mask_mode)
        gt = self._entries.get(key) or self._read(key, len(samples), resolution)
        changed = gt is None
        if gt is None:
            gt = self._build(samples, key, resolution, mask_mode, with_composite, progress)
        elif with_composite and gt.composite_bg_sum is None:
            gt.composite_bg_sum = self._composite_sums(samples, gt, progress)
            changed = True
        self._entries[key] = gt
        if changed:
            self._write(gt)
        return gt

    def _build(self, samples, key, resolution, mask_mode, with_composite, progress) -> GroundTruth:
        n, r = len(samples), resolution
        real = np.empty((n, r, r, 3), np.uint8)  # (N, R, R, 3)
        mask = np.empty((n, r, r), bool)  # (N, R, R)
        comp_bg = np.zeros(n, np.int64) if with_composite else None

        def load(i: int):
            s = samples[i]
            # exif_transpose=False: the authors' evaluator reads the stored pixel order.
            re = resize_rgb(load_rgb(s.real, exif_transpose=False), r)
            ma = evaluation_mask(load_mask_l(s.mask, exif_transpose=False), r, mask_mode)
            cb = None
            if with_composite:
                cb = _composite_bg_sum(resize_rgb(load_rgb(s.composite, exif_transpose=False), r), re, ma)
            return i, re, ma, cb

        with _progress(n, "ground truth", progress) as bar:
            for i, re, ma, cb in _ordered_map(load, range(n), self.workers):
                real[i], mask[i] = re, ma
                if comp_bg is not None:
                    comp_bg[i] = cb
                bar.update(1)
        return GroundTruth(key, [s.name for s in samples], [s.subset for s in samples], real, mask, comp_bg)

    def _composite_sums(self, samples, gt: GroundTruth, progress) -> np.ndarray:
        n, r = len(samples), gt.real.shape[1]
        out = np.zeros(n, np.int64)

        def load(i: int):
            comp = resize_rgb(load_rgb(samples[i].composite, exif_transpose=False), r)
            return i, _composite_bg_sum(comp, gt.real[i], gt.mask[i])

        with _progress(n, "composites", progress) as bar:
            for i, v in _ordered_map(load, range(n), self.workers):
                out[i] = v
                bar.update(1)
        return out

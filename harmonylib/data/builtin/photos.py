"""The built-in dataset's photographs: which ones, where they lie inside installed packages, their split.

Photos are real photographs shipped in packages (scikit-image's ``data`` folder, matplotlib's
``sample_data``, scikit-learn's ``datasets/images``) or in harmonylib's vendored photo set; their
files are read in place, never downloaded. Whole photos are held out per split (:data:`PHOTOS`),
so train and test never share a scene. The scikit-image horse silhouette (a mask shape) is found
the same way.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from harmonylib.io import load_rgb

_PHOTO_SIDE_FACTOR = 6  # photos are pre-shrunk once to shorter side <= 6 * image_size


class BuiltinDataError(RuntimeError):
    """The built-in dataset cannot be built (too few photos) or its folder is not ours."""


@dataclass(frozen=True)
class PhotoSpec:
    """A photograph shipped in an installed package, and the split it belongs to."""

    name: str
    package: str
    relpath: str  # inside the package folder
    split: str


# The fixed train/test assignment of whole photos. The two stereo_motorcycle views show one
# scene, so both are train. The test photos are three ordinary photographs of unrelated scenes.
PHOTOS: tuple[PhotoSpec, ...] = (
    PhotoSpec("astronaut", "skimage", "data/astronaut.png", "train"),
    PhotoSpec("rocket", "skimage", "data/rocket.jpg", "train"),
    PhotoSpec("motorcycle_left", "skimage", "data/motorcycle_left.png", "train"),
    PhotoSpec("motorcycle_right", "skimage", "data/motorcycle_right.png", "train"),
    PhotoSpec("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "train"),
    PhotoSpec("immunohistochemistry", "skimage", "data/ihc.png", "train"),
    PhotoSpec("retina", "skimage", "data/retina.jpg", "train"),
    PhotoSpec("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "train"),
    PhotoSpec("flower", "sklearn", "datasets/images/flower.jpg", "train"),
    PhotoSpec("chelsea", "skimage", "data/chelsea.png", "test"),
    PhotoSpec("coffee", "skimage", "data/coffee.png", "test"),
    PhotoSpec("china", "sklearn", "datasets/images/china.jpg", "test"),
)
_MIN_PHOTOS = {"train": 3, "val": 1, "test": 2}
# Not scenes: kept out of the "vendored" set's harmonization data (mini-v2: the train split was
# really about 5 natural scenes, and these three are micrographs / astronomy).
_NOT_SCENES = frozenset({"hubble_deep_field", "immunohistochemistry", "retina"})


def photo_specs(photo_set: str = "packages") -> tuple[PhotoSpec, ...]:
    """The photographs of a photo set, each with its split.

    ``packages``: :data:`PHOTOS` (the photos inside installed packages). ``vendored``: the
    scenes among them (:data:`_NOT_SCENES` dropped) plus every scene of the vendored photo set
    (``harmonylib/assets/photos/MANIFEST.csv``, read by :mod:`harmonylib.data.photo_set`), with
    the split its manifest gives.
    """
    if photo_set == "packages":
        return PHOTOS
    if photo_set != "vendored":
        raise ValueError(f"unknown photo_set {photo_set!r}; allowed: ['packages', 'vendored']")
    from harmonylib.data import photo_set as ps

    specs = [p for p in PHOTOS if p.name not in _NOT_SCENES]
    specs += [PhotoSpec(e.name, "harmonylib", f"assets/photos/{e.file}", e.split) for e in ps.scenes()]
    return tuple(specs)


_HORSE = ("skimage", "data/horse.png")


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # does not import the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _package_file(package: str, relpath: str) -> Path | None:
    """The file ``relpath`` inside an installed package, or None (never downloads)."""
    base = _package_dir(package)
    if base is None:
        return None
    path = (base / relpath).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def available_photos(
    photo_set: str = "packages", splits: Sequence[str] = ("train", "test")
) -> tuple[list[tuple[PhotoSpec, Path]], list[str]]:
    """(photos found with their paths, names of photos skipped with a warning)."""
    found, skipped = [], []
    for spec in photo_specs(photo_set):
        path = _package_file(spec.package, spec.relpath)
        if path is None:
            warnings.warn(
                f"built-in data: photo {spec.name!r} ({spec.package}/{spec.relpath}) "
                "is not installed; skipping it",
                stacklevel=2,
            )
            skipped.append(spec.name)
        else:
            found.append((spec, path))
    for split in splits:
        need = _MIN_PHOTOS[split]
        have = sum(1 for s, _ in found if s.split == split)
        if have < need:
            raise BuiltinDataError(
                f"built-in data: only {have} {split} photos are installed, need {need}; skipped: {skipped}"
            )
    return found, skipped


def _load_photo(path: Path, image_size: int) -> Image.Image:
    """The photo as RGB, shrunk once so its shorter side is at most 6 * image_size."""
    img = load_rgb(path)
    short = min(img.size)
    limit = _PHOTO_SIDE_FACTOR * image_size
    if short > limit:
        s = limit / short
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
    return img


@lru_cache(maxsize=1)
def _horse() -> np.ndarray | None:
    """The scikit-image horse silhouette, bool, cropped to its bounding box; None if absent."""
    path = _package_file(*_HORSE)
    if path is None:
        return None
    arr = np.asarray(Image.open(path).convert("RGBA"))
    sil = (arr[..., :3].mean(-1) < 128) & (arr[..., 3] > 127)  # black horse on white
    ys, xs = np.nonzero(sil)
    return sil[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]

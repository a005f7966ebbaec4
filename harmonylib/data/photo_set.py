"""The vendored photo set: real photographs shipped in ``harmonylib/assets/photos``.

Two kinds of file, one row each in ``MANIFEST.csv``:

* ``scene``: a whole photograph (JPEG, shorter side 384 px), assigned to one split
  (``train``/``val``/``test``); a scene never appears in two splits.
* ``stamp``: a photographic object cut-out with alpha (PNG, longest side <= 128 px) from Tux Paint's
  stamps; all ``train``. They serve pretraining and may serve as foreground objects.

Each row names its Debian source package and version, the original file, its author and its
licence (SPDX id); ``LICENSES/`` holds the texts. How the set was made:
``harmonylib/assets/photos/README.md`` and :mod:`harmonylib.data.photo_set_build`.

Scene photographs already inside installed packages (scikit-image, matplotlib, scikit-learn) are
not vendored; :data:`PACKAGE_SCENES` lists those that count as natural scenes, so that
:func:`scene_count` gives the total the project trains and tests on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:  # importlib.resources.abc exists from Python 3.11; annotations only
    from importlib.resources.abc import Traversable

MANIFEST_COLUMNS = (
    "name",
    "file",
    "kind",
    "split",
    "source_package",
    "package_version",
    "original_file",
    "author",
    "licence",
    "sha256",
)
KINDS = ("scene", "stamp")
SPLITS = ("train", "val", "test")
SCENE_SHORT_SIDE = 384  # px; the generator's photos are pre-shrunk to at most this
STAMP_LONG_SIDE = 128  # px
MAX_TOTAL_BYTES = 10_000_000  # issue 10: the vendored set stays within 10 MB
# Reserved as an outside test set (issue 10): nothing may come from it.
FORBIDDEN_PACKAGES = frozenset({"plasma-workspace-wallpapers"})
# SPDX id -> text file in LICENSES/; only these licences are accepted.
LICENSE_FILES: dict[str, str] = {
    "GPL-2.0-only": "GPL-2.0.txt",
    "GPL-2.0-or-later": "GPL-2.0.txt",
    "CC-BY-4.0": "CC-BY-4.0.txt",
    "CC-BY-SA-3.0": "CC-BY-SA-3.0.txt",
    "CC-BY-SA-4.0": "CC-BY-SA-4.0.txt",
    "CC0-1.0": "CC0-1.0.txt",
}
_NAME = re.compile(r"^[a-z0-9_]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUFFIX = {"scene": ("scenes/", ".jpg"), "stamp": ("stamps/", ".png")}


@dataclass(frozen=True)
class PhotoEntry:
    """One row of ``MANIFEST.csv``: a vendored file, its split and its provenance."""

    name: str
    file: str  # relative to the photo-set folder, e.g. "scenes/mate_aqua.jpg"
    kind: str  # "scene" | "stamp"
    split: str  # "train" | "val" | "test"
    source_package: str
    package_version: str
    original_file: str  # path inside the Debian package
    author: str
    licence: str  # SPDX id, a key of LICENSE_FILES
    sha256: str


@dataclass(frozen=True)
class PackageScene:
    """A scene photograph read from an installed package (not vendored), and its split."""

    name: str
    package: str
    relpaths: tuple[str, ...]  # inside the package folder; several views of one scene count once
    split: str


# The natural scenes among the photos harmonylib.data.builtin reads from installed packages, with
# the splits it gives them. Hubble deep field, immunohistochemistry and retina are not scenes.
PACKAGE_SCENES: tuple[PackageScene, ...] = (
    PackageScene("astronaut", "skimage", ("data/astronaut.png",), "train"),
    PackageScene("rocket", "skimage", ("data/rocket.jpg",), "train"),
    PackageScene("motorcycle", "skimage", ("data/motorcycle_left.png", "data/motorcycle_right.png"), "train"),
    PackageScene("grace_hopper", "matplotlib", ("mpl-data/sample_data/grace_hopper.jpg",), "train"),
    PackageScene("flower", "sklearn", ("datasets/images/flower.jpg",), "train"),
    PackageScene("chelsea", "skimage", ("data/chelsea.png",), "test"),
    PackageScene("coffee", "skimage", ("data/coffee.png",), "test"),
    PackageScene("china", "sklearn", ("datasets/images/china.jpg",), "test"),
)


def photo_root() -> Traversable:
    """The installed photo-set folder (``harmonylib/assets/photos``)."""
    return files("harmonylib") / "assets" / "photos"


def _check_row(row: dict[str, str], where: str) -> PhotoEntry:
    for col in MANIFEST_COLUMNS:
        if not (row.get(col) or "").strip():
            raise ValueError(f"{where}: column {col!r} is empty")
    e = PhotoEntry(**{c: row[c] for c in MANIFEST_COLUMNS})
    if not _NAME.match(e.name):
        raise ValueError(f"{where}: name {e.name!r} is not lower-case [a-z0-9_]")
    if e.kind not in KINDS:
        raise ValueError(f"{where}: kind {e.kind!r} is not one of {KINDS}")
    if e.split not in SPLITS:
        raise ValueError(f"{where}: split {e.split!r} is not one of {SPLITS}")
    if e.kind == "stamp" and e.split != "train":
        raise ValueError(f"{where}: stamp {e.name!r} has split {e.split!r}; stamps are train only")
    folder, suffix = _SUFFIX[e.kind]
    if e.file != f"{folder}{e.name}{suffix}":
        raise ValueError(f"{where}: file {e.file!r} should be {folder}{e.name}{suffix} for a {e.kind}")
    if e.licence not in LICENSE_FILES:
        raise ValueError(f"{where}: licence {e.licence!r} is not one of {sorted(LICENSE_FILES)}")
    if e.source_package in FORBIDDEN_PACKAGES:
        raise ValueError(f"{where}: {e.source_package} is reserved as an outside test set")
    if not _SHA256.match(e.sha256):
        raise ValueError(f"{where}: sha256 {e.sha256!r} is not 64 lower-case hex digits")
    return e


def parse_manifest(text: str, source: str = "MANIFEST.csv") -> tuple[PhotoEntry, ...]:
    """Entries of a manifest given as text; ``source`` names it in errors.

    Raises:
        ValueError: wrong header, a bad value (the message names ``source`` and the row, counting
            the header as row 1), or a name or file used twice.
    """
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
        raise ValueError(f"{source}: header {reader.fieldnames} should be {list(MANIFEST_COLUMNS)}")
    entries, seen = [], {}
    for i, row in enumerate(reader, start=2):
        where = f"{source}: row {i}"
        if None in row or len(row) != len(MANIFEST_COLUMNS):
            raise ValueError(f"{where}: expected {len(MANIFEST_COLUMNS)} columns")
        e = _check_row(row, where)
        for key in (e.name, e.file):
            if key in seen:
                raise ValueError(f"{where}: {key!r} already used in row {seen[key]}")
            seen[key] = i
        entries.append(e)
    if not entries:
        raise ValueError(f"{source}: no rows")
    return tuple(entries)


@lru_cache(maxsize=1)
def load_manifest() -> tuple[PhotoEntry, ...]:
    """All entries of the installed ``MANIFEST.csv``, validated (see :func:`parse_manifest`)."""
    path = photo_root() / "MANIFEST.csv"
    return parse_manifest(path.read_text(encoding="utf-8"), source=str(path))


def scenes(split: str | None = None) -> tuple[PhotoEntry, ...]:
    """The vendored scenes, optionally of one split."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    return tuple(e for e in load_manifest() if e.kind == "scene" and split in (None, e.split))


def stamps() -> tuple[PhotoEntry, ...]:
    """The vendored photographic stamps (all train)."""
    return tuple(e for e in load_manifest() if e.kind == "stamp")


def scene_count() -> dict[str, int]:
    """Distinct scenes per split, vendored plus :data:`PACKAGE_SCENES`, and ``"all"``."""
    counts = Counter(e.split for e in scenes()) + Counter(s.split for s in PACKAGE_SCENES)
    out = {s: counts.get(s, 0) for s in SPLITS}
    out["all"] = sum(out.values())
    return out


def open_photo(entry: PhotoEntry) -> Image.Image:
    """The entry's image, loaded: RGB for a scene, RGBA for a stamp."""
    with (photo_root() / entry.file).open("rb") as f:
        img = Image.open(f)
        img.load()
    return img.convert("RGB" if entry.kind == "scene" else "RGBA")


def verify_assets(root: Path | Traversable | None = None) -> list[str]:
    """Problems with a photo-set folder; empty when the manifest matches the files exactly.

    Checks: the manifest parses; every listed file exists with its sha256; no unlisted file lies
    in ``scenes/`` or ``stamps/``; every licence named has its non-empty text in ``LICENSES/``.
    """
    root = photo_root() if root is None else root
    manifest = root / "MANIFEST.csv"
    try:
        entries = parse_manifest(manifest.read_text(encoding="utf-8"), source=str(manifest))
    except (OSError, ValueError) as err:
        return [str(err)]
    problems = []
    for e in entries:
        f = root / e.file
        if not f.is_file():
            problems.append(f"{e.file}: listed in MANIFEST.csv but missing")
        elif hashlib.sha256(f.read_bytes()).hexdigest() != e.sha256:
            problems.append(f"{e.file}: sha256 differs from MANIFEST.csv")
    listed = {e.file for e in entries}
    for folder in ("scenes", "stamps"):
        d = root / folder
        for f in d.iterdir() if d.is_dir() else ():
            if f"{folder}/{f.name}" not in listed:
                problems.append(f"{folder}/{f.name}: present but not in MANIFEST.csv")
    for lic in sorted({e.licence for e in entries}):
        text = root / "LICENSES" / LICENSE_FILES[lic]
        if not text.is_file() or not text.read_text(encoding="utf-8").strip():
            problems.append(f"LICENSES/{LICENSE_FILES[lic]}: text of {lic} missing or empty")
    return problems

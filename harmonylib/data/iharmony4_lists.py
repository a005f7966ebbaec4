"""iHarmony4's split list files in their three styles: find which exist, read entries, write the others.

Styles (``ListStyle``): ``ihd`` -- ``<root>/IHD_<split>.txt``, entries relative to the root
(``HCOCO/composite_images/c1_2_3.jpg``); ``jsonl`` -- ``<root>/<split>.jsonl``, the DiffHarmony
authors' ``{"file_name": ..., "text": ""}`` lines; ``subset`` -- ``<root>/<Subset>/<Subset>_<split>.txt``,
bare composite file names. :func:`harmonylib.data.iharmony4.read_split` turns entries into samples.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from harmonylib.config import SUBSETS
from harmonylib.io import atomic_write_text
from harmonylib.paths import resolve

ListStyle = Literal["auto", "ihd", "jsonl", "subset"]
LIST_STYLES = ("auto", "ihd", "jsonl", "subset")
SPLITS = ("train", "test")


class DataIntegrityError(ValueError):
    """Listed files are missing or unreadable, or no list exists. Raised before any work starts.

    Attributes:
        problems: ``(path, reason)`` for every bad file (not only the ones in the message).
    """

    def __init__(self, message: str, problems: list[tuple[Path, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


def subset_folders(root: str | os.PathLike) -> list[str]:
    """The four iHarmony4 subsets, then any other folder of ``root`` holding ``composite_images``.

    Other folders are subsets built the same way, e.g. ``HumanHarmony`` (paper §4.2).
    """
    root = Path(root)
    extra = []
    if root.is_dir():
        known = {s.lower() for s in SUBSETS}
        extra = sorted(
            d.name
            for d in root.iterdir()
            if d.name.lower() not in known and (d / "composite_images").is_dir()
        )
    return [*SUBSETS, *extra]


def _list_candidates(root: Path, split: str, style: str, subsets: Iterable[str]) -> list[Path]:
    if style == "ihd":
        return [root / f"IHD_{split}.txt"]
    if style == "jsonl":
        return [root / f"{split}.jsonl"]
    out = []
    for s in subsets:
        out += [root / s / f"{s}_{split}.txt", root / f"{s}_{split}.txt"]
    return out


def find_list_style(root: str | os.PathLike, split: str) -> str | None:
    """Which list style exists for ``split`` in ``root``: ihd, then jsonl, then subset; else None."""
    root = Path(root)
    for style in ("ihd", "jsonl", "subset"):
        if any(p.is_file() for p in _list_candidates(root, split, style, subset_folders(root))):
            return style
    return None


def read_list_entries(root: str | os.PathLike, split: str, style: str = "auto") -> list[str]:
    """The raw entries of ``split``'s list in ``root``, as strings relative to ``root``.

    Per-subset entries (bare file names) become ``<Subset>/composite_images/<file>``; ``@name/``
    and absolute entries are returned unchanged.

    Raises:
        ValueError: unknown style.
        DataIntegrityError: no list file of that style exists (names the root and files looked for).
    """
    if style not in LIST_STYLES:
        raise ValueError(f"unknown list style {style!r}; allowed: {list(LIST_STYLES)}")
    root = Path(root)
    chosen = find_list_style(root, split) if style == "auto" else style
    if chosen is None or not any(
        p.is_file() for p in _list_candidates(root, split, chosen, subset_folders(root))
    ):
        looked = [
            str(p.relative_to(root))
            for s in ("ihd", "jsonl", "subset")
            if style in ("auto", s)
            for p in _list_candidates(root, split, s, subset_folders(root))
        ]
        raise DataIntegrityError(
            f"no {split} list in {root} (style {style!r}); looked for: {', '.join(looked)}. "
            f"Regenerate combined lists with `harmonylib lists --root {root} --write`."
        )
    entries: list[str] = []
    if chosen == "ihd":
        for line in (root / f"IHD_{split}.txt").read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                entries.append(line)
    elif chosen == "jsonl":
        path = root / f"{split}.jsonl"
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append(str(json.loads(line)["file_name"]).strip())
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataIntegrityError(f"{path}:{i}: not a {{'file_name': ...}} JSON line ({exc})") from exc
    else:
        for s in subset_folders(root):
            for cand in _list_candidates(root, split, "subset", [s]):
                if not cand.is_file():
                    continue
                for line in cand.read_text().splitlines():
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    if line.startswith("@") or Path(line).is_absolute():
                        entries.append(line)
                    elif "/" in line:
                        entries.append(f"{s}/{line}")  # relative to the subset folder
                    else:
                        entries.append(f"{s}/composite_images/{line}")
                break  # the subset-folder list wins over a root-level one
    return entries


def _write_style(root: Path, split: str, entries: list[str], style: str) -> list[Path]:
    written = []
    if style == "ihd":
        dest = root / f"IHD_{split}.txt"
        atomic_write_text(dest, "".join(e + "\n" for e in entries))
        written.append(dest)
    elif style == "jsonl":
        dest = root / f"{split}.jsonl"
        atomic_write_text(dest, "".join(json.dumps({"file_name": e, "text": ""}) + "\n" for e in entries))
        written.append(dest)
    else:
        by_subset: dict[str, list[str]] = {}
        for e in entries:
            parts = Path(e).parts
            if (
                e.startswith("@")
                or Path(e).is_absolute()
                or len(parts) != 3
                or parts[1] != "composite_images"
            ):
                raise ValueError(f"entry {e!r} cannot be written to a per-subset list")
            by_subset.setdefault(parts[0], []).append(parts[2])
        for s, names in by_subset.items():
            dest = root / s / f"{s}_{split}.txt"
            atomic_write_text(dest, "".join(n + "\n" for n in names))
            written.append(dest)
    return written


def write_lists(
    root: str | os.PathLike,
    splits: Iterable[str] = SPLITS,
    source_style: str = "auto",
    overwrite: bool = False,
) -> list[Path]:
    """Regenerate the other list styles from one that exists, atomically.

    From per-subset lists this writes the combined ``IHD_<split>.txt`` and ``<split>.jsonl``
    (the files users of the alternative mirror lack, peers.md §1.4); from combined or jsonl lists
    it writes the other two styles. The source lists are never rewritten, and a style that
    already exists is left alone unless ``overwrite`` (the official lists are not replaced by
    accident).

    Returns:
        The files written.
    """
    root = resolve(root)
    written: list[Path] = []
    for split in splits:
        src = find_list_style(root, split) if source_style == "auto" else source_style
        entries = read_list_entries(root, split, src or "auto")
        for style in ("ihd", "jsonl", "subset"):
            exists = any(p.is_file() for p in _list_candidates(root, split, style, subset_folders(root)))
            if style != src and (overwrite or not exists):
                written += _write_style(root, split, entries, style)
    return written

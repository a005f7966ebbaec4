"""Reading iHarmony4 splits: list files, name -> path derivation, integrity checks, counts.

Layout (bcmi/Image-Harmonization-Dataset-iHarmony4; peers.md §1.2)::

    <root>/HCOCO|HAdobe5k|HFlickr|Hday2night/
        composite_images/<id>_<maskid>_<k>.jpg
        masks/<id>_<maskid>.png
        real_images/<id>.jpg
        <Subset>_train.txt  <Subset>_test.txt      per-subset lists: bare composite file names
    <root>/IHD_train.txt  IHD_test.txt              combined: "HCOCO/composite_images/c1_2_3.jpg"
    <root>/train.jsonl  test.jsonl                  the DiffHarmony authors' {"file_name": ..., "text": ""}

Paths are derived from the composite *file name* only, with pathlib (the authors' string
splitting turns absolute roots relative, official-implementation.md §6/§10.14):
mask = ``masks/<stem minus its last _k>.png``; real = ``real_images/<text before the first _>.jpg``.
Where a ``.jpg`` is absent but a ``.png`` of the same stem exists (a losslessly pre-shrunk copy,
:mod:`harmonylib.data.shrink`), the ``.png`` is used. The subset is the name of the folder
holding ``composite_images``, never the first letter of the file name.

A split may span several roots (``{"main": ..., "gen": ...}``). List entries are relative to the
root holding the list, or ``@<rootname>/<Subset>/composite_images/<file>``, or absolute.

The list files themselves (styles, reading entries, writing the other styles) are
:mod:`harmonylib.data.iharmony4_lists`; their names are importable from here too.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from harmonylib.config import SUBSETS
from harmonylib.data.iharmony4_lists import (
    LIST_STYLES,
    SPLITS,
    DataIntegrityError,
    ListStyle,  # noqa: F401  (re-exported: a list-file name, importable from here as before)
    _list_candidates,
    find_list_style,
    read_list_entries,
    subset_folders,
    write_lists,
)
from harmonylib.paths import resolve

# bcmi/Image-Harmonization-Dataset-iHarmony4 README: subset -> (train, test) composites.
PUBLISHED_COUNTS: dict[str, tuple[int, int]] = {
    "HCOCO": (38545, 4283),
    "HAdobe5k": (19437, 2160),
    "HFlickr": (7449, 828),
    "Hday2night": (311, 133),
}
PUBLISHED_TOTALS = (65742, 7404)

MAIN_ROOT = "main"
_ERROR_CAP = 20
_IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg")


@dataclass(frozen=True)
class Sample:
    """One composite of a split and the files it needs.

    ``name`` is the composite's stem (``c100300_1602094_1``); ``subset`` the folder it lies in;
    ``composite``, ``mask``, ``real`` absolute paths; ``root_name`` the root it came from.
    """

    name: str
    subset: str
    composite: Path
    mask: Path
    real: Path
    root_name: str = MAIN_ROOT

    @property
    def real_id(self) -> str:
        """The real image's id, e.g. ``c100300`` (text before the first ``_``)."""
        return self.name.split("_", 1)[0]

    @property
    def mask_id(self) -> str:
        """The mask's stem, e.g. ``c100300_1602094`` (name minus its last ``_k``)."""
        return self.name.rsplit("_", 1)[0]


def canonical_subset(folder: str) -> str:
    """The canonical spelling of an iHarmony4 subset (``HAdobe5K`` -> ``HAdobe5k``), else as is."""
    for s in SUBSETS:
        if s.lower() == folder.lower():
            return s
    return folder


def _with_fallback(path: Path) -> Path:
    """``path`` if it exists, else an existing file of the same stem with another image suffix."""
    if path.exists():
        return path
    for suf in _IMAGE_SUFFIXES:
        alt = path.with_suffix(suf)
        if alt != path and alt.exists():
            return alt
    return path


def derive_paths(composite: str | os.PathLike) -> tuple[Path, Path]:
    """The (mask, real) paths of a composite, from its file name only.

    ``.../HCOCO/composite_images/c100300_1602094_1.jpg`` -> ``.../HCOCO/masks/c100300_1602094.png``,
    ``.../HCOCO/real_images/c100300.jpg`` (or ``.png`` where only that exists).

    Raises:
        ValueError: the file is not in a ``composite_images`` folder, or its stem is not
            ``<id>_<mask>_<k>``.
    """
    comp = Path(composite)
    if comp.parent.name != "composite_images":
        raise ValueError(f"{comp}: a composite must lie in a 'composite_images' folder")
    stem = comp.stem
    parts = stem.split("_")
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"{comp}: composite name {stem!r} is not '<id>_<mask>_<k>'")
    subset_dir = comp.parent.parent
    mask = subset_dir / "masks" / (stem.rsplit("_", 1)[0] + ".png")
    real = _with_fallback(subset_dir / "real_images" / (parts[0] + ".jpg"))
    return mask, real


def _normalize_roots(roots: str | os.PathLike | Mapping[str, str | os.PathLike]) -> dict[str, Path]:
    if isinstance(roots, Mapping):
        if not roots:
            raise ValueError("roots: give at least one root")
        return {str(k): resolve(v) for k, v in roots.items()}
    return {MAIN_ROOT: resolve(roots)}


def _entry_path(entry: str, holder: str, roots: dict[str, Path]) -> tuple[Path, str]:
    """(absolute composite path, root name) of one list entry."""
    if entry.startswith("@"):
        name, _, rest = entry[1:].partition("/")
        if name not in roots:
            raise DataIntegrityError(
                f"list entry {entry!r} names root {name!r}; known roots: {sorted(roots)}"
            )
        return roots[name] / rest, name
    p = Path(entry)
    if p.is_absolute():
        for name, r in roots.items():
            if p.is_relative_to(r):
                return p, name
        return p, holder
    return roots[holder] / p, holder


def _make_sample(comp: Path, root_name: str) -> Sample:
    mask, real = derive_paths(comp)
    return Sample(
        name=comp.stem,
        subset=canonical_subset(comp.parent.parent.name),
        composite=_with_fallback(comp),
        mask=mask,
        real=real,
        root_name=root_name,
    )


def _check_file(path: Path) -> str | None:
    """None if ``path`` is a readable image (header only), else the reason."""
    if not path.is_file():
        return "missing"
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018  (header parsed by open)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def check_samples(samples: list[Sample], what: str = "split", cap: int = _ERROR_CAP) -> None:
    """Check that every file of ``samples`` exists and has a readable image header.

    Raises:
        DataIntegrityError: listing up to ``cap`` bad files and the total count.
    """
    files = list(dict.fromkeys(p for s in samples for p in (s.composite, s.mask, s.real)))
    workers = 1 if len(files) < 2000 else 8  # a thread pool hides file-system latency
    if workers == 1:
        reasons = [_check_file(p) for p in files]
    else:
        with ThreadPoolExecutor(workers) as pool:
            reasons = list(pool.map(_check_file, files, chunksize=256))
    problems = [(p, r) for p, r in zip(files, reasons, strict=True) if r is not None]
    if problems:
        lines = "\n".join(f"  {p}: {r}" for p, r in problems[:cap])
        more = f"\n  ... and {len(problems) - cap} more" if len(problems) > cap else ""
        raise DataIntegrityError(
            f"{what}: {len(problems)} of {len(files)} files are missing or unreadable:\n{lines}{more}",
            problems,
        )


def read_split(
    roots: str | os.PathLike | Mapping[str, str | os.PathLike],
    split: str,
    style: str = "auto",
    subsets: Iterable[str] | None = None,
    check: bool = True,
) -> list[Sample]:
    """The samples of ``split`` across one or several roots.

    Args:
        roots: a root, or ``{name: root}`` (the first is the main root, which must hold a list;
            any other root holding a list for ``split`` contributes its entries too).
        split: ``"train"`` or ``"test"``.
        style: ``"auto"`` (IHD lists, then jsonl, then per-subset), ``"ihd"``, ``"jsonl"``, ``"subset"``.
        subsets: keep only these subsets (default: all).
        check: check every file (exists, readable header) before returning.

    Returns:
        Samples in list order; duplicates (same composite) are dropped with a warning.

    Raises:
        DataIntegrityError: no list in the main root, a bad entry, or missing/unreadable files.
    """
    roots_ = _normalize_roots(roots)
    keep = {canonical_subset(s) for s in subsets} if subsets is not None else None
    samples: list[Sample] = []
    seen: set[Path] = set()
    dups = 0
    for i, (name, root) in enumerate(roots_.items()):
        if i > 0 and find_list_style(root, split) is None and style == "auto":
            continue  # an extra root without its own list: reachable through @name/ entries
        if (
            i > 0
            and style != "auto"
            and not any(p.is_file() for p in _list_candidates(root, split, style, subset_folders(root)))
        ):
            continue
        for entry in read_list_entries(root, split, style):
            comp, root_name = _entry_path(entry, name, roots_)
            try:
                sample = _make_sample(comp, root_name)
            except ValueError as exc:
                raise DataIntegrityError(f"{root}: bad {split} list entry {entry!r}: {exc}") from exc
            if keep is not None and sample.subset not in keep:
                continue
            if sample.composite in seen:
                dups += 1
                continue
            seen.add(sample.composite)
            samples.append(sample)
    if dups:
        warnings.warn(f"{split}: dropped {dups} duplicate list entries", stacklevel=2)
    if check:
        check_samples(samples, what=f"{split} split of {', '.join(map(str, roots_.values()))}")
    return samples


def count_report(samples_by_split: Mapping[str, list[Sample]]) -> pd.DataFrame:
    """Composites found per subset next to the published iHarmony4 counts.

    Returns:
        One row per subset plus ``total``; for each split, columns ``<split>`` (found) and
        ``<split>_published`` (NaN for subsets iHarmony4 does not have).
    """
    found_subsets = {s.subset for v in samples_by_split.values() for s in v}
    index = list(SUBSETS) + sorted(found_subsets - set(SUBSETS))
    data: dict[str, list] = {}
    for split, samples in samples_by_split.items():
        col = SPLITS.index(split) if split in SPLITS else None
        counts = pd.Series([s.subset for s in samples], dtype=object).value_counts()
        data[split] = [int(counts.get(s, 0)) for s in index]
        data[f"{split}_published"] = [
            PUBLISHED_COUNTS[s][col] if (s in PUBLISHED_COUNTS and col is not None) else float("nan")
            for s in index
        ]
    df = pd.DataFrame(data, index=pd.Index(index, name="subset"))
    df.loc["total"] = df.sum(numeric_only=True, min_count=1)
    for split in samples_by_split:
        df[split] = df[split].astype(int)
    return df


# --------------------------------------------------------------------------------- CLI


def _run_lists(args: argparse.Namespace) -> int:
    from harmonylib.config import load_config

    root = resolve(args.root) if args.root else resolve(load_config(args.profile).data.root)
    by_split = {}
    status = 0
    for split in SPLITS:
        try:
            by_split[split] = read_split(root, split, style=args.style, check=not args.no_check)
        except DataIntegrityError as exc:
            print(f"ERROR: {exc}")
            status = 1
    if by_split:
        print(count_report(by_split).to_string())
    if args.write:
        for p in write_lists(root, source_style=args.style, overwrite=args.overwrite):
            print(f"wrote {p}")
    return status


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonylib lists``."""
    p = subparsers.add_parser(
        "lists", help="validate iHarmony4 split lists, print counts, regenerate combined lists"
    )
    p.add_argument("--root", default=None, help="dataset root (default: the profile's data.root)")
    p.add_argument("--profile", default="paper", help="profile whose data.root is used without --root")
    p.add_argument("--style", default="auto", choices=LIST_STYLES, help="which list files to read")
    p.add_argument("--write", action="store_true", help="regenerate the other list styles from it")
    p.add_argument("--overwrite", action="store_true", help="with --write: also replace existing lists")
    p.add_argument("--no-check", action="store_true", help="do not open every listed file")
    p.set_defaults(func=_run_lists)


@dataclass(frozen=True)
class Pair:
    """One (real, mask) pair of a dataset: the unit candidates are generated for.

    ``mask_id`` is the mask's stem (``f800_1``); candidates are named
    ``<mask_id>_<k_offset + j + 1>`` for j = 0..K-1.
    """

    subset: str
    mask_id: str
    real: Path
    mask: Path
    k_offset: int = 0

    @property
    def pair_id(self) -> str:
        """``<Subset>/<mask_id>``: stable across runs; seeds are derived from it."""
        return f"{self.subset}/{self.mask_id}"

    @property
    def real_id(self) -> str:
        return self.mask_id.split("_", 1)[0]

    def candidate_name(self, j: int) -> str:
        return f"{self.mask_id}_{self.k_offset + j + 1}"

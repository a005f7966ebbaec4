"""Where things live: the files shipped with the package, and the project home.

Two kinds of relative path, resolved differently:

- **Shipped files** (profiles, reported numbers, the committed mini weights) are found through
  the package itself (``importlib.resources``), whatever the current folder. A relative path
  whose first part is ``harmonylib`` (as the profiles write ``harmonylib/weights/mini``) names
  such a file.
- **Generated data and results** (``data/``, ``results/``) live under the project home:
  ``$HARMONYLIB_HOME`` if set, else the harmonylib clone that holds the current folder, else
  the current folder. A notebook therefore gives the same answer whether papermill runs it
  from the repository root or JupyterLab runs it from ``notebooks/``.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

_MARKER = "pyproject.toml"
PACKAGE = "harmonylib"
HOME_ENV = "HARMONYLIB_HOME"


def package_path(*parts: str) -> Path:
    """A file or folder shipped inside the installed package, e.g. ``package_path("profiles")``.

    The package is installed as plain files (editable or wheel), never zipped, so the
    resource is a real path that PIL, safetensors and diffusers can open.
    """
    return Path(str(importlib.resources.files(PACKAGE).joinpath(*parts)))


def project_root() -> Path:
    """The project home: ``$HARMONYLIB_HOME``, else the clone holding the current folder, else it."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        marker = d / _MARKER
        if marker.is_file() and 'name = "harmonylib"' in marker.read_text(errors="ignore"):
            return d
    return here


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path: ``harmonylib/...`` from the package, other relative ones from the home."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    if p.parts and p.parts[0] == PACKAGE:
        return package_path(*p.parts[1:])
    return project_root() / p


def relative_to_home(path: str | os.PathLike) -> str:
    """``path`` as written into committed results: relative to the home when it lies under it.

    Paths outside the home (an external dataset root, a temporary folder) stay absolute: they
    are not part of the clone, and a relative form would point nowhere. Always POSIX-style.
    """
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    root = project_root()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        pass
    try:  # the same folder reached through a symlink
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def portable(obj: Any) -> Any:
    """``obj`` with every absolute path under the home (str or Path, nested in dicts, lists and
    tuples) made relative by :func:`relative_to_home`; other values unchanged.

    For records committed with the results (provenance, per-image CSVs): a rerun in another
    clone then writes the same text.
    """
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable(v) for v in obj)
    if isinstance(obj, os.PathLike) or (isinstance(obj, str) and obj.startswith(os.sep)):
        return relative_to_home(obj)
    return obj


def results_dir(profile: str, kind: str = "") -> Path:
    """``results/<profile>/<kind>``: kind is tables, figures, notebooks, runs or cache."""
    d = project_root() / "results" / profile
    return d / kind if kind else d

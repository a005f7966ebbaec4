"""Where things live: the project root, data roots and the results tree.

Relative paths in configs and notebook parameters resolve against the project root, so a
notebook gives the same answer whether papermill runs it from the repository root or
JupyterLab runs it from ``notebooks/``.
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKER = "pyproject.toml"


def project_root() -> Path:
    """The harmonylib checkout that holds the current directory, else the current directory.

    ``HARMONYLIB_HOME`` overrides the search.
    """
    env = os.environ.get("HARMONYLIB_HOME")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        marker = d / _MARKER
        if marker.is_file() and 'name = "harmonylib"' in marker.read_text(errors="ignore"):
            return d
    return here


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path; relative ones are taken from the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def results_dir(profile: str, kind: str = "") -> Path:
    """``results/<profile>/<kind>``: kind is tables, figures, notebooks, runs or cache."""
    d = project_root() / "results" / profile
    return d / kind if kind else d

"""Small helpers for the notebooks' last cells: a finiteness check and atomic saves."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harmonylib.io import atomic_save_image, atomic_write_json


def finite(x: Any) -> bool:
    """True when every number in a (nested) dict/list is finite."""
    if isinstance(x, Mapping):
        return all(finite(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(finite(v) for v in x)
    if isinstance(x, (int, float, np.floating, np.integer)):
        return math.isfinite(float(x))
    return True


def save_image(img: Any, path: str | os.PathLike) -> Path:
    """Save a PIL image atomically; return the path."""
    atomic_save_image(Path(path), img)
    return Path(path)


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as JSON atomically; return the path."""
    atomic_write_json(Path(path), obj)
    return Path(path)

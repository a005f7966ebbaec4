"""What Table 2 and the Human Harmony build share: the results root, cache keys, subset reads.

Both use the inverse model (real image + mask in, composite out) and write under one results root
(``results/<profile>`` or a notebook's ``out_dir``, :func:`results_root`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harmonylib.config import Config
from harmonylib.paths import resolve, results_dir

GEN_ROOT_NAME = "gen"  # the generated root's name in data.extra_roots (``@gen/...`` list entries)


def results_root(cfg: Config, out_dir: str | os.PathLike | None = None) -> Path:
    """``out_dir`` (resolved) when given, else ``results/<profile>``."""
    return resolve(out_dir) if out_dir else results_dir(cfg.profile)


def _key(obj: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _subset_samples(root: Path, split: str, subset: str) -> list:
    from harmonylib.data.iharmony4 import read_split

    samples = read_split(root, split, subsets=[subset])
    if not samples:
        raise ValueError(f"{root}: the {split} split has no {subset} samples")
    return samples


def _check_inverse(pipeline: Any) -> None:
    direction = getattr(getattr(pipeline, "config", None), "direction", "inverse")
    if direction != "inverse":
        raise ValueError(
            f"the pipeline was built for direction={direction!r}; candidates come from the inverse model "
            '(assemble_pipeline(cfg, "inverse"))'
        )

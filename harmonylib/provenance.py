"""Provenance records written beside every result: config, code version, packages, device."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from harmonylib.paths import portable, project_root

_PACKAGES = (
    "harmonylib",
    "torch",
    "diffusers",
    "accelerate",
    "numpy",
    "pillow",
    "scikit-image",
    "pandas",
    "matplotlib",
    "papermill",
    "safetensors",
)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike) -> str:
    """SHA-256 over a file, or over every file of a folder (relative names and bytes, sorted)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(str(f.relative_to(p)).encode() + b"\0")
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def git_sha() -> str:
    """The checkout's commit, with ``-dirty`` when tracked files differ; "unknown" outside git."""
    root = project_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu:{platform.processor() or platform.machine()} x{os.cpu_count()}"


def provenance(
    config: dict[str, Any] | None = None,
    seeds: dict[str, int] | None = None,
    files: dict[str, str | os.PathLike] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A provenance record.

    Args:
        config: the resolved config (as a dict).
        seeds: every seed that fed the result.
        files: name -> path of checkpoints, test lists and other inputs; each is hashed.
        extra: anything else worth keeping (e.g. the notebook's name).

    Paths under the project home are stored relative to it (:func:`harmonylib.paths.portable`),
    so that the committed record does not depend on where the clone lies.
    """
    return portable(
        {
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_sha": git_sha(),
            "packages": package_versions(),
            "device": device_description(),
            "config": config or {},
            "seeds": seeds or {},
            "sha256": {k: sha256_tree(v) for k, v in (files or {}).items() if Path(v).exists()},
            **extra,
        }
    )

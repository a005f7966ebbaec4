"""``checkpoint-<step>`` folders: atomic ``accelerator.save_state``, newest-K pruning, "latest".

A checkpoint is written into ``.tmp-checkpoint-<step>`` and renamed into place only when every
process has finished writing, so a job killed mid-save leaves the previous checkpoint as the
latest one. Beside accelerate's files each checkpoint holds ``trainer_state.json`` (the step
counter and the layout it was written with); the data order and every random generator are
derived from (seed, step), so nothing else is needed to resume exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

TRAINER_STATE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(ckpt_root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``ckpt_root``, oldest first (temporary folders are ignored)."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _NAME.match(d.name)
        if m and d.is_dir() and (d / TRAINER_STATE).is_file():
            found.append((int(m.group(1)), d))
    return [d for _, d in sorted(found)]


def latest_checkpoint(ckpt_root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint, or None."""
    ckpts = list_checkpoints(ckpt_root)
    return ckpts[-1] if ckpts else None


def read_trainer_state(ckpt: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(ckpt) / TRAINER_STATE).read_text())


def save_checkpoint(
    accelerator: Any, ckpt_root: str | os.PathLike, step: int, state: dict[str, Any], limit: int
) -> Path:
    """Save the accelerator state (models, optimizer, scheduler, registered EMA) as ``checkpoint-<step>``.

    Every process must call this. Returns the final folder.
    """
    root = Path(ckpt_root)
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / TRAINER_STATE).write_text(json.dumps({**state, "step": step}, indent=2, sort_keys=True))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        prune_checkpoints(root, limit)
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(ckpt_root: str | os.PathLike, limit: int) -> list[Path]:
    """Delete all but the newest ``limit`` checkpoints (and stale temporary folders); return the deleted."""
    root = Path(ckpt_root)
    ckpts = list_checkpoints(root)
    doomed = ckpts[: max(0, len(ckpts) - max(1, limit))]
    doomed += [d for d in root.glob(".tmp-checkpoint-*") if d.is_dir()] if ckpts else []
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    return doomed

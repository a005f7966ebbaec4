"""Scale-out: 2 CPU processes under torchrun equal 1 process with gradient accumulation 2.

``torchrun --standalone --nproc_per_node 2`` starts two real processes (gloo); the test checks
that there were two (``accelerate launch --cpu --num_processes 2`` starts one without MPI), that
their data shards are disjoint, that the LR at every step is the same, and that the final live
and EMA weights match the 1-process run to 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from harmonylib.config import load_config
from harmonylib.training.runs import ensure_trained, read_done

OVERRIDES = {
    "train.harmony_vae.loop.batch_size": 2,
    "train.harmony_vae.loop.max_steps": 4,
    "train.harmony_vae.loop.optim.warmup_ratio": None,
    "train.harmony_vae.loop.optim.warmup_steps": 3,  # LR differs at every step of the warmup
}


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "torch.distributed.run"]


def _indices(run_dir: Path, rank: int) -> dict[tuple[int, int], list[int]]:
    rows = [json.loads(line) for line in (run_dir / f"indices-rank{rank}.jsonl").read_text().splitlines()]
    return {(r["step"], r["accum"]): r["index"] for r in rows}


def test_two_processes_equal_one_process_with_accumulation(smoke_data_root, tmp_path):
    two = tmp_path / "two"
    args = [f"--set={k}={'null' if v is None else v}" for k, v in OVERRIDES.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    proc = subprocess.run(
        [
            *_torchrun(),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "harmonylib.training",
            "--profile",
            "smoke",
            "--recipe",
            "harmony_vae",
            f"--set=data.root={smoke_data_root}",
            *args,
            "--run-dir",
            str(two),
            "--cpu",
            "--no-progress",
            "--record-indices",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert read_done(two)["num_processes"] == 2

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config(
            "smoke",
            {
                "data.root": str(smoke_data_root),
                **OVERRIDES,
                "train.harmony_vae.loop.gradient_accumulation_steps": 2,
            },
        )
        one = tmp_path / "one"
        ensure_trained(cfg, "harmony_vae", run_dir=one, progress=False, record_indices=True)
    finally:
        torch.set_num_threads(n)
    assert read_done(one)["num_processes"] == 1

    # Disjoint shards, and the same samples per optimizer step as 1 process x 2 accumulation.
    r0, r1, single = _indices(two, 0), _indices(two, 1), _indices(one, 0)
    for step in range(4):
        assert not set(r0[(step, 0)]) & set(r1[(step, 0)])
        assert r0[(step, 0)] == single[(step, 0)] and r1[(step, 0)] == single[(step, 1)]

    # The same LR at every step (the prepared scheduler steps twice per step with 2 processes).
    lr_two, lr_one = pd.read_csv(two / "metrics.csv")["lr"], pd.read_csv(one / "metrics.csv")["lr"]
    assert lr_two.tolist() == pytest.approx(lr_one.tolist()) and lr_one.tolist() == pytest.approx(
        [0, 1e-4 / 3, 2e-4 / 3, 1e-4]
    )

    for kind in ("live", "ema"):
        a = load_file(str(two / "weights" / kind / "diffusion_pytorch_model.safetensors"))
        b = load_file(str(one / "weights" / kind / "diffusion_pytorch_model.safetensors"))
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=0, msg=f"{kind} {k}")

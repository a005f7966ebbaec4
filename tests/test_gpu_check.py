"""``benchmarks/gpu_check.py --dry-run``: every section's code runs tiny on the CPU, so the GPU check
that only a lent device runs cannot rot between loans."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["environment"]["dry_run"] is True
    for name in ("pipeline", "tiled_decode", "correctness", "training"):
        assert "error" not in report[name], (name, report[name])

    runs = report["pipeline"]["runs"]
    assert [r["batch"] for r in runs] == [1, 2]
    assert all(r["s_per_image"] > 0 for r in runs)

    dec = report["tiled_decode"]
    assert [r["size"] for r in dec["rows"]] == [64, 128, 256]
    assert dec["rows"][0]["tiled_vs_untiled_psnr_db"] == float("inf")  # one tile = the untiled decode
    assert all(0 < r["tiled_vs_untiled_psnr_db"] < float("inf") for r in dec["rows"][1:])
    assert dec["tiled_time_exponent_k"] > 0

    cor = report["correctness"]
    assert cor["fp32_max_abs_cpu_vs_device"] == 0.0  # CPU vs CPU in a dry run: the same computation
    assert cor["fp32_ok"] and cor["bf16_ok"]
    assert 0 < cor["bf16_psnr_db_vs_fp32"] < float("inf")  # bf16 really ran

    train = report["training"]
    assert set(train) - {"section_s"} == {"unet", "harmony_vae", "refinement", "classifier"}
    for recipe in ("unet", "harmony_vae", "refinement", "classifier"):
        r = train[recipe]
        assert r["batch_size"] == 2 and r["s_per_step"] > 0 and r["trainable_params"] > 0
    assert train["unet"]["mixed_precision"] == "fp16" and train["unet"]["paper_batch_size"] == 16

    summary = proc.stdout
    assert "pipeline 64 px batch 2" in summary and "train classifier" in summary and "FAILED" not in summary

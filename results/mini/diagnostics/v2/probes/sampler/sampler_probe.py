"""Lever probe: the sampler, with everything else released (mini, val split, R_inf "1024").

Scores DiffHarmony++ (the released forward UNet + the released seed-0 Harmony-VAE) on N val
composites (default 128, the diagnostics' seeded choice; 'all' for the 400), as Table 1 does (square 128 px, 5 steps, 256 px output, the authors' evaluator), once
with the paper's Euler-ancestral sampler and once with plain (deterministic) Euler on the same
timesteps; then the copy floor and the composite for reference are in LEVERS.md §6.

Usage: python sampler_probe.py [N] [OUT]   (OUT default results/mini/runs/probes/sampler, git-ignored)
"""

import sys
from pathlib import Path

import pandas as pd
from diffusers import EulerDiscreteScheduler

from harmonylib.config import load_config
from harmonylib.data.builtin import ensure_dataset
from harmonylib.data.iharmony4 import read_split
from harmonylib.diagnostics.common import pick
from harmonylib.evaluation import aggregate, evaluate_predictions
from harmonylib.inference import InferenceSettings, predict_split
from harmonylib.paths import results_dir
from harmonylib.release import released_pipeline

n = sys.argv[1] if len(sys.argv) > 1 else "128"
out = Path(sys.argv[2]) if len(sys.argv) > 2 else results_dir("mini", "runs") / "probes" / "sampler"
cfg = load_config("mini")
val = read_split(ensure_dataset(cfg), "val")
val = pick(val, None if n == "all" else int(n), seed=0, split="val")
rows = []
for name in ("euler_ancestral", "euler"):
    pipe = released_pipeline("mini", seed=0)
    if name == "euler":  # the same schedule, timesteps and prediction type; no noise added per step
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    settings = InferenceSettings(
        size=cfg.ladder.r_inf_high, size_mode="square", steps=5, output_resolution=cfg.eval.resolution,
        keep_background=False, seed=0, direction="forward", model=f"released-seed0:{name}",
    )  # fmt: skip
    preds = predict_split(
        pipe, val, out / name, settings, batch_size=16, rank=0, world_size=1, progress=False
    )
    df = evaluate_predictions(val, preds, cfg.eval, progress=False)
    df.to_csv(out / f"{name}_per_image.csv", index=False)
    rows.append({"sampler": name, **aggregate(df).iloc[-1][["n", "psnr", "mse", "fmse"]].to_dict()})
    print(rows[-1], flush=True)
pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)

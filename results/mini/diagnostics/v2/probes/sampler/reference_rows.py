"""The sampler probe's reference rows on the same val composites: the composite itself, and the
copy floor (the composite's own latent decoded by the released seed-0 Harmony-VAE at R_inf
"1024", with the squash and resizes of inference: ``harmonylib.ceiling`` with the composite in the
real image's place).

Usage: python reference_rows.py [N] [OUT]   (as sampler_probe.py)
"""

import dataclasses
import sys
from pathlib import Path

import pandas as pd
from diffusers import AutoencoderKL

from harmonylib.ceiling import write_ceiling_predictions
from harmonylib.config import load_config
from harmonylib.data.builtin import ensure_dataset
from harmonylib.data.iharmony4 import read_split
from harmonylib.diagnostics.common import pick
from harmonylib.evaluation import aggregate, evaluate_predictions
from harmonylib.paths import resolve, results_dir
from harmonylib.release import released_pipeline

n = sys.argv[1] if len(sys.argv) > 1 else "128"
out = Path(sys.argv[2]) if len(sys.argv) > 2 else results_dir("mini", "runs") / "probes" / "sampler"
cfg = load_config("mini")
val = pick(read_split(ensure_dataset(cfg), "val"), None if n == "all" else int(n), seed=0, split="val")
rows = []
df = evaluate_predictions(val, [s.composite for s in val], cfg.eval, progress=False)
rows.append({"row": "composite", **aggregate(df).iloc[-1][["n", "psnr", "mse", "fmse"]].to_dict()})
vae = AutoencoderKL.from_pretrained(resolve(cfg.train.unet.vae)).eval()
copies = [dataclasses.replace(s, real=s.composite) for s in val]  # encode the composite, not the real
folder = write_ceiling_predictions(
    copies, out / "copy_floor", vae, cfg.ladder.r_inf_high, cfg.eval.resolution,
    key={"probe": "copy floor", "harmony_vae": "released seed 0", "n": n},
    harmony_vae=released_pipeline("mini", seed=0).vae.eval(),
)  # fmt: skip
df = evaluate_predictions(val, folder, cfg.eval, progress=False)
rows.append(
    {"row": "copy floor (Harmony-VAE)", **aggregate(df).iloc[-1][["n", "psnr", "mse", "fmse"]].to_dict()}
)
pd.DataFrame(rows).to_csv(out / "reference_rows.csv", index=False)
print(pd.DataFrame(rows).to_string(index=False))

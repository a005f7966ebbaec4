"""Lever probe: stage (d) of the mini recipe (the forward UNet from the committed VAE and
inpainting stand-in) on another train root, exported fp16 for the diagnostics' `train.unet.adopt`.

Usage: python stage_d_probe.py NAME TRAIN_ROOT; run and export under results/mini/runs/probes/
(git-ignored). The session that measured LEVERS.md §6 ran it with those two folders under a
scratch folder outside the clone; nothing else differed."""

import dataclasses
import sys

import torch

from harmonylib.config import load_config
from harmonylib.paths import resolve, results_dir
from harmonylib.training.pretrain import INPAINTING_COMPONENT, _save_component, unet_stage_config
from harmonylib.training.runs import ensure_trained

name, root = sys.argv[1], sys.argv[2]
profile = sys.argv[3] if len(sys.argv) > 3 else "mini"
cfg = load_config(profile)
cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, kind="iharmony4", root=root))
w = resolve(cfg.pretrain.out_dir)
run = ensure_trained(
    unet_stage_config(cfg, w / "vae", w / INPAINTING_COMPONENT),
    "unet",
    run_dir=(results_dir("mini", "runs") / "probes") / f"unet-{name}",
    progress=False,
)
out = (results_dir("mini", "runs") / "probes") / name / "unet"
_save_component(run.load_model(ema=True), out, torch.float16)
print("exported", out)

"""Why the mini latent models score below the composites, and why Table 5's random init wins in mini.

Run after `make reproduce PROFILE=mini` (it reads results/mini/runs and predictions, and writes
only to a temporary folder and to latent_limits.txt beside this file):

    OMP_NUM_THREADS=1 .venv/bin/python results/mini/diagnostics/latent_limits.py

Checks, each on the same 80 composites (seeded choice) at R_inf '1024' = 128 px, scored with the
authors' protocol (harmonylib.evaluation):

1. train scenes vs test scenes: DiffHarmony, DiffHarmony++ and the VAE ceiling (the real image
   through the base VAE) on composites of the training photos and of the held-out photos;
2. sampling steps: DiffHarmony with 5 (the paper's), 25 and 50 Euler-ancestral steps;
3. background latents: the fg-weighted loss never supervises background latents; the sampled
   latents decoded as they are, and with the composite's own background latents pasted in;
4. Table 5: training loss (first 10 / last 30 steps) and mean weight norm of the added skip convs
   of each Harmony-VAE variant, and how far each variant's '512' predictions lie from the composite
   and from the real image (foreground fMSE and the residual after an affine colour fit).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from safetensors.torch import load_file

from harmonylib import experiments as E
from harmonylib.augment import foreground_difference
from harmonylib.data.datasets import binarize_mask
from harmonylib.evaluation import aggregate, evaluate_predictions
from harmonylib.inference import predict_split
from harmonylib.io import load_mask_l, load_rgb
from harmonylib.models.unet import prepare_mask_latents
from harmonylib.paths import results_dir
from harmonylib.reproducibility import derive_seed, make_generator

RESULTS = results_dir("mini")
N, SIZE = 80, 128
lines: list[str] = []


def say(text: str) -> None:
    print(text, flush=True)
    lines.append(text)


def pick(samples):
    rng = np.random.default_rng(0)
    return [samples[i] for i in sorted(rng.choice(len(samples), N, replace=False))]


def all_row(samples, folder, exp):
    a = aggregate(evaluate_predictions(samples, folder, exp.cfg.eval, progress=False)).set_index("subset")
    return a.loc["All"]


work = Path(tempfile.mkdtemp(prefix="latent_limits-"))
os.symlink(RESULTS / "runs", work / "runs")  # the trained runs; predictions go to the temp folder

say("1. train scenes vs test scenes (80 composites each, R_inf '1024')")
for split in ("train", "test"):
    exp = E.setup("mini", out_dir=str(work), split=split, progress=False)
    samples = pick(exp.samples)
    for name, arm in (("Composite", E.Arm("composite")), ("DiffHarmony", E.Arm("diffharmony", "high", 0)),
                      ("DiffHarmony++", E.Arm("diffharmony++", "high", 0)), ("VAE ceiling", E.Arm("ceiling", "high", 0))):  # fmt: skip
        a = aggregate(E.score(exp, arm, f"diag{split}", name, samples, dataset=f"diag{split}")).set_index("subset")
        a = a.loc["All"]
        say(f"   {split:5s} {name:14s} PSNR {a.psnr:6.2f}  MSE {a.mse:7.1f}  fMSE {a.fmse:7.1f}")

exp = E.setup("mini", out_dir=str(work), split="test", progress=False)
samples = pick(exp.samples)
pipe = E.make_pipeline(exp)

say("2. sampling steps (DiffHarmony, test)")
base = E.inference_settings(exp, E.Arm("diffharmony", "high", 0), "diag")
for steps in (5, 25, 50):
    st = dataclasses.replace(base, steps=steps)
    folder = predict_split(pipe, samples, work / f"steps{steps}", st, progress=False, rank=0, world_size=1)
    a = all_row(samples, folder, exp)
    say(f"   {steps:3d} steps: PSNR {a.psnr:6.2f}  MSE {a.mse:7.1f}  fMSE {a.fmse:7.1f}")

say("3. background latents (DiffHarmony, test, 5 steps, plain decode)")
vae, sf = pipe.vae, pipe.vae.config.scaling_factor
outs = {"sampled": work / "bg_sampled", "composite background pasted": work / "bg_pasted"}
for p in outs.values():
    p.mkdir()
for i in range(0, N, 16):
    b = samples[i : i + 16]
    comps, masks = [load_rgb(s.composite) for s in b], [load_mask_l(s.mask) for s in b]
    gens = [make_generator(derive_seed(0, s.name)) for s in b]
    lat = pipe(comps, masks, num_inference_steps=5, generator=gens, size_mode="square", size=SIZE,
               keep_background=False, output_type="latent").images  # fmt: skip
    lat = torch.stack(list(lat))  # (b, 4, 16, 16), scaled
    x = torch.stack([torch.from_numpy(np.asarray(c.resize((SIZE, SIZE), Image.BILINEAR), np.float32)).permute(2, 0, 1)
                     for c in comps]) / 127.5 - 1  # fmt: skip
    m = torch.stack([torch.from_numpy(binarize_mask(np.asarray(k.resize((SIZE, SIZE), Image.NEAREST))))[None] for k in masks])
    with torch.no_grad():
        zc = vae.encode(x).latent_dist.mode() * sf  # (b, 4, 16, 16)
        ml = prepare_mask_latents(m, zc.shape[-2:])  # (b, 1, 16, 16)
        for key, z in (("sampled", lat), ("composite background pasted", lat * ml + zc * (1 - ml))):
            dec = vae.decode(z / sf).sample.clamp(-1, 1)
            arr = ((dec + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for s, img in zip(b, arr, strict=True):
                Image.fromarray(img).resize((256, 256), Image.BILINEAR).save(outs[key] / f"{s.name}.png")
for key, folder in outs.items():
    a = all_row(samples, folder, exp)
    say(f"   {key:28s} PSNR {a.psnr:6.2f}  MSE {a.mse:7.1f}  fMSE {a.fmse:7.1f}")

say("4. Table 5 variants (3 training seeds; predictions at R_inf '512', all 400 test composites, seed 0)")
for v in ("ec_zero", "ec_random", "ecd_zero", "ecd_random"):
    first, last, norms = [], [], []
    for suffix in ("", "-seed1", "-seed2"):
        run = RESULTS / "runs" / f"harmony_vae-forward-{v}{suffix}"
        m = pd.read_csv(run / "metrics.csv")
        first.append(m["loss"].iloc[:10].mean())
        last.append(m["loss"].iloc[-30:].mean())
        sd = load_file(next((run / "weights" / "ema").glob("*.safetensors")))
        norms.append(np.mean([w.float().norm().item() for k, w in sd.items() if "skip_conv" in k and k.endswith("weight")]))
    folder = glob.glob(str(RESULTS / "predictions" / f"iHarmony4-diffharmonypp_low_{v}_seed0-*"))[0]
    to_comp, to_real = [], []
    for s in exp.samples:
        def grab(p, r=Image.BILINEAR):
            return np.asarray(Image.open(p).convert("RGB").resize((256, 256), r))

        pred, mask = grab(f"{folder}/{s.name}.png"), np.asarray(load_mask_l(s.mask).resize((256, 256), Image.NEAREST))
        to_comp.append(list(foreground_difference(pred, grab(s.composite), mask).values()))
        to_real.append(list(foreground_difference(pred, grab(s.real), mask).values()))
    c, r = np.nanmean(to_comp, 0), np.nanmean(to_real, 0)
    say(f"   {v:10s} loss first10 {np.mean(first):.4f} last30 {np.mean(last):.4f}  |skip W| {np.mean(norms):5.3f}  "
        f"pred vs composite fMSE {c[0]:5.0f} (residual {c[2]:4.0f})  pred vs real fMSE {r[0]:5.0f} (residual {r[2]:4.0f})")  # fmt: skip

out = Path(__file__).with_suffix(".txt")
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}", file=sys.stderr)

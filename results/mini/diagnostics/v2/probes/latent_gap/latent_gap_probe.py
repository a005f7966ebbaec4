"""Diagnostic probe: where DiffHarmony++ loses against its own copy floor (mini, val, R_inf "1024").

The forward UNet's final latent is 8.5 % closer to the real latent than the composite's own latent
on val foregrounds (LEVERS.md §6), yet its decode scores 0.6 dB under decoding the composite's
latent. This decodes, with the released seed-0 Harmony-VAE and everything else as Table 1 (128 px
square, 5 Euler-ancestral steps, 256 px output, the authors' evaluator), latents that differ in one
thing each, for the same N val composites (the diagnostics' seeded choice):

  pred      the sampled latent (= DiffHarmony++)
  pred_bg   the sampled latent inside the latent mask, the composite's latent outside it
  half      composite latent + 0.5 * (sampled - composite)
  copy      the composite's latent (the copy floor)
  real      the real image's latent (the Harmony-VAE ceiling)

Latents of the composite and the real are posterior means x scaling factor; per image one seeded
generator drives the sampler and every decode. Usage: python latent_gap_probe.py [N] [OUT] [HVAE]
(OUT default results/mini/runs/probes/latent_gap, git-ignored; HVAE: a Harmony-VAE folder to
decode with instead of the released seed 0, e.g. a lever probe's EMA weights); prints and writes
summary.csv.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from harmonylib.config import load_config
from harmonylib.data.builtin import ensure_dataset
from harmonylib.data.iharmony4 import read_split
from harmonylib.diagnostics.common import pick
from harmonylib.evaluation import aggregate, evaluate_predictions
from harmonylib.models.unet import prepare_mask_latents
from harmonylib.release import released_pipeline

n = int(sys.argv[1]) if len(sys.argv) > 1 else 128
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("results/mini/runs/probes/latent_gap")
cfg = load_config("mini")
val = pick(read_split(ensure_dataset(cfg), "val"), n, seed=0, split="val")
pipe = released_pipeline("mini", seed=0)
if len(sys.argv) > 3:
    from harmonylib.models.harmony_vae import HarmonyVAE

    pipe.vae = HarmonyVAE.from_pretrained(sys.argv[3]).eval()
pipe.set_progress_bar_config(disable=True)
vae, sf = pipe.vae, pipe.vae.config.scaling_factor
size, out_res = cfg.ladder.r_inf_high, cfg.eval.resolution
VARIANTS = ("pred", "pred_bg", "half", "copy", "real")
for v in VARIANTS:
    (out / v).mkdir(parents=True, exist_ok=True)


def load(path, mode):
    im = Image.open(path).convert(mode).resize((size, size), Image.BICUBIC if mode == "RGB" else Image.NEAREST)
    a = torch.from_numpy(np.array(im, dtype=np.float32) / 255.0)
    return a.permute(2, 0, 1)[None] if mode == "RGB" else (a[None, None] > 0.5).float()


with torch.no_grad():
    for k, s in enumerate(val):
        comp, real, mask = load(s.composite, "RGB"), load(s.real, "RGB"), load(s.mask, "L")  # (1, C, 128, 128)
        g = lambda: torch.Generator().manual_seed(1000 + k)  # noqa: E731
        pred = pipe(comp, mask, generator=g(), size_mode="square", size=size, output_type="latent",
                    num_inference_steps=5).images  # (1, 4, 32, 32), scaled
        z_comp = vae.encode(comp * 2 - 1).latent_dist.mean * sf  # (1, 4, 32, 32)
        z_real = vae.encode(real * 2 - 1).latent_dist.mean * sf
        m = prepare_mask_latents(mask, tuple(pred.shape[-2:]))  # (1, 1, 32, 32)
        latents = {"pred": pred, "pred_bg": m * pred + (1 - m) * z_comp, "half": z_comp + 0.5 * (pred - z_comp),
                   "copy": z_comp, "real": z_real}  # fmt: skip
        cond = torch.cat([comp * 2 - 1, mask], dim=1)  # (1, 4, 128, 128)
        for v, z in latents.items():
            x = vae.decode_with_cond(z / sf, cond, generator=g(), sample_posterior=True).sample  # (1, 3, 128, 128)
            x = torch.nn.functional.interpolate((x / 2 + 0.5).clamp(0, 1), size=(out_res, out_res),
                                                mode="bicubic", align_corners=False).clamp(0, 1)  # fmt: skip
            arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(arr).save(out / v / f"{s.name}.png")
rows = []
for v in VARIANTS:
    df = evaluate_predictions(val, out / v, cfg.eval, progress=False)
    df.to_csv(out / f"{v}_per_image.csv", index=False)
    rows.append({"latent": v, **aggregate(df).iloc[-1][["n", "psnr", "mse", "fmse"]].to_dict()})
    print(rows[-1], flush=True)
comp_df = evaluate_predictions(val, [s.composite for s in val], cfg.eval, progress=False)
rows.append({"latent": "composite (no model)", **aggregate(comp_df).iloc[-1][["n", "psnr", "mse", "fmse"]].to_dict()})
print(rows[-1])
pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)

"""Lever probe: train the Harmony-VAE on the denoised latent z'_0 instead of E(real) (paper §3.2).

The paper trains Harmony-VAE on E(I_hat), the real image's latent, and says that "strictly speaking"
the input should be the denoised latent z'_0; E(I_hat) is used because with a denoiser that
"performs sufficiently well" the two are close. Mini's forward UNet is not that good on held-out
scenes (its z'_0 removes ~8.5 % of the copy error, LEVERS.md §6), so this probe trains the
strict version: one change from the released seed-0 Harmony-VAE recipe (the same init, data order,
300 steps, EMA, loss) -- the decoder's latent input is z'_0, sampled once per train composite by
the released forward UNet at the Harmony-VAE's training size (64 px, 5 Euler-ancestral steps,
generator derive_seed(0, "denoised", name)), instead of a sample of E(real).

Usage: python denoised_hvae_probe.py [OUT]  (default results/mini/runs/probes/denoised_hvae)
-> OUT/latents.pt, OUT/run (train_loop run folder; EMA weights in OUT/run/weights/ema)
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from harmonylib.config import load_config, with_seed
from harmonylib.release import released_pipeline
from harmonylib.reproducibility import derive_seed, make_generator
from harmonylib.training.loop import TrainSpec, train_loop
from harmonylib.training.recipes import build_harmony_vae_model, harmony_dataset

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("results/mini/runs/probes/denoised_hvae")
out.mkdir(parents=True, exist_ok=True)
cfg = with_seed(load_config("mini"), 0)
rc = cfg.train.harmony_vae
base = harmony_dataset(cfg, rc.resolution, rc.resize)  # the recipe's dataset: 64 px center crops

# 1. z'_0 of every train composite (cached): the released forward UNet, as inference runs it
lat_file = out / "latents.pt"
if lat_file.is_file():
    latents = torch.load(lat_file)
else:
    pipe = released_pipeline("mini", seed=0)
    pipe.set_progress_bar_config(disable=True)
    sf = pipe.vae.config.scaling_factor
    chunks = []
    for i0 in range(0, len(base), 64):
        items = [base[i] for i in range(i0, min(i0 + 64, len(base)))]
        imgs = [((it["composite"] + 1) / 2).clamp(0, 1) for it in items]  # (3, 64, 64) in [0, 1]
        masks = [it["mask"][0].numpy() for it in items]  # (64, 64) in {0, 1}
        gens = [make_generator(derive_seed(0, "denoised", it["name"])) for it in items]
        with torch.no_grad():
            z = pipe(imgs, masks, generator=gens, size_mode="square", size=rc.resolution,
                     output_type="latent", num_inference_steps=5).images  # (b, 4, 16, 16), scaled
        chunks.append(z / sf)  # unscaled, as the decoder takes it
        print(f"z'_0 {i0 + len(items)}/{len(base)}", flush=True)
    latents = torch.cat(chunks)
    torch.save(latents, lat_file)


class WithLatent(Dataset):
    def __init__(self, ds, z):
        self.ds, self.z = ds, z

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return {**self.ds[i], "latent": self.z[i]}


def denoised_loss(vae, batch, generator):
    """|| I_hat - D(z'_0, E_c(I, M)) ||^2, the conditional posterior sampled as in Eq. 2's recipe."""
    cond = torch.cat([batch["composite"], batch["mask"]], dim=1)  # (B, 4, 64, 64)
    recon = vae.decode_with_cond(batch["latent"], cond, generator=generator, sample_posterior=True).sample
    mse = F.mse_loss(recon.float(), batch["real"].float())
    return mse, {"mse": float(mse.detach()), "l1": float(F.l1_loss(recon.float(), batch["real"].float()))}


# 2. the released seed-0 recipe, with z'_0 in place of E(real)
spec = TrainSpec(build_harmony_vae_model(cfg), denoised_loss, WithLatent(base, latents))
res = train_loop(spec, rc.loop, out / "run", seed=cfg.seed, progress=False)
print(res.status, res.step, res.final_loss, res.weights)

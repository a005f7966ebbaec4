"""Why the mini latent models score below the composites, and why Table 5's random init wins in mini.

Moved here from ``results/mini/diagnostics/latent_limits.py``; its output stays at
``results/<profile>/diagnostics/latent_limits.txt``. Run after ``make reproduce PROFILE=mini``
(it reads ``results/<profile>/runs`` and Table 5's predictions, and makes its own predictions in a
temporary folder)::

    python -m harmonylib.diagnostics.latent_limits --profile mini

Checks, on the same ``n`` composites of a split (seeded choice, as the original script made it),
at R_inf '1024' (the profile's high inference size), scored with the authors' protocol:

1. scenes of each split: Composite, DiffHarmony, DiffHarmony++ and the VAE ceiling;
2. sampling steps: DiffHarmony with each step count of ``steps`` (the paper's 5 first);
3. background latents: the fg-weighted loss never supervises background latents, so the sampled
   latents are decoded as they are and with the composite's own background latents pasted in;
4. Table 5: training loss (first 10 / last 30 steps) and mean weight norm of the added skip convs
   of each Harmony-VAE variant over the training seeds, and how far each variant's '512'
   predictions lie from the composite and from the real image (foreground fMSE and the residual
   after an affine colour fit).

Checks 2-3 run on ``held_out``: the validation split when the dataset has one, else the test split.
Check 4 reads Table 5's finished runs and test-split predictions (it makes none).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from harmonylib.diagnostics.common import available_splits

TABLE5_VARIANTS = ("ec_zero", "ec_random", "ecd_zero", "ecd_random")


def pick_original(samples: Sequence, n: int, seed: int = 0) -> list:
    """``n`` samples chosen as the original script chose them (``default_rng(seed)``), in list order."""
    rng = np.random.default_rng(seed)
    return [samples[i] for i in sorted(rng.choice(len(samples), min(n, len(samples)), replace=False))]


def _all_row(exp, samples, folder) -> pd.Series:
    from harmonylib.evaluation import aggregate, evaluate_predictions

    return (
        aggregate(evaluate_predictions(samples, folder, exp.cfg.eval, progress=False))
        .set_index("subset")
        .loc["All"]
    )


def _line(label: str, a: pd.Series) -> str:
    return f"{label} PSNR {a.psnr:6.2f}  MSE {a.mse:7.1f}  fMSE {a.fmse:7.1f}"


def scenes(setup: Callable, splits: Sequence[str], n: int, seed: int, say: Callable[[str], None]) -> None:
    """Check 1: Composite, DiffHarmony, DiffHarmony++ and the VAE ceiling on each split's scenes."""
    from harmonylib import experiments as E
    from harmonylib.evaluation import aggregate

    say(f"1. scenes of each split ({n} composites each, R_inf '1024')")
    arms = (("Composite", E.Arm("composite")), ("DiffHarmony", E.Arm("diffharmony", "high", 0)),
            ("DiffHarmony++", E.Arm("diffharmony++", "high", 0)), ("VAE ceiling", E.Arm("ceiling", "high", 0)))  # fmt: skip
    for split in splits:
        exp = setup(split)
        samples = pick_original(exp.samples, n, seed)
        for name, arm in arms:
            df = E.score(exp, arm, f"diag{split}", name, samples, dataset=f"diag{split}")
            say("   " + _line(f"{split:5s} {name:14s}", aggregate(df).set_index("subset").loc["All"]))


def sampling_steps(exp, pipe, samples, work: Path, steps: Sequence[int], say) -> None:
    """Check 2: DiffHarmony's scores with each number of Euler-ancestral steps."""
    from harmonylib import experiments as E
    from harmonylib.inference import predict_split

    say("2. sampling steps (DiffHarmony)")
    base = E.inference_settings(exp, E.Arm("diffharmony", "high", 0), "diag")
    for k in steps:
        st = dataclasses.replace(base, steps=int(k))
        folder = predict_split(pipe, samples, work / f"steps{k}", st, progress=False, rank=0, world_size=1)
        say("   " + _line(f"{k:3d} steps:", _all_row(exp, samples, folder)))


@torch.no_grad()
def background_latents(
    exp, pipe, samples, work: Path, size: int, steps: int, say, batch_size: int = 16
) -> None:
    """Check 3: sampled latents decoded as they are, and with the composite's background latents pasted."""
    from harmonylib.imageproc import threshold_mask
    from harmonylib.io import load_mask_l, load_rgb
    from harmonylib.models.unet import prepare_mask_latents
    from harmonylib.reproducibility import derive_seed, make_generator

    say(f"3. background latents (DiffHarmony, {steps} steps, plain decode)")
    vae, sf, res = pipe.vae, pipe.vae.config.scaling_factor, exp.cfg.eval.resolution
    outs = {"sampled": work / "bg_sampled", "composite background pasted": work / "bg_pasted"}
    for p in outs.values():
        p.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(samples), batch_size):
        b = samples[i : i + batch_size]
        comps, masks = [load_rgb(s.composite) for s in b], [load_mask_l(s.mask) for s in b]
        gens = [make_generator(derive_seed(0, s.name)) for s in b]
        lat = pipe(comps, masks, num_inference_steps=steps, generator=gens, size_mode="square", size=size,
                   keep_background=False, output_type="latent").images  # fmt: skip
        lat = torch.stack(list(lat))  # (b, 4, size/8, size/8), scaled
        x = torch.stack([torch.from_numpy(np.asarray(c.resize((size, size), Image.BILINEAR), np.float32)).permute(2, 0, 1)
                         for c in comps]) / 127.5 - 1  # fmt: skip
        m = torch.stack(
            [
                torch.from_numpy(threshold_mask(np.asarray(k.resize((size, size), Image.NEAREST))))[None]
                for k in masks
            ]
        )
        zc = vae.encode(x).latent_dist.mode() * sf  # (b, 4, size/8, size/8)
        ml = prepare_mask_latents(m, zc.shape[-2:])  # (b, 1, size/8, size/8)
        for key, z in (("sampled", lat), ("composite background pasted", lat * ml + zc * (1 - ml))):
            dec = vae.decode(z / sf).sample.clamp(-1, 1)
            arr = ((dec + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for s, img in zip(b, arr, strict=True):
                Image.fromarray(img).resize((res, res), Image.BILINEAR).save(outs[key] / f"{s.name}.png")
    for key, folder in outs.items():
        say("   " + _line(f"{key:28s}", _all_row(exp, samples, folder)))


def table5_variants(exp, say, seed_suffixes: Sequence[str] = ("", "-seed1", "-seed2")) -> None:
    """Check 4: each Table 5 variant's loss, skip-conv weight norm, and its predictions' distances."""
    import glob

    from safetensors.torch import load_file

    from harmonylib.augment import foreground_difference
    from harmonylib.io import load_mask_l

    res = exp.cfg.eval.resolution
    say(f"4. Table 5 variants ({len(seed_suffixes)} training seeds; predictions at R_inf '512', "
        f"all {len(exp.samples)} composites, seed 0)")  # fmt: skip
    for v in TABLE5_VARIANTS:
        first, last, norms = [], [], []
        for suffix in seed_suffixes:
            run = exp.runs / f"harmony_vae-forward-{v}{suffix}"
            m = pd.read_csv(run / "metrics.csv")
            first.append(m["loss"].iloc[:10].mean())
            last.append(m["loss"].iloc[-30:].mean())
            sd = load_file(next((run / "weights" / "ema").glob("*.safetensors")))
            norms.append(
                np.mean(
                    [
                        w.float().norm().item()
                        for k, w in sd.items()
                        if "skip_conv" in k and k.endswith("weight")
                    ]
                )
            )
        found = glob.glob(str(exp.predictions_dir / f"iHarmony4-diffharmonypp_low_{v}_seed0-*"))
        if not found:
            raise FileNotFoundError(
                f"{exp.predictions_dir}: no Table 5 predictions of {v} (run Table 5 first)"
            )

        def grab(p, r=Image.BILINEAR):
            return np.asarray(Image.open(p).convert("RGB").resize((res, res), r))

        to_comp, to_real = [], []
        for s in exp.samples:
            pred, mask = (
                grab(f"{found[0]}/{s.name}.png"),
                np.asarray(load_mask_l(s.mask).resize((res, res), Image.NEAREST)),
            )
            to_comp.append(list(foreground_difference(pred, grab(s.composite), mask).values()))
            to_real.append(list(foreground_difference(pred, grab(s.real), mask).values()))
        c, r = np.nanmean(to_comp, 0), np.nanmean(to_real, 0)
        say(f"   {v:10s} loss first10 {np.mean(first):.4f} last30 {np.mean(last):.4f}  |skip W| {np.mean(norms):5.3f}  "
            f"pred vs composite fMSE {c[0]:5.0f} (residual {c[2]:4.0f})  pred vs real fMSE {r[0]:5.0f} (residual {r[2]:4.0f})")  # fmt: skip


def write_latent_limits(
    profile: str = "mini",
    out: str | os.PathLike | None = None,
    n: int = 80,
    steps: Sequence[int] = (5, 25, 50),
    splits: Sequence[str] | None = None,
    held_out: str | None = None,
    seed: int = 0,
) -> Path:
    """Run checks 1-4 on ``profile``'s finished runs and write ``latent_limits.txt``.

    Args:
        out: the text file; default ``results/<profile>/diagnostics/latent_limits.txt``.
        n: composites per split for checks 1-3.
        steps: step counts of check 2 (the first is also check 3's).
        splits: splits of check 1; default every split of the dataset.
        held_out: split of checks 2-3; default ``val`` when the dataset has it, else ``test``.
    """
    from harmonylib import experiments as E
    from harmonylib.paths import results_dir

    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    results = results_dir(profile)
    work = Path(tempfile.mkdtemp(prefix="latent_limits-"))
    os.symlink(results / "runs", work / "runs")  # the trained runs; predictions go to the temp folder

    def setup(split: str):
        return E.setup(profile, out_dir=str(work), split=split, progress=False)

    first = setup(held_out or "test")
    have = available_splits(first.data_root)
    held_out = held_out or ("val" if "val" in have else "test")
    scenes(setup, list(splits or have), n, seed, say)
    exp = setup(held_out)
    samples = pick_original(exp.samples, n, seed)
    pipe = E.make_pipeline(exp)
    size = E.inference_sizes(exp.cfg)["high"]
    sampling_steps(exp, pipe, samples, work, steps, say)
    background_latents(exp, pipe, samples, work, size, int(steps[0]), say)
    exp_t5 = E.setup(profile, split="test", progress=False)  # Table 5's own runs and test predictions
    table5_variants(exp_t5, say)
    path = Path(out) if out else results / "diagnostics" / "latent_limits.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m harmonylib.diagnostics.latent_limits", description=__doc__.splitlines()[0]
    )
    p.add_argument("--profile", default="mini")
    p.add_argument(
        "--out", default=None, help="text file (default: results/<profile>/diagnostics/latent_limits.txt)"
    )
    p.add_argument("--n", type=int, default=80, help="composites per split")
    p.add_argument("--steps", type=int, nargs="+", default=[5, 25, 50], help="step counts of check 2")
    p.add_argument("--splits", nargs="+", default=None, help="splits of check 1 (default: all)")
    p.add_argument(
        "--held-out", default=None, help="split of checks 2-3 (default: val if present, else test)"
    )
    args = p.parse_args(argv)
    path = write_latent_limits(args.profile, args.out, args.n, args.steps, args.splits, args.held_out)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

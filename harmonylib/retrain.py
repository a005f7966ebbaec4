"""``make retrain``: re-make the released mini checkpoints from the base weights, and check them.

The released checkpoints (``harmonylib/weights/mini``: the forward UNet ``unet/`` and the
Harmony-VAE deltas under ``released/``) are made from the committed base weights (the VAE and the
SD-inpainting stand-in) by two recipes:

1. the forward DiffHarmony UNet, fine-tuned from ``inpainting_unet/`` on the harmonization train
   split (pretraining stage d, ``pretrain.unet``);
2. the Harmony-VAE (E_c+D, zero init) for each claim seed (``train.harmony_vae``).

This module runs both into a scratch folder (``results/<profile>/runs/retrain`` by default; every
run is resumable), exports them exactly as the release is stored, and compares every file's SHA-256
with the committed ones. CPU training is deterministic for a given torch build and thread count, so
on the platform that made the release every hash matches. ``--release`` copies the outputs into the
package (how the release was made the first time).

    python -m harmonylib.retrain --profile mini            # check (make retrain)
    python -m harmonylib.retrain --profile mini --release  # (re)make the release
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from harmonylib.io import atomic_write_json


def retrain(
    profile: str = "mini",
    out: str | Path | None = None,
    seeds: list[int] | None = None,
    progress: bool = True,
    release: bool = False,
    unet_runs_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Re-make the release into ``out``; return the comparison record (also ``out/RETRAIN.json``).

    Args:
        unet_runs_dir: where stage (d)'s run folder lives (default ``out/runs``); pointing it at
            ``results/<profile>/runs/pretrain`` reuses the pretraining's finished run.
    """
    from harmonylib.config import PAPER_VARIANT, load_config, with_seed
    from harmonylib.experiments import default_seeds
    from harmonylib.paths import portable, resolve, results_dir
    from harmonylib.provenance import provenance, sha256_tree
    from harmonylib.release import export_release, release_name
    from harmonylib.training.pretrain import (
        INPAINTING_COMPONENT,
        _save_component,
        file_hashes,
        unet_stage_config,
    )
    from harmonylib.training.runs import ensure_trained

    cfg = load_config(profile)
    weights = resolve(cfg.pretrain.out_dir)
    out = Path(out) if out is not None else results_dir(profile, "runs") / "retrain"
    runs = out / "runs"
    dtype = torch.float16 if cfg.pretrain.weights_dtype == "float16" else torch.float32
    wall: dict[str, float] = {}

    # 1. the forward UNet, from the committed VAE and inpainting stand-in (pretraining stage d)
    t0 = time.perf_counter()
    vae_dir, init = weights / "vae", weights / INPAINTING_COMPONENT
    tag = f"vae{sha256_tree(vae_dir)[:12]}-init{sha256_tree(init)[:12]}"
    urun = ensure_trained(
        unet_stage_config(cfg, vae_dir, init),
        "unet",
        run_dir=Path(unet_runs_dir or runs) / f"unet-{cfg.pretrain.unet.direction}-{tag}",
        progress=progress,
    )
    _save_component(urun.load_model(ema=True), out / "unet", dtype)
    wall["unet_s"] = time.perf_counter() - t0

    # 2. the Harmony-VAE of every claim seed
    t0 = time.perf_counter()
    # a Harmony-VAE on z'_0 (train.harmony_vae.latent: denoised) samples it with the UNet just re-made
    unet_cfg = dataclasses.replace(cfg.train.unet, adopt=str(portable(out / "unet")))
    hcfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, unet=unet_cfg))
    cfgs = [with_seed(hcfg, s, PAPER_VARIANT) for s in default_seeds(cfg, seeds)]
    hruns = [
        ensure_trained(c, "harmony_vae", run_dir=runs / release_name(c), progress=progress) for c in cfgs
    ]
    export_release(hruns, cfgs, out / "released")
    wall["harmony_vae_s"] = time.perf_counter() - t0

    # 3. compare with the committed release, file by file
    pairs = [("unet", out / "unet", weights / "unet")] + [
        (
            f"released/{release_name(c)}",
            out / "released" / release_name(c),
            weights / "released" / release_name(c),
        )
        for c in cfgs
    ]
    rows = []
    for name, new, old in pairs:
        new_h = file_hashes(new)
        old_h = file_hashes(old) if old.is_dir() else {}
        rows.append({"folder": name, "files": len(new_h), "identical": bool(old_h) and new_h == old_h})
    if release:
        for _name, new, old in pairs:
            shutil.rmtree(old, ignore_errors=True)
            old.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(new, old)
    record = provenance(
        config={"profile": profile, "seeds": [c.seed for c in cfgs]},
        recipe="harmonylib.retrain.retrain",
        comparison=rows,
        all_identical=all(r["identical"] for r in rows),
        released=release,
        wall_times_s=wall,
        out=portable(str(out)),
    )
    atomic_write_json(out / "RETRAIN.json", record)
    return record


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.retrain") -> int:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Re-make the released mini checkpoints from the base weights and compare their hashes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--profile", default="mini", help="profile whose release is re-made")
    ap.add_argument("--out", default=None, help="scratch folder (default results/<profile>/runs/retrain)")
    ap.add_argument(
        "--seeds", type=int, nargs="*", default=None, help="Harmony-VAE seeds (default: the claim seeds)"
    )
    ap.add_argument(
        "--release", action="store_true", help="copy the outputs into the package (make the release)"
    )
    ap.add_argument("--unet-runs-dir", default=None, help="where stage (d)'s run lives (reuse pretraining's)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    rec = retrain(args.profile, args.out, args.seeds, not args.no_progress, args.release, args.unet_runs_dir)
    for r in rec["comparison"]:
        print(f"{r['folder']:<40} {r['files']:>3} files  {'identical' if r['identical'] else 'DIFFERENT'}")
    print(f"wall time: {sum(rec['wall_times_s'].values()):.0f} s ({rec['wall_times_s']})")
    return 0 if rec["all_identical"] or args.release else 1


if __name__ == "__main__":
    sys.exit(main())

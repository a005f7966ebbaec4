"""Training throughput: data-loader overhead, and the wall time of each mini training.

    python benchmarks/bench_training.py [--profile mini] [--loader-steps 30] [--recipes unet harmony_vae ...]
                                        [--threads 1] [--skip-loader] [--skip-runs]

1. Loader overhead (goal <= 1.10): the median time of a Harmony-VAE training step fed by the real
   data path (``HarmonyDataset`` with its pre-resized cache, uint8 -> float conversion, mask
   binarisation, DataLoader collate) divided by the same step fed by an in-memory list of
   ready-made item tensors. Both run through ``train_loop``; the cache is filled beforehand, as
   it is after the first epoch of a real run.
2. Mini trainings (goal <= 2 min each): ``ensure_trained`` of every recipe of the profile into a
   temporary folder, wall time including model building and saving. The refinement recipe's
   stage-1 outputs come from a stub (half the composite), since the mini DiffHarmony pipeline
   is not trained yet; its cache time is reported separately.

Not a test: run it on demand. On shared CPUs use ``--threads 1`` (two threads on two busy cores
are several times slower than one).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

from harmonylib.config import load_config
from harmonylib.training.loop import TrainSpec, train_loop
from harmonylib.training.recipes import RECIPES, build_spec
from harmonylib.training.runs import ensure_trained


class InMemory(Dataset):
    """Ready-made items: indexing only."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def _step_times(spec: TrainSpec, loop, run_dir: Path) -> list[float]:
    stamps: list[float] = []
    train_loop(
        spec,
        loop,
        run_dir,
        seed=0,
        resume=None,
        progress=False,
        on_step_end=lambda s: stamps.append(time.perf_counter()),
    )
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)][2:]  # drop warm-up steps


def bench_loader(profile: str, steps: int, tmp: Path) -> None:
    over = {
        "train.harmony_vae.loop.max_steps": steps,
        "train.harmony_vae.loop.checkpointing_steps": 10**6,
        "train.harmony_vae.loop.ema.enabled": False,
    }
    cfg = load_config(profile, over)
    loop = cfg.train.harmony_vae.loop
    real = build_spec(cfg, "harmony_vae")
    real.dataset.preload()
    keys = ("composite", "real", "mask", "index")
    mem = build_spec(cfg, "harmony_vae")
    mem.dataset = InMemory([{k: real.dataset[i][k] for k in keys} for i in range(len(real.dataset))])
    t_real, t_mem = [], []
    for rep in range(4):  # interleaved, so that load from other jobs hits both alike
        t_real += _step_times(real, loop, tmp / f"real{rep}")
        t_mem += _step_times(mem, loop, tmp / f"mem{rep}")
    mr, mm = statistics.median(t_real), statistics.median(t_mem)
    print(
        f"loader: real data path {mr * 1000:.1f} ms/step, in-memory {mm * 1000:.1f} ms/step, ratio {mr / mm:.3f} (goal <= 1.10)"
    )
    # The same comparison without the model: the time to produce one batch on each path. On busy
    # shared CPUs the step ratio above is noisy; this difference is what the loader really adds.
    from torch.utils.data import DataLoader

    def batch_time(ds) -> float:
        loader = DataLoader(ds, batch_size=loop.batch_size, shuffle=False)
        t0 = time.perf_counter()
        n = sum(1 for _ in loader)
        return (time.perf_counter() - t0) / n

    br = statistics.median(batch_time(real.dataset) for _ in range(3))
    bm = statistics.median(batch_time(mem.dataset) for _ in range(3))
    print(
        f"loader: one batch takes {br * 1000:.2f} ms (real) vs {bm * 1000:.2f} ms (in-memory): "
        f"ratio from batch times {(mm + br - bm) / mm:.3f}"
    )


def _stub_stage1(composite, mask, generators):
    return 0.5 * composite


def bench_runs(profile: str, recipes: list[str], tmp: Path) -> None:
    cfg = load_config(profile)
    print(f"{'recipe':12s} {'steps':>6s} {'wall s':>8s} {'s/step':>8s} {'final loss':>11s}  goal <= 120 s")
    for recipe in recipes:
        kw = {}
        if recipe == "refinement":
            import os

            os.environ["HARMONYLIB_HOME"] = str(tmp)  # the stage-1 cache goes under results/
            t0 = time.perf_counter()
            from harmonylib.training.recipes import train_samples
            from harmonylib.training.runs import stage1_cache_dir
            from harmonylib.training.stage1_cache import build_stage1_cache

            rc = cfg.train.refinement
            build_stage1_cache(
                train_samples(cfg),
                _stub_stage1,
                stage1_cache_dir(cfg, "stub"),
                resolution=rc.resolution,
                stage1_resolution=rc.stage1_resolution,
                resize=rc.resize,
                seed=cfg.seed,
                key="stub",
            )
            print(f"  (stage-1 cache with the stub: {time.perf_counter() - t0:.1f} s)")
            kw = {"stage1_key": "stub"}
        t0 = time.perf_counter()
        run = ensure_trained(cfg, recipe, run_dir=tmp / recipe, progress=False, **kw)
        wall = time.perf_counter() - t0
        extra = (
            f"  test acc {run.test_metrics['accuracy']:.3f} auc {run.test_metrics['roc_auc']:.3f}"
            if run.test_metrics
            else ""
        )
        print(
            f"{recipe:12s} {run.steps:6d} {wall:8.1f} {wall / max(run.steps, 1):8.3f} {run.final_loss:11.4g}{extra}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--loader-steps", type=int, default=30)
    ap.add_argument("--recipes", nargs="*", default=list(RECIPES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-loader", action="store_true")
    ap.add_argument("--skip-runs", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"profile {a.profile}, torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not a.skip_loader:
            bench_loader(a.profile, a.loader_steps, tmp)
        if not a.skip_runs:
            bench_runs(a.profile, a.recipes, tmp)


if __name__ == "__main__":
    main()

"""Pipeline overhead: DiffHarmonyPipeline time ÷ the bare sum of its model calls.

Full-size architectures with random weights (SD-1.5 inpainting UNet, SD VAE, Harmony-VAE built
from it), one 256 px image, fp32, CPU, 5 Euler-ancestral steps. The bare sum is what no pipeline
can avoid: ``vae.encode`` + 5 × ``unet`` + ``decode_with_cond`` (conditional encode + decode).
Goal: ratio <= 1.05. Timings are interleaved. Both wall-clock and process-CPU time are reported
(median ratio and ratio of minima): on shared cores single wall-clock runs vary by tens of
percent, while with ``--threads 1`` CPU time is nearly immune to other processes.

    .venv/bin/python benchmarks/bench_pipeline.py --reps 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from diffusers import AutoencoderKL

from harmonylib.models.configs import SD_VAE_CONFIG
from harmonylib.models.harmony_vae import HarmonyVAE
from harmonylib.models.scheduler import make_scheduler
from harmonylib.models.unet import EmptyPromptEmbedding, build_unet
from harmonylib.pipeline import DiffHarmonyPipeline
from harmonylib.reproducibility import make_generator


class _Clock:
    """Wall-clock and process-CPU seconds. With one thread, CPU time ignores other processes' load."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def build_full_size_pipeline(seed: int = 0) -> DiffHarmonyPipeline:
    torch.manual_seed(seed)
    unet = build_unet().eval()
    hvae = HarmonyVAE.from_vae(AutoencoderKL(**SD_VAE_CONFIG)).eval()
    embeds = EmptyPromptEmbedding.from_tensor(torch.randn(1, 77, 768))
    pipe = DiffHarmonyPipeline(vae=hvae, unet=unet, scheduler=make_scheduler(), empty_prompt_embedding=embeds)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def bare_model_calls(pipe: DiffHarmonyPipeline, size: int, steps: int) -> tuple[float, float]:
    """(wall, cpu) seconds for the model calls alone, on ready-made tensors."""
    g = make_generator(0)
    h = size // 8
    x = torch.rand(1, 3, size, size, generator=g) * 2 - 1  # (1, 3, S, S)
    cond = torch.cat([x, (torch.rand(1, 1, size, size, generator=g) > 0.5).float()], 1)  # (1, 4, S, S)
    unet_in = torch.randn(1, 9, h, h, generator=g)  # (1, 9, S/8, S/8)
    emb = pipe.empty_prompt_embedding.embeds
    z = torch.randn(1, 4, h, h, generator=g)
    pipe.scheduler.set_timesteps(steps)
    ts = list(pipe.scheduler.timesteps)
    clock = _Clock()
    pipe.vae.encode(x).latent_dist.sample(g)
    for t in ts:
        _ = pipe.unet(unet_in, t, encoder_hidden_states=emb).sample
    _ = pipe.vae.decode_with_cond(z, cond, generator=g).sample
    return clock.stop()


def pipeline_call(pipe: DiffHarmonyPipeline, size: int, steps: int, **kwargs) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    clock = _Clock()
    pipe(img, mask, num_inference_steps=steps, generator=make_generator(0), size=size, **kwargs)
    return clock.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument(
        "--reps", type=int, default=2, help="timed repetitions after one warm-up (median reported)"
    )
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    pipe = build_full_size_pipeline()
    print(f"built full-size pipeline in {time.perf_counter() - t0:.1f} s; threads={args.threads}", flush=True)
    settings = {"square_np": dict(size_mode="square", output_type="np", keep_background=False),
                "keep_aspect_pil": dict(size_mode="keep_aspect", output_type="pil", keep_background=True)}  # fmt: skip
    # warm-up (one-time allocator / oneDNN costs)
    bare_model_calls(pipe, args.size, args.steps)
    pipeline_call(pipe, args.size, args.steps, **settings["square_np"])
    times: dict[str, list[tuple[float, float]]] = {"bare": [], **{k: [] for k in settings}}
    for r in range(args.reps):  # interleaved, so drifting load hits all alike
        times["bare"].append(bare_model_calls(pipe, args.size, args.steps))
        for name, kw in settings.items():
            times[name].append(pipeline_call(pipe, args.size, args.steps, **kw))
        print(f"rep {r}: " + ", ".join(f"{k}={v[-1][0]:.2f}s wall/{v[-1][1]:.2f}s cpu" for k, v in times.items()),
              flush=True)  # fmt: skip
    result: dict = {"size": args.size, "steps": args.steps, "dtype": "float32", "device": "cpu",
                    "threads": args.threads, "reps": args.reps}  # fmt: skip
    for i, clock in enumerate(("wall", "cpu")):
        t = {k: [v[i] for v in vs] for k, vs in times.items()}
        med = {k: statistics.median(v) for k, v in t.items()}
        result[clock] = {
            "seconds": t,
            "median_ratio": {k: med[k] / med["bare"] for k in settings},
            # on shared cores the minimum is the least disturbed run
            "ratio_of_minima": {k: min(t[k]) / min(t["bare"]) for k in settings},
        }
    print(json.dumps(result, indent=2))
    if args.json:
        from harmonylib.io import atomic_write_json

        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

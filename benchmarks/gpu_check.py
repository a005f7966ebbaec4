"""GPU check: full-size speed, tiled-decode scaling, device correctness and one training step per recipe.

One command, under 4 minutes on one large GPU (an H200 was the target). It writes its JSON after
each section, so a run cut short keeps what it measured, and prints a summary at the end.

Sections (``--sections`` picks some):
- ``pipeline``: full-size DiffHarmony++ at 1024 px: the SD-1.5 inpainting UNet and the SD-VAE-sized
  Harmony-VAE with random weights, bf16, batch 1 and 8, 5 steps; s/image and peak memory.
  Goal: ≤ 0.25 s/image at batch 8.
- ``tiled_decode``: the Harmony-VAE decode at 512, 1024 and 2048 px, tiled (default tile 64 latent
  px and its default overlap) and untiled; time exponent k (time ∝ pixels^k, goal ≤ 1.1), tiled
  decode-peak ratio 2048/512 (goal ≤ 2) and tiled/untiled time (goal ≤ 1.25).
- ``correctness``: the committed mini pipeline (``harmonylib/weights/mini``: UNet, base VAE wrapped
  as a Harmony-VAE with seeded random skips, since no trained Harmony-VAE is committed) on CPU
  fp32 vs the GPU in fp32 with TF32 off, max |Δ| ≤ FP32_MAX_ABS; GPU bf16 vs GPU fp32 PSNR ≥
  BF16_MIN_PSNR_DB. Both bounds are fixed here, before any run.
- ``training``: one optimiser step per paper recipe (UNet, Harmony-VAE, refinement, classifier)
  with the paper profile's AMP, at its batch size or the largest that fits; s/step, peak memory
  (see ``gpu_check_training.py``).

On the device (Python 3.12, torch 2.11, no diffusers; nothing can be downloaded there), first, here,
in the repo root, fetch the two pure-Python wheels it lacks (diffusers' other needs are there):

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 importlib_metadata==10.2.0

then run, carrying ``.whl`` (device tool: ``carry=[".whl"]``, ``timeout_s=360``):

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
      && PYTHONPATH=.:/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT/gpu_check.json

``--dry-run`` runs every section's code with tiny models and sizes on the CPU (``tests/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from bench_vae_decode import fit_exponent  # noqa: E402
from gpu_check_training import TRAIN_RECIPES, training_step  # noqa: E402

from harmonylib.reproducibility import make_generator  # noqa: E402

SECTIONS = ("pipeline", "tiled_decode", "correctness", "training")
#: CPU fp32 vs GPU fp32 (TF32 off), output in [0, 1]: float32 rounding through 5 steps and 2 nets.
FP32_MAX_ABS = 2e-3
#: GPU bf16 vs GPU fp32 of the mini pipeline, peak 1.
BF16_MIN_PSNR_DB = 30.0
GOAL_S_PER_IMAGE_B8, GOAL_K, GOAL_PEAK_RATIO, GOAL_TILED_RATIO = 0.25, 1.1, 2.0, 1.25
STEPS = 5
MINI = ROOT / "harmonylib" / "weights" / "mini"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _measure(fn: Any, device: torch.device) -> tuple[Any, float, float | None]:
    """(result, seconds, peak GiB allocated above what was there before) of ``fn()``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() - base) / 2**30 if device.type == "cuda" else None
    return out, seconds, peak


def _inputs(batch: int, size: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Random composites (B, 3, S, S) in [0, 1] and one (1, S, S) box mask each."""
    g = make_generator(0)
    images = torch.rand(batch, 3, size, size, generator=g)
    masks = []
    for _ in range(batch):
        m = torch.zeros(1, size, size)
        y, x = (int(v) for v in torch.randint(0, size // 2, (2,), generator=g))
        m[:, y : y + size // 2, x : x + size // 2] = 1.0
        masks.append(m)
    return images, masks


def _run_pipeline(pipe: Any, images: torch.Tensor, masks: list, size: int) -> torch.Tensor:
    return pipe(
        images,
        masks,
        num_inference_steps=STEPS,
        generator=[make_generator(i) for i in range(len(masks))],
        output_type="pt",
        size_mode="square",
        size=size,
    ).images  # (B, 3, size, size) in [0, 1], CPU


def _pipeline_from(components: dict, device: torch.device, dtype: torch.dtype) -> Any:
    from harmonylib.pipeline import DiffHarmonyPipeline

    pipe = DiffHarmonyPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype)


def section_pipeline(device: torch.device, dry: bool) -> dict[str, Any]:
    """Full-size DiffHarmony++ (random weights, bf16) at 1024 px, batch 1 and 8."""
    from harmonylib.models.harmony_vae import build_harmony_vae
    from harmonylib.models.scheduler import make_scheduler
    from harmonylib.models.tiny import build_tiny_components
    from harmonylib.models.unet import EmptyPromptEmbedding, build_unet

    size, batches = (64, (1, 2)) if dry else (1024, (1, 8))
    if dry:
        components = build_tiny_components(seed=0)
    else:
        torch.manual_seed(0)
        with torch.device(device):
            unet = build_unet()
        vae = build_harmony_vae("sd", skip_init="random", mask_conv_init="default")  # CPU: seeded init
        prompt = torch.randn(1, 77, unet.config.cross_attention_dim, generator=make_generator(0))
        components = {
            "vae": vae,
            "unet": unet,
            "scheduler": make_scheduler(),
            "empty_prompt_embedding": EmptyPromptEmbedding.from_tensor(prompt),
        }
    pipe = _pipeline_from(components, device, torch.bfloat16)
    _run_pipeline(pipe, *_inputs(1, size), size)  # warm-up: kernel selection, allocator
    result: dict[str, Any] = {"size": size, "steps": STEPS, "dtype": "bfloat16", "runs": []}
    for b in batches:
        out, seconds, peak = _measure(lambda b=b: _run_pipeline(pipe, *_inputs(b, size), size), device)
        assert out.shape == (b, 3, size, size) and torch.isfinite(out).all()
        result["runs"].append(
            {"batch": b, "s_per_image": seconds / b, "seconds": seconds, "peak_mem_gb": peak}
        )
    result["goal_s_per_image_batch8"] = GOAL_S_PER_IMAGE_B8
    result["goal_met"] = result["runs"][-1]["s_per_image"] <= GOAL_S_PER_IMAGE_B8
    return result


def section_tiled_decode(device: torch.device, dry: bool) -> dict[str, Any]:
    """Harmony-VAE decode, tiled and untiled, bf16, at 512 → 2048 px (64 → 256 px dry)."""
    from harmonylib.models.harmony_vae import build_harmony_vae, default_tile_overlap

    sizes, tile = ((64, 128, 256), 8) if dry else ((512, 1024, 2048), 64)
    vae = build_harmony_vae("tiny" if dry else "sd", skip_init="random", mask_conv_init="default")
    vae = vae.to(device=device, dtype=torch.bfloat16).eval()
    rows = []
    for size in (sizes[0], *sizes):  # the first pass warms up and is dropped
        g = make_generator(size)
        z = torch.randn(1, 4, size // 8, size // 8, generator=g).to(
            device, torch.bfloat16
        )  # (1, 4, S/8, S/8)
        cond = torch.cat(
            [
                torch.rand(1, 3, size, size, generator=g) * 2 - 1,
                (torch.rand(1, 1, size, size, generator=g) > 0.5).float(),
            ],
            dim=1,
        ).to(device, torch.bfloat16)  # (1, 4, S, S)
        row: dict[str, Any] = {"size": size}
        outs = {}
        for mode, kw in (("untiled", {}), ("tiled", {"tile_latent_size": tile})):
            with torch.no_grad():
                outs[mode], row[f"{mode}_s"], row[f"{mode}_peak_gb"] = _measure(
                    lambda kw=kw, z=z, cond=cond: vae.decode_with_cond(
                        z, cond, sample_posterior=False, **kw
                    ).sample.float(),
                    device,
                )
        mse = float(((outs["tiled"] - outs["untiled"]) ** 2).mean())
        row["tiled_vs_untiled_psnr_db"] = 10 * math.log10(4 / mse) if mse else math.inf  # range [-1, 1]
        row["time_ratio"] = row["tiled_s"] / row["untiled_s"]
        rows.append(row)
    rows = rows[1:]
    k = fit_exponent([r["size"] for r in rows], [r["tiled_s"] for r in rows])
    peak_ratio = rows[-1]["tiled_peak_gb"] / rows[0]["tiled_peak_gb"] if device.type == "cuda" else None
    return {
        "tile_latent_size": tile,
        "tile_overlap": default_tile_overlap(tile),
        "dtype": "bfloat16",
        "rows": rows,
        "tiled_time_exponent_k": k,
        "tiled_peak_ratio": peak_ratio,
        "goals": {"k": GOAL_K, "peak_ratio": GOAL_PEAK_RATIO, "tiled_over_untiled": GOAL_TILED_RATIO},
        "goal_met": {
            "k": k <= GOAL_K,
            "peak_ratio": None if peak_ratio is None else peak_ratio <= GOAL_PEAK_RATIO,
            "tiled_over_untiled": all(r["time_ratio"] <= GOAL_TILED_RATIO for r in rows[1:]),
        },
    }


def _mini_components() -> dict[str, Any]:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from harmonylib.models.harmony_vae import HarmonyVAE
    from harmonylib.models.scheduler import make_scheduler
    from harmonylib.models.unet import EmptyPromptEmbedding

    base = AutoencoderKL.from_pretrained(MINI / "vae")
    return {
        "vae": HarmonyVAE.from_vae(
            base, generator=make_generator(7), skip_init="random", mask_conv_init="default"
        ),
        "unet": UNet2DConditionModel.from_pretrained(MINI / "unet"),
        "scheduler": make_scheduler(json.loads((MINI / "scheduler" / "scheduler_config.json").read_text())),
        "empty_prompt_embedding": EmptyPromptEmbedding.from_pretrained(MINI / "empty_prompt_embedding"),
    }


def section_correctness(device: torch.device, dry: bool) -> dict[str, Any]:
    """Mini pipeline: CPU fp32 vs device fp32 (TF32 off), and device bf16 vs device fp32."""
    size, batch = 64, 4
    images, masks = _inputs(batch, size)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ref = _run_pipeline(
            _pipeline_from(_mini_components(), torch.device("cpu"), torch.float32), images, masks, size
        )
        fp32 = _run_pipeline(_pipeline_from(_mini_components(), device, torch.float32), images, masks, size)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    bf16 = _run_pipeline(_pipeline_from(_mini_components(), device, torch.bfloat16), images, masks, size)
    max_abs = float((fp32 - ref).abs().max())
    mse = float(((bf16 - fp32) ** 2).mean())
    psnr = 10 * math.log10(1 / mse) if mse else math.inf
    return {
        "size": size,
        "batch": batch,
        "fp32_max_abs_cpu_vs_device": max_abs,
        "fp32_tolerance": FP32_MAX_ABS,
        "fp32_ok": max_abs <= FP32_MAX_ABS,
        "bf16_psnr_db_vs_fp32": psnr,
        "bf16_min_psnr_db": BF16_MIN_PSNR_DB,
        "bf16_ok": psnr >= BF16_MIN_PSNR_DB,
    }


def section_training(device: torch.device, dry: bool) -> dict[str, Any]:
    """One timed training step per paper recipe (see ``gpu_check_training.py``)."""
    return {r: training_step(r, device, dry, steps=1 if dry else 3) for r in TRAIN_RECIPES}


def _environment(device: torch.device, dry: bool) -> dict[str, Any]:
    import diffusers

    env = {
        "dry_run": dry,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": sys.version,
    }
    env["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return env


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary, one line per measured figure."""
    lines = [f"GPU check on {report['environment']['device']} (dry run: {report['environment']['dry_run']})"]
    for name in SECTIONS:
        sec = report.get(name)
        if sec is None:
            continue
        if "error" in sec:
            lines.append(f"{name}: FAILED {sec['error']}")
        elif name == "pipeline":
            for r in sec["runs"]:
                mem = "-" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.1f} GiB"
                lines.append(
                    f"pipeline {sec['size']} px batch {r['batch']}: {r['s_per_image']:.3f} s/image, peak {mem}"
                )
            lines.append(
                f"pipeline goal ≤ {GOAL_S_PER_IMAGE_B8} s/image at the largest batch: {sec['goal_met']}"
            )
        elif name == "tiled_decode":
            for r in sec["rows"]:
                lines.append(
                    f"decode {r['size']} px: untiled {r['untiled_s']:.3f} s, tiled {r['tiled_s']:.3f} s "
                    f"({r['time_ratio']:.2f}×), tiled vs untiled PSNR {r['tiled_vs_untiled_psnr_db']:.1f} dB"
                )
            ratio = sec["tiled_peak_ratio"]
            lines.append(
                f"tiled decode: k = {sec['tiled_time_exponent_k']:.2f}, peak ratio "
                f"{'-' if ratio is None else f'{ratio:.2f}'}; goals met {sec['goal_met']}"
            )
        elif name == "correctness":
            lines.append(
                f"correctness: fp32 CPU vs device max |Δ| {sec['fp32_max_abs_cpu_vs_device']:.2e} "
                f"(≤ {FP32_MAX_ABS}: {sec['fp32_ok']}); bf16 PSNR {sec['bf16_psnr_db_vs_fp32']:.1f} dB "
                f"(≥ {BF16_MIN_PSNR_DB}: {sec['bf16_ok']})"
            )
        else:
            for r in (sec[recipe] for recipe in TRAIN_RECIPES if recipe in sec):
                mem = "-" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.1f} GiB"
                lines.append(
                    f"train {r['recipe']}: {r['s_per_step']:.3f} s/step at batch {r['batch_size']} "
                    f"(paper {r['paper_batch_size']}), {r['resolution']} px, {r['mixed_precision']}, peak {mem}"
                )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--out", type=Path, default=Path("gpu_check.json"), help="JSON written after each section"
    )
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    ap.add_argument("--dry-run", action="store_true", help="tiny models and sizes on the CPU")
    args = ap.parse_args(argv)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # not the "cast with to()" notes of every pipeline move
    diffusers_logging.disable_progress_bar()
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device; use --dry-run to exercise the code on the CPU")
    device = torch.device("cpu" if args.dry_run else "cuda")
    report: dict[str, Any] = {"environment": _environment(device, args.dry_run)}
    functions = {
        "pipeline": section_pipeline,
        "tiled_decode": section_tiled_decode,
        "correctness": section_correctness,
        "training": section_training,
    }
    for name in args.sections:
        t0 = time.perf_counter()
        try:
            report[name] = functions[name](device, args.dry_run)
        except Exception as exc:  # keep the other sections' figures; the error is in the JSON
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        report[name]["section_s"] = time.perf_counter() - t0
        print(f"[{name}] done in {report[name]['section_s']:.1f} s", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, default=str))
        os.replace(tmp, args.out)  # atomic: a cut-short run leaves the last complete JSON
    print("\n".join(summary_lines(report)))
    return report


if __name__ == "__main__":
    main()

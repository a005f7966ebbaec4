"""Time and peak memory of the Harmony-VAE conditional decode vs resolution, tiled and untiled.

Builds the FULL-SIZE Harmony-VAE (the SD ``sd-vae-ft-mse`` architecture, 119.7M parameters), with
random weights and random skips so the skip path does real work. Each (size, mode) runs in a fresh
subprocess, so peak memory is that configuration's own:
- CPU: ``ru_maxrss`` of the subprocess (whole process, incl. ~0.5 GB of weights and the torch
  runtime), and the same minus the RSS just before the decode (the decode's own peak);
- CUDA: ``torch.cuda.max_memory_allocated`` around the decode.

The printout puts the ratios side by side: per size, tiled / untiled time (goal ≤ 1.25) and
decode peak, next to the tiled work ratio (tiles × tile area / image area), and how each decode's
time splits into E_c, the skip decoder, and the rest (noise, slicing, blending). ``k`` is fitted to ``time ∝ pixels^k`` over the sizes
run. Goals: tiled ``k ≤ 1.1``, and the tiled decode peak at the largest size ``≤ 2×`` that at the
smallest. Where both modes ran, it also gives the tiled-vs-untiled error (max |Δ|, PSNR, with a
[-1, 1] range). With random weights that error is only indicative.

Usage (run on demand, not in CI):
    python benchmarks/bench_vae_decode.py                      # 512 1024 2048, tile 64 latent
    python benchmarks/bench_vae_decode.py --sizes 256 512 --tile 32 --repeats 2
    python benchmarks/bench_vae_decode.py --device cuda

On CPU, untiled decodes above ``--max-untiled`` px (default 1024) are skipped. At 2048 px the
untiled decode needs about 12 GB for the 12 skip maps alone (3×128×2048² + 3×256×1024² + …
float32), plus the decoder's activations. That does not fit beside other jobs on a 24 GiB machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(args: argparse.Namespace) -> None:
    """One configuration in this process; prints one JSON line."""
    import torch

    sys.path.insert(0, str(ROOT))
    from harmonylib.models import SD_VAE_CONFIG, HarmonyVAE
    from harmonylib.reproducibility import make_generator

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = (
        HarmonyVAE(**{**SD_VAE_CONFIG, "skip_init": "random", "mask_conv_init": "default"}).eval().to(device)
    )
    size = args.size
    g = make_generator(1)
    z = torch.randn(1, 4, size // 8, size // 8, generator=g).to(device)  # (1, 4, H/8, W/8)
    image = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    mask = (torch.rand(1, 1, size, size, generator=g) > 0.5).float()
    cond = torch.cat([image, mask], dim=1).to(device)  # (1, 4, H, W)
    tile = dict(tile_latent_size=args.tile, tile_overlap=args.overlap) if args.mode == "tiled" else {}
    if args.mode == "pair":
        _worker_pair(args, model, z, cond, device)
        return
    # Where the time goes: wrap E_c and the skip decoder; the rest is noise, slicing and blending.
    split = {"ec_s": 0.0, "decoder_s": 0.0}

    def timed(fn, key):
        def run(*a, **kw):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            r = fn(*a, **kw)
            if device.type == "cuda":
                torch.cuda.synchronize()
            split[key] += time.perf_counter() - t0
            return r

        return run

    model.encode_cond = timed(model.encode_cond, "ec_s")
    model._decode_with_skips = timed(model._decode_with_skips, "decoder_s")

    rss_before = _rss_mb()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_alloc = torch.cuda.memory_allocated() / 2**20
    times = []
    for _ in range(args.repeats):  # the fastest repeat is the least disturbed by other jobs
        split.update(ec_s=0.0, decoder_s=0.0)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.decode_with_cond(z, cond, generator=make_generator(2), **tile).sample
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if times[-1] == min(times):
            best_split = dict(split)
    seconds = min(times)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "size": size,
        "mode": args.mode,
        "seconds": seconds,
        "all_seconds": times,
        **best_split,
        "other_s": seconds - best_split["ec_s"] - best_split["decoder_s"],
        "maxrss_mb": maxrss,
        "rss_before_mb": rss_before,
    }
    if device.type == "cuda":
        result["decode_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 - base_alloc
    else:
        # ru_maxrss is monotonic: if building the model peaked higher, the decode peak is hidden.
        result["decode_peak_mb"] = maxrss - rss_before
        result["decode_peak_is_lower_bound"] = maxrss <= maxrss_before
    if args.save:
        torch.save(out.cpu(), args.save)
    print(json.dumps(result), flush=True)


def _worker_pair(args: argparse.Namespace, model, z, cond, device) -> None:
    """Untiled and tiled decodes alternated in one process, ``repeats`` times each; one JSON line.

    On a shared machine the load drifts between subprocesses; alternating in one process exposes
    both modes to the same load, so their ratio is steadier than that of two separate runs.
    """
    import statistics

    import torch

    from harmonylib.reproducibility import make_generator

    tile = dict(tile_latent_size=args.tile, tile_overlap=args.overlap)
    times: dict[str, list[float]] = {"untiled": [], "tiled": []}
    for _ in range(args.repeats):
        for mode, kw in (("untiled", {}), ("tiled", tile)):
            start = time.perf_counter()
            with torch.no_grad():
                model.decode_with_cond(z, cond, generator=make_generator(2), **kw)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[mode].append(time.perf_counter() - start)
    ratios = [t / u for u, t in zip(times["untiled"], times["tiled"], strict=True)]
    print(
        json.dumps(
            {
                "size": args.size,
                "mode": "pair",
                "times": times,
                "pair_ratios": ratios,
                "ratio_of_mins": min(times["tiled"]) / min(times["untiled"]),
                "median_pair_ratio": statistics.median(ratios),
            }
        ),
        flush=True,
    )


def _tile_layout(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    sys.path.insert(0, str(ROOT))
    from harmonylib.models.harmony_vae import HarmonyVAE

    return HarmonyVAE._tile_layout(length, tile, overlap)


def fit_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(time) on log(pixels)."""
    xs = [math.log(s * s) for s in sizes]
    ys = [math.log(t) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[512, 1024, 2048], help="image sides, px (multiples of 8)"
    )
    ap.add_argument("--modes", nargs="+", default=["untiled", "tiled"], choices=["untiled", "tiled"])
    ap.add_argument("--tile", type=int, default=64, help="tile side in latent px (64 = 512 px)")
    ap.add_argument("--overlap", type=int, default=None, help="tile overlap in latent px (default tile // 8)")
    ap.add_argument("--repeats", type=int, default=1, help="decodes per configuration; the fastest is kept")
    ap.add_argument(
        "--paired",
        action="store_true",
        help="also time untiled and tiled alternately in one process per size (steadier ratio on a busy machine)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--max-untiled", type=int, default=1024, help="skip untiled above this size on CPU")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.overlap is None:
        sys.path.insert(0, str(ROOT))
        from harmonylib.models.harmony_vae import default_tile_overlap

        args.overlap = default_tile_overlap(args.tile)
    if args.worker:
        worker(args)
        return

    results: list[dict] = []
    pairs: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for mode in args.modes:
                if mode == "untiled" and args.device == "cpu" and size > args.max_untiled:
                    print(
                        f"[skip] {size}px untiled: above --max-untiled {args.max_untiled} on CPU", flush=True
                    )
                    continue
                save = str(Path(tmp) / f"{size}_{mode}.pt")
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--size",
                    str(size),
                    "--mode",
                    mode,
                    "--save",
                    save,
                ]
                cmd += ["--tile", str(args.tile), "--overlap", str(args.overlap), "--device", args.device]
                cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"[fail] {size}px {mode}: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                results.append(res)
                print(
                    f"{size:5d}px {mode:8s} {res['seconds']:8.1f} s  (E_c {res['ec_s']:.1f}, decoder "
                    f"{res['decoder_s']:.1f}, noise+blend {res['other_s']:.2f})  peak RSS {res['maxrss_mb']:7.0f} MB  "
                    f"decode peak {res['decode_peak_mb']:7.0f} MB",
                    flush=True,
                )
            if args.paired and not (args.device == "cpu" and size > args.max_untiled):
                cmd = [sys.executable, __file__, "--worker", "--size", str(size), "--mode", "pair"]
                cmd += ["--tile", str(args.tile), "--overlap", str(args.overlap), "--device", args.device]
                cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode == 0:
                    pair = json.loads(proc.stdout.strip().splitlines()[-1])
                    pairs[size] = pair
                    print(
                        f"{size:5d}px paired (alternating in one process, {args.repeats}×): untiled "
                        f"{pair['times']['untiled']}, tiled {pair['times']['tiled']} s; tiled/untiled "
                        f"ratio of mins {pair['ratio_of_mins']:.2f}, median pair ratio {pair['median_pair_ratio']:.2f}",
                        flush=True,
                    )
                else:
                    print(f"[fail] {size}px pair: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
            paths = [Path(tmp) / f"{size}_{m}.pt" for m in ("untiled", "tiled")]
            if all(p.exists() for p in paths):
                import torch

                u, t = (torch.load(p, weights_only=True) for p in paths)
                mse = ((u - t) ** 2).mean().item()
                err = {
                    "max_abs": (u - t).abs().max().item(),
                    "psnr_db": 10 * math.log10(4 / mse) if mse else math.inf,
                }
                for r in results:
                    if r["size"] == size:
                        r["tiled_vs_untiled"] = err
                print(
                    f"{size:5d}px tiled vs untiled: max |Δ| {err['max_abs']:.4f}, PSNR {err['psnr_db']:.1f} dB",
                    flush=True,
                )

    print(
        f"\nSummary (device {args.device}, {args.threads} threads, tile {args.tile} latent px, overlap {args.overlap})"
    )
    print(f"{'size':>6} " + " ".join(f"{m + ' s':>12} {m + ' peak MB':>16}" for m in args.modes))
    for size in args.sizes:
        row = [f"{size:6d}"]
        for m in args.modes:
            r = next((r for r in results if r["size"] == size and r["mode"] == m), None)
            row.append(f"{r['seconds']:12.1f} {r['decode_peak_mb']:16.0f}" if r else f"{'-':>12} {'-':>16}")
        print(" ".join(row))
    # Tiled work = (number of tiles × tile area) / image area: the overlap's extra compute. Over
    # a range that starts at one tile, it enters the fitted k; for large images time ∝ tiles ∝ pixels.
    ratios = {}
    for size in args.sizes:
        lat = size // 8
        starts, side = _tile_layout(lat, args.tile, args.overlap)
        work = (len(starts) * side) ** 2 / lat**2
        line = f"{size:6d} px: {len(starts)}×{len(starts)} tiles of {side}, tiled work ratio {work:.2f}"
        u, t = (
            next((r for r in results if r["size"] == size and r["mode"] == m), None)
            for m in ("untiled", "tiled")
        )
        if u and t:
            ratios[size] = {
                "time": t["seconds"] / u["seconds"],
                "peak": t["decode_peak_mb"] / max(u["decode_peak_mb"], 1e-9),
                "work": work,
            }
            line += (
                f"; measured tiled/untiled time {ratios[size]['time']:.2f}× "
                f"(goal ≤ 1.25: {'met' if ratios[size]['time'] <= 1.25 else 'NOT met'}), "
                f"decode peak {ratios[size]['peak']:.2f}×"
            )
        if size in pairs:
            line += f"; paired ratio {pairs[size]['median_pair_ratio']:.2f}×"
        print(line)
    summary = {}
    for m in args.modes:
        rs = sorted((r for r in results if r["mode"] == m), key=lambda r: r["size"])
        if len(rs) >= 2:
            k = fit_exponent([r["size"] for r in rs], [r["seconds"] for r in rs])
            mem_ratio = rs[-1]["decode_peak_mb"] / max(rs[0]["decode_peak_mb"], 1e-9)
            summary[m] = {
                "time_exponent_k": k,
                "peak_ratio": mem_ratio,
                "from": rs[0]["size"],
                "to": rs[-1]["size"],
            }
            print(
                f"{m:8s}: time ∝ pixels^{k:.2f} over {rs[0]['size']}→{rs[-1]['size']} px; "
                f"decode-peak ratio {rs[-1]['size']}²/{rs[0]['size']}² = {mem_ratio:.2f}"
            )
    if "tiled" in summary:
        s = summary["tiled"]
        print(
            f"goals (tiled): k ≤ 1.1 → {'met' if s['time_exponent_k'] <= 1.1 else 'NOT met'}; "
            f"peak ratio ≤ 2 → {'met' if s['peak_ratio'] <= 2 else 'NOT met'}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: v for k, v in vars(args).items() if k != "json"},
                    "results": results,
                    "summary": summary,
                    "tiled_vs_untiled_ratios": ratios,
                    "paired": pairs,
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()

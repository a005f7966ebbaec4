"""Throughput of ``harmonylib.evaluation`` against the plain reference loop, side by side.

    python benchmarks/bench_evaluation.py [--n 300] [--repeats 3] [--workers N]

Generates ``n`` samples of realistic size (about 640×480 JPEG real and composite images, PNG
masks, 256×256 PNG predictions as the authors' inference writes them) in a temporary folder,
then times, in the same run and interleaved:

* ``reference``: ``tests/golden/reference_eval.py``, one image at a time (the baseline);
* ``cold``: ``evaluate_predictions`` with a fresh ground-truth cache (decodes everything);
* ``warm``: ``evaluate_predictions`` again with the cache filled (decodes predictions only),
  the case of a table that scores many methods on one test set;
* ``decode-only``: just decoding the predictions, one thread (what ``warm`` cannot beat
  without threads).

It asserts that all three give identical numbers, and prints the median times and the ratios
(goals: cold ≥ 1.5×, warm ≥ 5× the reference). Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from harmonylib.config import SUBSETS, EvalConfig
from harmonylib.evaluation import GroundTruthCache, default_workers, evaluate_predictions

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(640, 480), (480, 640), (600, 450), (640, 427), (512, 512)]


@dataclass(frozen=True)
class BenchSample:
    name: str
    subset: str
    composite: Path
    mask: Path
    real: Path


def _reference():
    spec = importlib.util.spec_from_file_location(
        "reference_eval", ROOT / "tests" / "golden" / "reference_eval.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_data(root: Path, n: int) -> list[BenchSample]:
    """``n`` samples with photo-like content (smooth gradients plus noise), soft and hard masks."""
    rng = np.random.default_rng(0)
    preds = root / "predictions"
    preds.mkdir(parents=True)
    samples = []
    for i in range(n):
        subset = SUBSETS[i % len(SUBSETS)]
        name = f"{subset[1].lower()}{i:05d}_1_1"
        w, h = SIZES[i % len(SIZES)]
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 200 // w, y * 200 // h, (x + y) * 100 // (w + h)], -1)
        real = np.clip(base + rng.integers(0, 50, (h, w, 3)), 0, 255).astype(np.uint8)
        cx, cy, ax, ay = rng.integers(w // 4, 3 * w // 4), rng.integers(h // 4, 3 * h // 4), w // 5, h // 5
        d = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
        soft = i % 3 == 0  # every third mask is anti-aliased
        mask = np.clip((1.2 - d) * 5 * 255, 0, 255) if soft else np.where(d <= 1, 255, 0)
        mask = mask.astype(np.uint8)
        m = mask[..., None].astype(np.float32) / 255
        comp = (real * (1 - m) + np.clip(real * 0.7 + 40, 0, 255) * m).astype(np.uint8)
        pred = np.clip(real.astype(np.int16) + rng.integers(-6, 7, real.shape), 0, 255).astype(np.uint8)

        d_sub = root / "data" / subset
        paths = {k: d_sub / k for k in ("composite_images", "masks", "real_images")}
        for p in paths.values():
            p.mkdir(parents=True, exist_ok=True)
        s = BenchSample(
            name,
            subset,
            paths["composite_images"] / f"{name}.jpg",
            paths["masks"] / f"{name.rsplit('_', 1)[0]}.png",
            paths["real_images"] / f"{name.split('_')[0]}.jpg",
        )
        Image.fromarray(real).save(s.real, quality=95)
        Image.fromarray(comp).save(s.composite, quality=95)
        Image.fromarray(mask, "L").save(s.mask)
        Image.fromarray(pred).resize((256, 256), Image.Resampling.BILINEAR).save(preds / f"{name}.png")
        samples.append(s)
    return samples


def run_reference(ref, samples, preds: Path) -> np.ndarray:
    rows = [ref.evaluate_one(preds / f"{s.name}.png", s.real, s.mask, s.composite) for s in samples]
    return np.array([[r[k] for k in ("fg_ratio", "mse", "psnr", "fmse", "bmse")] for r in rows])


def check_identical(got: np.ndarray, want: np.ndarray, kind: str) -> None:
    """Bit-identical fg_ratio, MSE, fMSE, bMSE; PSNR to 1e-14 (np.log10 and math.log10 may
    differ in the last bit)."""
    exact = [0, 1, 3, 4]
    assert np.array_equal(got[:, exact], want[:, exact], equal_nan=True), f"{kind}: numbers differ"
    np.testing.assert_allclose(got[:, 2], want[:, 2], rtol=1e-14, err_msg=f"{kind}: PSNR differs")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=default_workers())
    a = ap.parse_args(argv)
    ref = _reference()
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        samples = make_data(root, a.n)
        preds = root / "predictions"
        print(f"generated {a.n} samples in {time.perf_counter() - t0:.1f} s; workers={a.workers}")
        for p in root.rglob("*.*"):  # warm the OS file cache, so nobody pays first-read IO
            p.read_bytes()

        times: dict[str, list[float]] = {"reference": [], "cold": [], "warm": [], "decode-only": []}
        want = None
        for _ in range(a.repeats):
            t = time.perf_counter()
            want = run_reference(ref, samples, preds)
            times["reference"].append(time.perf_counter() - t)

            cache = GroundTruthCache(workers=a.workers)
            for kind in ("cold", "warm"):
                t = time.perf_counter()
                df = evaluate_predictions(
                    samples, preds, EvalConfig(), cache=cache, progress=False, workers=a.workers
                )
                times[kind].append(time.perf_counter() - t)
                got = df[["fg_ratio", "mse", "psnr", "fmse", "bmse"]].to_numpy(np.float64)
                check_identical(got, want, kind)

            # The floor for "warm": decoding the predictions and nothing else, one thread.
            t = time.perf_counter()
            for s in samples:
                Image.open(preds / f"{s.name}.png").load()
            times["decode-only"].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'':10s} {'median s':>9s} {'img/s':>8s} {'vs reference':>13s}   (all runs, s)")
    for k, v in med.items():
        runs = ", ".join(f"{x:.2f}" for x in times[k])
        print(f"{k:10s} {v:9.2f} {a.n / v:8.0f} {med['reference'] / v:12.1f}×   ({runs})")
    print(
        "identical numbers: yes, asserted for every run (PSNR to 1e-14: log10 implementations differ in the last bit)"
    )
    print("decode-only = opening the predictions alone, one thread: the bound for warm without threads")
    print(
        f"goals: cold ≥ 1.5× -> {med['reference'] / med['cold']:.1f}×, warm ≥ 5× -> {med['reference'] / med['warm']:.1f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

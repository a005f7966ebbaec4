"""``python -m harmonylib.diagnostics --profile mini [--splits train val test] [--out DIR]``."""

from __future__ import annotations

import argparse
import sys

from harmonylib.diagnostics.report import MEASURES, DiagnosticsSettings, run_diagnostics


def _n(text: str) -> int | None:
    return None if text == "all" else int(text)


def build_parser(prog: str = "python -m harmonylib.diagnostics") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="UNet x0 error per noise level vs copying the composite, autoencoder ceilings per "
        "inference size, and the pixel baseline vs the composite, on each split.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = DiagnosticsSettings()
    p.add_argument("--profile", default="mini", help="smoke, mini, paper or a YAML path")
    p.add_argument(
        "--splits", nargs="+", default=None, help="splits to measure (default: every split the dataset lists)"
    )
    p.add_argument("--out", default=None, help="output folder (default: results/<profile>/diagnostics)")
    p.add_argument(
        "--work", default=None, help="image cache (default: results/<profile>/predictions/diagnostics)"
    )
    p.add_argument("--data-root", default=None, help="dataset root (default: the profile's data.root)")
    p.add_argument(
        "--runs-dir",
        default=None,
        help="results root searched for finished runs (default: results/<profile>)",
    )
    p.add_argument("--n", type=_n, default=d.n, help="composites per split (seeded choice), or 'all'")
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help="ceiling sizes (default: the profile's inference sizes)",
    )
    p.add_argument(
        "--x0-sizes", type=int, nargs="+", default=None, help="x0 sizes (default: the largest inference size)"
    )
    p.add_argument("--steps", type=int, default=d.steps, help="sampler steps whose noise levels are measured")
    p.add_argument(
        "--pixel-size", type=int, default=None, help="pixel baseline size (default: its training resolution)"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seeds the choice of composites and the x0 noise")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="composites per model call")
    p.add_argument("--measure", nargs="+", choices=MEASURES, default=list(MEASURES), help="what to measure")
    p.add_argument(
        "--harmony-vae",
        default=None,
        help="Harmony-VAE run or model folder (default: the profile's run, if finished)",
    )
    p.add_argument(
        "--pixel-baseline",
        default=None,
        help="pixel-baseline run or model folder (default: the profile's run, if finished)",
    )
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides (dotted keys)")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.diagnostics") -> int:
    from harmonylib.config import ConfigError, parse_overrides

    args = build_parser(prog).parse_args(argv)
    try:
        st = DiagnosticsSettings(
            splits=tuple(args.splits) if args.splits else None, n=args.n,
            sizes=tuple(args.sizes) if args.sizes else None, x0_sizes=tuple(args.x0_sizes) if args.x0_sizes else None,
            steps=args.steps, pixel_size=args.pixel_size, seed=args.seed, batch_size=args.batch_size,
            measures=tuple(args.measure),
        )  # fmt: skip
        res = run_diagnostics(
            args.profile, st, out_dir=args.out, work_dir=args.work, data_root=args.data_root,
            overrides=parse_overrides(args.set), harmony_vae=args.harmony_vae,
            pixel_baseline=args.pixel_baseline, runs_dir=args.runs_dir,
        )  # fmt: skip
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in res.files.values():
        print(path)
    for k, why in res.skipped.items():
        print(f"skipped {k}: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``harmonylib build-data``: build a profile's built-in dataset and print its counts and mix."""

from __future__ import annotations

import argparse
import time
from typing import Any

from harmonylib.config import SUBSETS
from harmonylib.data.builtin.build import ensure_builtin, read_build_info
from harmonylib.imageproc import FG_BIN_LABELS


def format_build_info(info: dict[str, Any]) -> str:
    """Counts per subset and the fg-ratio mix, as printed by ``harmonylib build-data``."""
    splits = list(info["counts"])
    lines = [f"{'subset':<12}" + "".join(f"{sp:>7}" for sp in splits)]
    for s in (*SUBSETS, "total"):
        lines.append(f"{s:<12}" + "".join(f"{info['counts'][sp][s]:>7}" for sp in splits))
    lines.append("fg-ratio mix   " + "  ".join(f"{lab:>8}" for lab in FG_BIN_LABELS))
    lines.append(
        "target         " + "  ".join(f"{info['fg_ratio_target'][lab]:>8.3f}" for lab in FG_BIN_LABELS)
    )
    for split in splits:
        lines.append(
            f"{split:<15}" + "  ".join(f"{info['fg_ratio_mix'][split][lab]:>8.3f}" for lab in FG_BIN_LABELS)
        )
    lines.append("photos: " + "; ".join(f"{sp} {info['photos'][sp]}" for sp in splits))
    return "\n".join(lines)


def _run_build(args: argparse.Namespace) -> int:
    from harmonylib.config import load_config

    overrides = {"data.root": args.root} if args.root else None
    cfg = load_config(args.profile, overrides)
    if cfg.data.kind != "builtin":
        print(f"profile {cfg.profile!r} uses data.kind={cfg.data.kind!r}; nothing to build")
        return 2
    t0 = time.perf_counter()
    root = ensure_builtin(cfg.data, force=args.force, progress=True)
    info = read_build_info(root)
    print(
        f"{root} ({time.perf_counter() - t0:.1f} s; built in {info['build_seconds']} s at {info['build_time']})"
    )
    print(format_build_info(info))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``harmonylib build-data``."""
    p = subparsers.add_parser("build-data", help="build the built-in dataset of a profile (smoke, mini)")
    p.add_argument("--profile", default="mini", help="profile name or YAML path (default: mini)")
    p.add_argument("--root", default=None, help="where to build (default: the profile's data.root)")
    p.add_argument("--force", action="store_true", help="rebuild even if the folder is current")
    p.set_defaults(func=_run_build)

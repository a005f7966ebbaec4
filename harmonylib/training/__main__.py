"""``python -m harmonylib.training --profile mini --recipe harmony_vae [--set key=value ...]``.

Runs ``ensure_trained`` in every process, so it also works under a launcher::

    torchrun --standalone --nproc_per_node 2 -m harmonylib.training --profile smoke --recipe unet
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml -m harmonylib.training ...

``--set`` values are parsed as YAML (``--set train.unet.loop.max_steps=4``) and type-checked by
``load_config`` before anything runs. Exit status: 0 done (also when the run diverged: that is a
result); 2 bad config or missing inputs (nothing trained); 3 interrupted (a checkpoint was
written; run the same command again to resume).
"""

from __future__ import annotations

import sys

from harmonylib.cli_format import Parser
from harmonylib.config import ConfigError, load_config, parse_overrides
from harmonylib.training.recipes import RECIPES


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.training") -> int:
    """``harmonylib train``: train one recipe of a profile; exit 0 done, 2 bad input, 3 interrupted."""
    ap = Parser(
        prog=prog,
        description="Train one recipe of a profile; a finished run is reused, a stopped one resumed.",
    )
    ap.add_argument("--profile", default="mini", help="smoke, mini, paper, or a YAML path")
    ap.add_argument("--recipe", required=True, choices=RECIPES)
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)"
    )
    ap.add_argument("--run-dir", default=None, help="run folder (default results/<profile>/runs/<run name>)")
    ap.add_argument(
        "--stage1-key",
        default=None,
        help="refinement: the name of an existing stage-1 cache (see stage1_cache.py)",
    )
    ap.add_argument("--cpu", action="store_true", help="force CPU")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--record-indices", action="store_true", help="log each process's sample indices (tests)")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.profile, parse_overrides(args.set))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    from harmonylib.training.runs import TrainingInterrupted, ensure_trained

    try:
        run = ensure_trained(
            cfg,
            args.recipe,
            run_dir=args.run_dir,
            progress=not args.no_progress,
            cpu=args.cpu,
            record_indices=args.record_indices,
            stage1_key=args.stage1_key,
        )
    except TrainingInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:  # missing weights, stage-1 cache, too little data
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"{run.run_dir}: {run.status}, {run.steps} steps, final loss {run.final_loss:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

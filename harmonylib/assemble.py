"""Pipeline assembly: a :class:`~harmonylib.pipeline.DiffHarmonyPipeline` from a profile's runs.

    python -m harmonylib.assemble --profile mini                       # -> results/mini/runs/pipeline
    python -m harmonylib.assemble --profile mini --direction inverse   # -> results/mini/runs/pipeline-inverse
    python -m harmonylib.assemble --profile smoke --no-harmony-vae --out /tmp/diffharmony

The components come from where training put them, and anything missing is trained first
(``ensure_trained``; on ``smoke`` that takes seconds, on ``mini`` minutes):

- UNet: forward, the *adopted* UNet when the profile names a released one in ``train.unet.adopt``
  (the paper adopts DiffHarmony's released UNet, §5.2: the paper profile reads the authors' bundle at
  ``checkpoints/base/unet``, docs/paper_checkpoints.md; mini its committed ``harmonylib/weights/mini/unet``),
  else the ``unet`` run of that direction. ``unet="trained"`` or ``"adopted"`` forces one.
- VAE: the ``harmony_vae`` run of that direction (DiffHarmony++), or with ``harmony_vae=False``
  the base VAE the UNet was trained on (DiffHarmony), loaded by the recipes' own
  :func:`~harmonylib.training.base_models.load_base_vae`.
- scheduler: Euler ancestral on the SD noise schedule that training used (``make_scheduler``).
- empty-prompt embedding: exactly the text condition the ``unet`` recipe trained with.

:func:`save_assembled` writes the pipeline with ``save_pretrained`` into a temporary folder and
renames it into place, with ``assembly.json`` (what went in) and ``provenance.json`` beside the
components. ``results/<profile>/runs/pipeline`` (forward, Harmony-VAE) is the folder the harmonize
CLI uses by default. Where runs live and how each component is found:
:mod:`harmonylib.assemble_parts` (its names are importable from here too).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from harmonylib.assemble_parts import (
    DIRECTIONS,
    _tree_stamp,
    adopted_unet_dir,
    base_vae,
    pipeline_dir,
    run_dir_for,
    runs_root,  # noqa: F401  (re-exported: callers import it from here)
    same_latent_space,
    unet_prompt_embeds,
    with_direction,
)
from harmonylib.cli_format import Parser
from harmonylib.config import Config, ConfigError, load_config, parse_overrides, to_dict
from harmonylib.paths import package_path, resolve

UNET_SOURCES = ("auto", "trained", "adopted")
ASSEMBLY_FILE = "assembly.json"
COMMITTED_WEIGHTS_DIR = package_path("weights").resolve()


class LatentSpaceMismatchWarning(UserWarning):
    """The Harmony-VAE's frozen encoder differs from the VAE the UNet was trained on."""


@dataclasses.dataclass
class Assembly:
    """What :func:`assemble_components` found: the components and a record of their sources."""

    components: dict[str, Any]
    sources: dict[str, Any]


def _ensure_run(cfg: Config, recipe: str, direction: str, out_dir, progress: bool, cpu: bool):
    """The finished ``recipe`` run of ``direction`` (trained if missing), under ``out_dir`` if given."""
    from harmonylib.training.runs import ensure_trained

    rcfg = with_direction(cfg, recipe, direction)
    run_dir = run_dir_for(rcfg, recipe, out_dir) if out_dir else None
    return ensure_trained(rcfg, recipe, run_dir=run_dir, progress=progress, cpu=cpu)


def assemble_components(
    cfg: Config,
    direction: str = "forward",
    harmony_vae: bool = True,
    out_dir: str | os.PathLike | None = None,
    *,
    unet: Any = "auto",
    progress: bool = False,
    cpu: bool = False,
) -> Assembly:
    """The pipeline's components and their sources; trains missing runs (see :func:`assemble_pipeline`)."""
    from diffusers import UNet2DConditionModel

    from harmonylib.models.scheduler import make_scheduler
    from harmonylib.models.unet import EmptyPromptEmbedding
    from harmonylib.training.runs import TrainedRun

    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
    if isinstance(unet, str) and unet not in UNET_SOURCES:
        raise ValueError(f"unet must be one of {list(UNET_SOURCES)}, a TrainedRun or a Path; got {unet!r}")
    sources: dict[str, Any] = {
        "profile": cfg.profile,
        "direction": direction,
        "harmony_vae": bool(harmony_vae),
    }

    # 1. UNet: a given run or folder, the adopted one (forward, committed weights), or the trained run
    adopted = adopted_unet_dir(cfg) if direction == "forward" else None
    if unet == "adopted" and adopted is None:
        raise ValueError(
            "unet='adopted' needs direction='forward' and train.unet.adopt naming a released UNet folder "
            f"(got adopt={cfg.train.unet.adopt!r}, direction={direction!r})"
        )
    if isinstance(unet, TrainedRun):
        model = unet.load_model(ema=True)
        sources["unet"] = _run_source(unet)
    elif isinstance(unet, os.PathLike):
        folder = resolve(unet)
        folder = folder / "unet" if (folder / "unet" / "config.json").is_file() else folder
        model = UNet2DConditionModel.from_pretrained(folder)
        sources["unet"] = {"kind": "folder", "path": str(folder), "files": _tree_stamp(folder)}
    elif adopted is not None and unet != "trained":
        model = UNet2DConditionModel.from_pretrained(adopted)
        sources["unet"] = {"kind": "adopted", "path": str(adopted), "files": _tree_stamp(adopted)}
    else:
        run = _ensure_run(cfg, "unet", direction, out_dir, progress, cpu)
        model = run.load_model(ema=True)
        sources["unet"] = _run_source(run)
    model.eval()

    # 2. VAE: the Harmony-VAE run of this direction, or the UNet's own base VAE
    unet_vae = base_vae(cfg, "unet")
    if harmony_vae:
        if isinstance(harmony_vae, TrainedRun):
            hrun = harmony_vae
        else:
            hrun = _ensure_run(cfg, "harmony_vae", direction, out_dir, progress, cpu)
        vae = hrun.load_model(ema=True)
        sources["vae"] = _run_source(hrun)
        match = same_latent_space(vae, unet_vae)
        sources["latent_space_match"] = match
        if not match:
            warnings.warn(
                "the Harmony-VAE's encoder differs from the VAE the UNet was trained on "
                f"(train.harmony_vae.vae={cfg.train.harmony_vae.vae!r}, train.unet.vae={cfg.train.unet.vae!r}; "
                "random-init VAEs are drawn from different seeds): the UNet's latents are decoded in "
                "another latent space",
                LatentSpaceMismatchWarning,
                stacklevel=3,
            )
    else:
        vae = unet_vae
        sources["vae"] = {"kind": "base", "path": cfg.train.unet.vae, "arch": cfg.train.unet.vae_arch}
    vae.eval()

    # 3. Scheduler and 4. the text condition the UNet trained with
    embedding = EmptyPromptEmbedding.from_tensor(unet_prompt_embeds(cfg))
    components = {
        "vae": vae,
        "unet": model,
        # the sampler reads the UNet's output as the UNet was trained to predict (train.unet)
        "scheduler": make_scheduler(prediction_type=cfg.train.unet.prediction_type),
        "empty_prompt_embedding": embedding,
    }
    return Assembly(components, sources)


def _run_source(run) -> dict[str, Any]:
    return {
        "kind": "run",
        "run_dir": str(run.run_dir),
        "config_hash": run.config_hash,
        "status": run.status,
        "steps": run.steps,
        "weights": str(run.weights_dir(ema=True)),
    }


def assemble_pipeline(
    cfg: Config,
    direction: str = "forward",
    harmony_vae: bool = True,
    out_dir: str | os.PathLike | None = None,
    *,
    unet: Any = "auto",
    progress: bool = False,
    cpu: bool = False,
):
    """A DiffHarmony(++) pipeline from the profile's trained runs; missing runs are trained first.

    Args:
        cfg: the resolved config (``load_config``).
        direction: ``"forward"`` (harmonize composites) or ``"inverse"`` (make composites, §4).
        harmony_vae: decode with the Harmony-VAE run of ``direction`` (DiffHarmony++), or with
            this ``TrainedRun``; False: the UNet's base VAE (DiffHarmony).
        out_dir: a results root; run folders are ``<out_dir>/runs/<run name>``. Default
            ``results/<profile>/runs``.
        unet: ``"auto"`` (forward: the adopted UNet if the profile has one, else trained),
            ``"trained"`` (always the ``unet`` run), ``"adopted"`` (error if there is none), a
            ``TrainedRun`` of the ``unet`` recipe, or a ``Path`` to a UNet folder.
        progress, cpu: passed to ``ensure_trained``.

    Returns:
        A :class:`DiffHarmonyPipeline` in ``eval()`` mode on CPU, ``config.direction`` set.

    Raises:
        ValueError / FileNotFoundError: bad arguments, or base weights the profile names are missing.
        TrainingInterrupted: a run was interrupted; call again to resume it.
    """
    from harmonylib.pipeline import DiffHarmonyPipeline

    asm = assemble_components(cfg, direction, harmony_vae, out_dir, unet=unet, progress=progress, cpu=cpu)
    # the profile's R_inf "1024" rung is what a call without a size gets (the UNet trains at "512")
    pipe = DiffHarmonyPipeline(**asm.components, direction=direction, default_size=cfg.ladder.r_inf_high)
    pipe.set_progress_bar_config(disable=not progress)
    pipe.assembly_sources = asm.sources  # a plain attribute: not a component, not saved by diffusers
    return pipe


def read_assembly(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``assembly.json`` of a saved pipeline folder, or None."""
    p = Path(folder) / ASSEMBLY_FILE
    return json.loads(p.read_text()) if p.is_file() else None


def save_assembled(
    cfg: Config,
    direction: str = "forward",
    harmony_vae: bool = True,
    out_dir: str | os.PathLike | None = None,
    dest: str | os.PathLike | None = None,
    *,
    unet: str = "auto",
    force: bool = False,
    progress: bool = False,
    cpu: bool = False,
) -> Path:
    """Assemble and write the pipeline with ``save_pretrained``, atomically; return its folder.

    Args:
        cfg, direction, harmony_vae, out_dir, unet, progress, cpu: as :func:`assemble_pipeline`.
        dest: the pipeline folder; default :func:`pipeline_dir` (``<out_dir or results/<profile>>/runs/pipeline``
            for forward + Harmony-VAE: the harmonize CLI's default for ``mini``).
        force: rewrite even when ``dest`` already holds a pipeline of the same sources.

    The pipeline is written to a hidden temporary folder beside ``dest`` and renamed into place;
    a previous ``dest`` is moved aside first and deleted after, so readers see either the old
    or the new pipeline, never a partial one (``dest`` is briefly absent between the two renames).
    """
    from harmonylib.io import atomic_write_json
    from harmonylib.provenance import provenance

    dest = resolve(dest) if dest else pipeline_dir(cfg, direction, harmony_vae, out_dir)
    pipe = assemble_pipeline(cfg, direction, harmony_vae, out_dir, unet=unet, progress=progress, cpu=cpu)
    sources = pipe.assembly_sources
    if not force and (dest / "model_index.json").is_file() and read_assembly(dest) == sources:
        return dest  # same runs, same weights: nothing to rewrite
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    for p in (tmp, old):
        if p.exists():
            shutil.rmtree(p)
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        atomic_write_json(tmp / ASSEMBLY_FILE, sources)
        atomic_write_json(
            tmp / "provenance.json",
            provenance(config=to_dict(cfg), seeds={"seed": cfg.seed}, assembly=sources),
        )
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        for p in (tmp, old):
            if p.exists():
                shutil.rmtree(p, ignore_errors=True)
    return dest


# ---- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None, prog: str = "python -m harmonylib.assemble") -> int:
    """``harmonylib assemble``; exit 0 written, 2 bad config or missing weights, 3 interrupted."""
    ap = Parser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="mini", help="smoke, mini, paper, or a YAML path (default: mini)")
    ap.add_argument("--direction", default="forward", choices=DIRECTIONS)
    ap.add_argument("--no-harmony-vae", action="store_true", help="decode with the base VAE (DiffHarmony)")
    ap.add_argument("--unet", default="auto", choices=UNET_SOURCES, help="where the UNet comes from")
    ap.add_argument(
        "--out", default=None, help="pipeline folder (default: <results>/runs/pipeline[-inverse][-sd_vae])"
    )
    ap.add_argument(
        "--results-dir",
        default=None,
        help="results root whose runs/ holds the run folders (default results/<profile>)",
    )
    ap.add_argument("--data-root", default=None, help="dataset root (overrides data.root)")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)"
    )
    ap.add_argument("--force", action="store_true", help="rewrite even if the folder holds the same assembly")
    ap.add_argument("--cpu", action="store_true", help="train missing runs on CPU")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        if args.data_root:
            overrides["data.root"] = args.data_root
        cfg = load_config(args.profile, overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    from harmonylib.training.runs import TrainingInterrupted

    try:
        dest = save_assembled(
            cfg,
            args.direction,
            not args.no_harmony_vae,
            args.results_dir,
            args.out,
            unet=args.unet,
            force=args.force,
            progress=not args.no_progress,
            cpu=args.cpu,
        )
    except TrainingInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sources = read_assembly(dest) or {}
    print(f"{dest}: unet {sources.get('unet', {}).get('kind')}, vae {sources.get('vae', {}).get('kind')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

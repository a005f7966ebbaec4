"""``run_diagnostics``: every diagnostic on every split, written as CSV + a Markdown summary + provenance.

One call (notebooks) or one command (``python -m harmonylib.diagnostics --profile mini``) measures,
per split of the dataset (train, val, test, whatever its lists hold):

* ``x0``: the UNet's foreground x0 error at each inference noise level vs copying the composite
  (:mod:`harmonylib.diagnostics.x0_error`);
* ``ceiling``: the VAE and Harmony-VAE ceilings at each inference size, and the composite
  (:mod:`harmonylib.diagnostics.ceilings`);
* ``pixel``: the pixel baseline against the composite (:mod:`harmonylib.diagnostics.pixel`);
* ``trajectory``: the x0 error at every step of the sampler's own trajectory and of the sampled
  latents, foreground and background, vs copying the composite
  (:mod:`harmonylib.diagnostics.trajectory`; at the x0 sizes).

A measurement that lacks its model (no Harmony-VAE, no pixel-baseline run) is skipped, and the
summary says why. Nothing is trained here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harmonylib.diagnostics.ceilings import ceiling_scores, composite_scores, summarise_scores
from harmonylib.diagnostics.common import check_splits, pick
from harmonylib.diagnostics.pixel import load_pixel_baseline, pixel_scores
from harmonylib.diagnostics.trajectory import summarise_trajectory, trajectory_errors
from harmonylib.diagnostics.x0_error import summarise_x0, unet_x0_errors
from harmonylib.io import atomic_path, atomic_write_json, atomic_write_text
from harmonylib.models.scheduler import DEFAULT_NUM_INFERENCE_STEPS

MEASURES = ("x0", "ceiling", "pixel", "trajectory")
PREFIX = "diagnostics"


@dataclass(frozen=True)
class DiagnosticsSettings:
    """What to measure and on how much.

    Attributes:
        splits: splits to measure; None = every split the dataset lists.
        n: composites per split (a seeded choice); None = all.
        sizes: square inference sizes of the ceilings; None = the profile's inference sizes.
        x0_sizes: processing sizes of the x0 diagnostic; None = the profile's largest inference size.
        steps: sampler steps whose noise levels the x0 diagnostic visits (paper §5.2: 5).
        pixel_size: the pixel baseline's square size; None = its training resolution.
        seed: seeds the choice of composites and the x0 noise.
        batch_size: composites per model call (results do not depend on it).
        measures: any of :data:`MEASURES`.
    """

    splits: tuple[str, ...] | None = None
    n: int | None = 96
    sizes: tuple[int, ...] | None = None
    x0_sizes: tuple[int, ...] | None = None
    steps: int = DEFAULT_NUM_INFERENCE_STEPS
    pixel_size: int | None = None
    seed: int = 0
    batch_size: int = 16
    measures: tuple[str, ...] = MEASURES

    def __post_init__(self):
        bad = [m for m in self.measures if m not in MEASURES]
        if bad:
            raise ValueError(f"measures: unknown {bad}; allowed: {list(MEASURES)}")


@dataclass
class DiagnosticsResult:
    """Summaries (one frame per measure), per-image frames, skip reasons and the files written."""

    summaries: dict[str, pd.DataFrame] = field(default_factory=dict)
    per_image: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def _relative(obj: Any) -> Any:
    """``obj`` with absolute paths under the project root made relative (committed files carry none)."""
    from harmonylib.paths import project_root

    root = str(project_root()) + os.sep
    if isinstance(obj, str):
        return obj.replace(root, "")
    if isinstance(obj, Mapping):
        return {k: _relative(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_relative(v) for v in obj]
    return obj


def _finished_run(cfg: Any, recipe: str, runs_out: Path) -> Path | None:
    """The profile's finished run folder of ``recipe`` at the base seed, if one exists (never trains)."""
    from harmonylib.assemble import run_dir_for
    from harmonylib.training.runs import read_done

    run = run_dir_for(cfg, recipe, runs_out)
    done = read_done(run)
    return run if done is not None and done.get("status") == "completed" else None


def _load_harmony_vae(path: Path):
    from harmonylib.pipeline import load_vae

    for folder in (path / "weights" / "ema", path / "weights" / "live", path):
        if (folder / "config.json").is_file():
            return load_vae(folder, require_harmony=True).eval()
    raise FileNotFoundError(f"{path}: no Harmony-VAE (config.json here or in weights/ema, weights/live)")


def _tree_key(path: Path) -> str:
    from harmonylib.provenance import sha256_tree

    return sha256_tree(path)[:16]


def run_diagnostics(
    profile: str = "mini",
    settings: DiagnosticsSettings | None = None,
    out_dir: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    pipe: Any = None,
    harmony_vae: str | os.PathLike | None = None,
    pixel_baseline: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike | None = None,
) -> DiagnosticsResult:
    """Measure the diagnostics of ``profile`` on each split and write them to ``out_dir``.

    Args:
        profile: ``smoke``, ``mini``, ``paper`` or a YAML path.
        settings: see :class:`DiagnosticsSettings`.
        out_dir: where CSVs, the summary and provenance go; default ``results/<profile>/diagnostics``.
        work_dir: where decoded images are cached; default ``results/<profile>/predictions/diagnostics``.
        data_root: the dataset root; default the profile's ``data.root`` (built if built-in and missing).
        overrides: config overrides (dotted keys).
        pipe: a ``DiffHarmonyPipeline`` to diagnose; default the profile's forward DiffHarmony
            components (``assemble_components``; the committed UNet on mini).
        harmony_vae: a Harmony-VAE run or model folder; default the profile's finished run, if any.
        pixel_baseline: a pixel-baseline run or model folder; default the profile's finished run, if any.
        runs_dir: the results root whose ``runs/`` is searched for finished runs; default ``results/<profile>``.

    Returns:
        A :class:`DiagnosticsResult`; its ``files`` are the CSVs, ``diagnostics.md`` and provenance.
    """
    from harmonylib.config import load_config, to_dict
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.data.iharmony4 import read_split
    from harmonylib.evaluation import GroundTruthCache
    from harmonylib.experiments import inference_sizes
    from harmonylib.paths import resolve, results_dir

    st = settings or DiagnosticsSettings()
    cfg = load_config(
        profile, {**({"data.root": str(data_root)} if data_root else {}), **dict(overrides or {})}
    )
    out = resolve(out_dir) if out_dir else results_dir(cfg.profile, "diagnostics")
    work = resolve(work_dir) if work_dir else results_dir(cfg.profile, "predictions") / "diagnostics"
    runs_out = resolve(runs_dir) if runs_dir else results_dir(cfg.profile)
    root = ensure_dataset(cfg, progress=False)
    splits = check_splits(st.splits, root)
    profile_sizes = sorted(set(inference_sizes(cfg).values()))
    sizes = [int(s) for s in (st.sizes or profile_sizes)]
    x0_sizes = [int(s) for s in (st.x0_sizes or profile_sizes[-1:])]
    chosen = {sp: pick(read_split(root, sp), st.n, st.seed, sp) for sp in splits}
    res = DiagnosticsResult()
    sources: dict[str, Any] = {}
    cache = GroundTruthCache()

    def per_split(fn) -> pd.DataFrame:
        frames = [fn(sp, s) for sp, s in chosen.items()]
        for sp, df in zip(chosen, frames, strict=True):
            df.insert(0, "split", sp)
        return pd.concat(frames, ignore_index=True)

    base_vae = None
    if {"x0", "ceiling", "trajectory"} & set(st.measures):
        if pipe is None:
            from harmonylib.assemble import assemble_components
            from harmonylib.pipeline import DiffHarmonyPipeline

            asm = assemble_components(cfg, "forward", harmony_vae=False, out_dir=runs_out)
            pipe = DiffHarmonyPipeline(**asm.components, direction="forward")
            sources["pipeline"] = asm.sources
        else:
            sources["pipeline"] = "given"
        base_vae = pipe.vae

    if "x0" in st.measures:
        res.per_image["unet_x0_error"] = per_split(
            lambda sp, s: pd.concat(
                [unet_x0_errors(pipe, s, size, st.steps, st.seed, st.batch_size) for size in x0_sizes],
                ignore_index=True,
            )
        )
        res.summaries["unet_x0_error"] = summarise_x0(res.per_image["unet_x0_error"])

    if "trajectory" in st.measures:
        res.per_image["trajectory"] = per_split(
            lambda sp, s: pd.concat(
                [trajectory_errors(pipe, s, size, st.steps, st.seed, st.batch_size) for size in x0_sizes],
                ignore_index=True,
            )
        )
        res.summaries["trajectory"] = summarise_trajectory(res.per_image["trajectory"])

    if "ceiling" in st.measures or "pixel" in st.measures:
        comp = per_split(lambda sp, s: composite_scores(s, cfg.eval, cache))

    if "ceiling" in st.measures:
        hv_path = Path(harmony_vae) if harmony_vae else _finished_run(cfg, "harmony_vae", runs_out)
        hvae, hv_key = None, ""
        if hv_path is None:
            res.skipped["harmony_vae_ceiling"] = (
                f"no Harmony-VAE: no finished harmony_vae run under {_relative(str(runs_out / 'runs'))} "
                "and none given (--harmony-vae)"
            )
        else:
            hvae, hv_key = _load_harmony_vae(resolve(hv_path)), _tree_key(resolve(hv_path))
            sources["harmony_vae"] = {"path": str(hv_path), "sha256": hv_key}
        vae_key = _state_key(base_vae)
        ceil = per_split(
            lambda sp, s: ceiling_scores(
                s, base_vae, sizes, work / sp, vae_key, cfg.eval, hvae, hv_key, cache, st.batch_size
            )
        )
        res.per_image["ceilings"] = pd.concat([comp, ceil], ignore_index=True)
        res.summaries["ceilings"] = summarise_scores(res.per_image["ceilings"])

    if "pixel" in st.measures:
        px_path = Path(pixel_baseline) if pixel_baseline else _finished_run(cfg, "pixel_baseline", runs_out)
        if px_path is None:
            res.skipped["pixel_baseline"] = (
                f"no pixel baseline: no finished pixel_baseline run under {_relative(str(runs_out / 'runs'))} "
                "and none given (--pixel-baseline)"
            )
        else:
            model, key = load_pixel_baseline(resolve(px_path)), _tree_key(resolve(px_path))
            sources["pixel_baseline"] = {"path": str(px_path), "sha256": key}
            size = int(st.pixel_size or cfg.train.pixel_baseline.resolution)
            px = per_split(
                lambda sp, s: pixel_scores(model, s, size, work / sp, key, cfg.eval, cache, st.batch_size)
            )
            res.per_image["pixel_baseline"] = pd.concat([comp, px], ignore_index=True)
            res.summaries["pixel_baseline"] = summarise_scores(res.per_image["pixel_baseline"])

    meta = {
        "profile": cfg.profile,
        "splits": {sp: len(s) for sp, s in chosen.items()},
        "settings": {**dataclasses.asdict(st), "sizes": sizes, "x0_sizes": x0_sizes},
        "skipped": res.skipped,
        "models": sources,
    }
    _write(res, out, meta, to_dict(cfg), root, splits)
    return res


def _state_key(model: Any) -> str:
    """A short hash of a model's weights: the ceiling cache follows the VAE, not only its path."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def _write(
    res: DiagnosticsResult, out: Path, meta: dict, config: dict, root: Path, splits: Sequence[str]
) -> None:
    from harmonylib.diagnostics.summary import render_summary
    from harmonylib.provenance import provenance

    out.mkdir(parents=True, exist_ok=True)
    for name, df in res.summaries.items():
        for kind, frame in (("", df), ("_per_image", res.per_image[name])):
            path = out / f"{PREFIX}_{name}{kind}.csv"
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False, na_rep="nan", float_format="%.6g")
            res.files[f"{name}{kind}"] = path
    md = out / f"{PREFIX}.md"
    atomic_write_text(md, render_summary(res, meta))
    res.files["summary"] = md
    lists = {f"{sp}_list": root / f"IHD_{sp}.txt" for sp in splits}
    prov = provenance(config=config, seeds={"seed": meta["settings"]["seed"]}, files=lists, **_relative(meta))
    path = out / f"{PREFIX}.provenance.json"
    atomic_write_json(path, _relative(prov))
    res.files["provenance"] = path

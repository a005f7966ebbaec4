"""Table 2, steps 3-4: the base and augmented UNets of a subset, trained alike, then predicting.

Two DiffHarmony UNets are trained on subset S's training split only (``data.subsets = (S,)``):
*base* on the original list, *augmented* on original + generated
(``data.extra_roots = {"gen": ...}``). Same hyper-parameters, same seed (so the same initial
weights) and **the same number of optimizer steps and batch size**, hence the same number of
training samples drawn: the augmented run sees more distinct data, not more steps ("train with
the same total amount of data", §5.3.2). The step count is ``augment.table2_steps``, else the unet
loop's ``max_steps``, else its ``epochs`` over the *base* list (:func:`table2_schedule`).
Both are trained once per training seed (``claim_rule.default_seeds``: three on mini, so claims
6a/6b get a verdict); the seed sets the initial noise draws, the data order and the sampling of
the test predictions. The generated data and the inverse model behind it are the base seed's.

Initial UNet weights: the unet recipe's ``init`` (SD-inpainting in the paper profile, the
paper's starting point for training DiffHarmony; the mini profile's SD-inpainting stand-in,
pretrained on photos only). The adopted harmonization UNet (``train.unet.adopt``) is never a
starting point: it was trained on the whole training split (:func:`table2_run_config`).

Each model predicts S's original test split with :func:`table2_inference_settings`
(``augment.table2_inference_size``, squashed square, 5 steps, resized to 256), decoded with the
plain VAE the UNet trained on (no Harmony-VAE, no refinement): §5.3.2 says optimal inference is
not needed to see the effect of the data, so Table 2 uses the cheapest faithful setting. The
authors' evaluator scores them in :func:`harmonylib.experiments.table2` (per-image CSVs kept).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harmonylib.claim_rule import default_seeds
from harmonylib.config import Config, with_seed
from harmonylib.inverse_data.common import GEN_ROOT_NAME, _subset_samples, results_root
from harmonylib.inverse_data.table2_data import AugmentedData
from harmonylib.paths import relative_to_home, resolve

SETTINGS = ("base", "augmented")  # Table 2's columns

RunKey = tuple[str, str, int]  # (subset, setting, training seed)


def table2_schedule(cfg: Config, n_base: int) -> tuple[int, int]:
    """(optimizer steps, batch size) shared by the base and augmented runs of one subset.

    Steps: ``augment.table2_steps``, else the unet loop's ``max_steps``, else its ``epochs`` over
    the base list (incomplete global batches dropped, as the loop counts them). The batch size is
    the unet loop's, cut to the base list's size when larger (smoke's two-image Hday2night), so
    that an epoch of the base list holds at least one batch.
    """
    from harmonylib.training.data_order import steps_per_epoch

    loop = cfg.train.unet.loop
    accum = loop.gradient_accumulation_steps
    batch = max(1, min(loop.batch_size, n_base // accum))
    if cfg.augment.table2_steps is not None:
        steps = cfg.augment.table2_steps
    elif loop.max_steps is not None:
        steps = loop.max_steps
    else:
        steps = loop.epochs * steps_per_epoch(n_base, batch, 1, accum)
    return int(steps), int(batch)


def table2_run_config(
    cfg: Config,
    subset: str,
    setting: str,
    *,
    steps: int,
    batch_size: int,
    gen_root: str | os.PathLike | None = None,
) -> Config:
    """The config of one Table 2 run: ``cfg`` with S's data only, forward UNet, the shared schedule.

    Args:
        subset: the one subset trained on (``data.subsets``).
        setting: ``"base"`` or ``"augmented"`` (``data.extra_roots = {"gen": gen_root}``).
        steps, batch_size: from :func:`table2_schedule` (the same for both settings).
        gen_root: the generated root (augmented only).
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {list(SETTINGS)}, got {setting!r}")
    if setting == "augmented" and gen_root is None:
        raise ValueError("the augmented run needs gen_root (generate_table2_data(...).gen_root)")
    extra = dict(cfg.data.extra_roots)
    if setting == "augmented":
        # relative to the home (``resolve`` reads it back): the run hash is the same in every clone
        extra[GEN_ROOT_NAME] = relative_to_home(resolve(gen_root))
    data = dataclasses.replace(cfg.data, subsets=(subset,), extra_roots=extra)
    rc = cfg.train.unet
    loop = dataclasses.replace(rc.loop, max_steps=int(steps), batch_size=int(batch_size))
    # init: SD-inpainting (paper) or its mini stand-in, never the adopted harmonization UNet
    unet = dataclasses.replace(rc, direction="forward", init=rc.init, adopt=None, loop=loop)
    return dataclasses.replace(cfg, data=data, train=dataclasses.replace(cfg.train, unet=unet))


@dataclass
class Table2Run:
    """One trained Table 2 model and the numbers that make the comparison fair."""

    subset: str
    setting: str
    cfg: Config
    run: Any  # harmonylib.training.runs.TrainedRun
    n_train: int  # composites in its training list
    steps: int
    batch_size: int
    seconds: float = float("nan")

    @property
    def seed(self) -> int:
        """The training seed (also the sampling seed of its test predictions)."""
        return int(self.cfg.seed)

    @property
    def samples_seen(self) -> int:
        """Training samples drawn: steps x batch x accumulation (one process)."""
        return self.steps * self.batch_size * self.cfg.train.unet.loop.gradient_accumulation_steps

    def summary(self) -> dict[str, Any]:
        return {
            "subset": self.subset,
            "setting": self.setting,
            "seed": self.seed,
            "run_dir": str(self.run.run_dir),
            "config_hash": self.run.config_hash,
            "status": self.run.status,
            "n_train": self.n_train,
            "steps": self.run.steps,
            "batch_size": self.batch_size,
            "samples_seen": self.samples_seen,
            "epochs_of_list": self.samples_seen / self.n_train,
            "final_loss": self.run.final_loss,
            "seconds": self.seconds,
        }


def train_table2(
    cfg: Config,
    data: AugmentedData,
    out_dir: str | os.PathLike | None = None,
    *,
    seeds: Sequence[int] | None = None,
    progress: bool = True,
    cpu: bool = False,
) -> dict[RunKey, Table2Run]:
    """Step 3: the base and augmented UNet of every subset and training seed (reused when
    already trained).

    Args:
        seeds: training seeds (default ``claim_rule.default_seeds``: one on smoke, three otherwise).

    Returns:
        ``{(subset, setting, seed): Table2Run}``.

    Raises:
        RuntimeError: the two runs of a subset did not take the same number of steps.
    """
    from harmonylib.assemble import runs_root
    from harmonylib.training.recipes import train_samples
    from harmonylib.training.runs import ensure_trained

    out: dict[RunKey, Table2Run] = {}
    for seed in default_seeds(cfg, seeds):
        scfg = with_seed(cfg, seed)
        for s, mix in data.subsets.items():
            steps, batch = table2_schedule(scfg, mix.n_composites)
            for setting in SETTINGS:
                rcfg = table2_run_config(
                    scfg, s, setting, steps=steps, batch_size=batch,
                    gen_root=data.gen_root if setting == "augmented" else None,
                )  # fmt: skip
                n_train = len(train_samples(rcfg))
                t0 = time.perf_counter()
                run = ensure_trained(
                    rcfg,
                    "unet",
                    run_dir=runs_root(cfg, out_dir) / f"table2-{s}-{setting}-seed{seed}",
                    progress=progress,
                    cpu=cpu,
                )
                out[(s, setting, seed)] = Table2Run(
                    s, setting, rcfg, run, n_train, steps, batch, time.perf_counter() - t0
                )
            if out[(s, "base", seed)].run.steps != out[(s, "augmented", seed)].run.steps:
                raise RuntimeError(
                    f"{s}, seed {seed}: base and augmented runs took different numbers of steps"
                )
    return out


def runs_frame(runs: Mapping[RunKey, Table2Run]) -> pd.DataFrame:
    """One row per run: list size, steps, batch, samples seen, epochs of its list, loss, time."""
    return pd.DataFrame([r.summary() for r in runs.values()])


def table2_pipeline(run: Table2Run):
    """A forward ``DiffHarmonyPipeline`` of one run: its EMA UNet, decoded by the plain base VAE."""
    from harmonylib.assemble import base_vae, unet_prompt_embeds
    from harmonylib.models.scheduler import make_scheduler
    from harmonylib.models.unet import EmptyPromptEmbedding
    from harmonylib.pipeline import DiffHarmonyPipeline

    pipe = DiffHarmonyPipeline(
        vae=base_vae(run.cfg, "unet").eval(),  # the VAE the UNet trained on; plain decode (§5.3.2)
        unet=run.run.load_model(ema=True).eval(),
        scheduler=make_scheduler(prediction_type=run.cfg.train.unet.prediction_type),
        empty_prompt_embedding=EmptyPromptEmbedding.from_tensor(unet_prompt_embeds(run.cfg)),
        direction="forward",
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def table2_inference_settings(cfg: Config, run: Table2Run):
    """Table 2's inference: ``table2_inference_size`` px, square, 5 steps, resized to 256, sampled
    with the run's training seed."""
    from harmonylib.inference import InferenceSettings

    return InferenceSettings(
        size=cfg.augment.table2_inference_size,
        size_mode="square",
        steps=5,  # §5.2
        output_resolution=256,
        seed=run.seed,
        model=f"table2:{run.subset}:{run.setting}:{run.run.config_hash}",
    )


def predict_table2(
    cfg: Config,
    run: Table2Run,
    out_dir: str | os.PathLike | None = None,
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[list, Path]:
    """Step 4's inference: one run's predictions of its subset's original test split.

    Predicts only what is missing (``predict_split``: a cache folder keyed by the settings hash).
    :func:`harmonylib.experiments.table2` scores them.

    Returns:
        The subset's test samples and the folder ``table2/predictions/<S>-<setting>-<hash>/``.
    """
    from harmonylib.data.builtin import ensure_dataset
    from harmonylib.inference import predict_split

    test = _subset_samples(ensure_dataset(cfg), "test", run.subset)
    settings = table2_inference_settings(cfg, run)
    preds = (
        results_root(cfg, out_dir)
        / "table2"
        / "predictions"
        / f"{run.subset}-{run.setting}-{settings.hash()}"
    )
    predict_split(
        table2_pipeline(run),
        test,
        preds,
        settings,
        batch_size=batch_size,
        rank=0,
        world_size=1,
        progress=progress,
    )
    return test, preds

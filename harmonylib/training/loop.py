"""The one training loop, on ``accelerate``, for every model of the project.

A recipe hands the loop a :class:`TrainSpec`: the module to train, a pure objective
``objective(model, batch, generator) -> (loss, logs)``, a dataset and the frozen helpers the
objective closes over. The loop owns everything else:

- data order and sharding from (seed, epoch) (:mod:`harmonylib.training.data_order`);
- gradient accumulation (manual, with ``no_sync`` on all but the last micro-batch) and clipping;
- optional mixed precision (``accelerator.autocast`` + accelerate's grad scaler);
- AdamW and the LR schedule from ``diffusers.optimization.get_scheduler``. A prepared scheduler
  steps once per process per optimizer step (accelerate's ``AcceleratedScheduler`` with
  ``split_batches=False``), so warmup and total steps are given to it times ``num_processes``:
  the LR at optimizer step s is then the same for any number of processes;
- EMA with diffusers ``EMAModel``, registered for checkpointing; exported with
  ``store`` / ``copy_to`` / ``restore`` so the live weights are never overwritten (the authors'
  trainers copied EMA into the live model at every save, official-implementation.md §10.1);
- random generators derived from (seed, step, micro-batch index) and never stored
  (``save_state`` does not save ad-hoc generators); the micro-batch index is ``a * P + r``, so
  2 processes draw what 1 process with accumulation 2 draws;
- ``metrics.csv`` and a progress bar on the main process;
- ``checkpoint-<step>`` every N steps keeping the newest K, resume from the latest, and a
  checkpoint on SIGINT / SIGTERM before returning ``status="interrupted"``;
- divergence: a non-finite loss is logged as NaN, no update is applied, and the run stops with
  ``status="diverged"`` (a Table 5 cell is then NaN, never a faked number).

Final weights go to ``<run_dir>/weights/live`` and ``<run_dir>/weights/ema`` (diffusers
``save_pretrained`` folders with safetensors; plain modules get ``model.safetensors``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from harmonylib.config import LoopConfig
from harmonylib.reproducibility import derive_seed, make_generator
from harmonylib.training.checkpoints import latest_checkpoint, read_trainer_state, save_checkpoint
from harmonylib.training.data_order import ShardBatchSampler, steps_per_epoch
from harmonylib.training.metrics_log import MetricsLog

Objective = Callable[[nn.Module, dict[str, Any], torch.Generator], tuple[torch.Tensor, dict[str, float]]]

CHECKPOINTS_DIR = "checkpoints"
WEIGHTS_DIR = "weights"
METRICS_FILE = "metrics.csv"


@dataclass
class TrainSpec:
    """What a recipe gives the loop.

    Attributes:
        model: the module whose trainable parameters (``requires_grad``) are optimised; its
            weights are the run's output.
        objective: ``objective(model, batch, generator) -> (loss, logs)``; pure, frozen helpers bound.
        dataset: items are dicts of tensors (plus strings); batched by ``collate_fn``.
        frozen: modules the objective uses without training them (moved to the device, ``eval()``).
        collate_fn: the DataLoader's collate function (default: torch's).
        save_weights: ``save_weights(model, folder)``; default :func:`save_model`.
    """

    model: nn.Module
    objective: Objective
    dataset: Dataset
    frozen: Sequence[nn.Module] = ()
    collate_fn: Callable[[list[Any]], Any] | None = None
    save_weights: Callable[[nn.Module, Path], None] | None = None


@dataclass
class TrainResult:
    """How a call of :func:`train_loop` ended."""

    status: str  # "completed", "diverged" or "interrupted"
    step: int  # optimizer steps done (the step of the newest weights)
    max_steps: int
    resumed_from: int  # 0 for a fresh start
    final_loss: float  # loss of the last step (NaN when diverged)
    run_dir: Path
    weights: dict[str, Path] = field(default_factory=dict)  # "live" / "ema" -> folder
    num_processes: int = 1


class _StopFlag:
    """SIGINT / SIGTERM set a flag; the loop checkpoints at the end of the step and returns."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C does not wait for the checkpoint
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)


def save_model(model: nn.Module, folder: Path) -> None:
    """Save ``model`` into ``folder`` (atomically): ``save_pretrained`` (safetensors) for diffusers
    models; ``model.safetensors`` + ``config.json`` (class name) for plain modules."""
    folder = Path(folder)
    tmp = folder.with_name(f".tmp-{folder.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(str(tmp), safe_serialization=True)
    else:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        cls = type(model)
        (tmp / "config.json").write_text(json.dumps({"_class_name": f"{cls.__module__}.{cls.__qualname__}"}))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def export_weights(
    model: nn.Module, ema: Any | None, out_dir: Path, save_fn: Callable[[nn.Module, Path], None] = save_model
) -> dict[str, Path]:
    """Write the live weights to ``out_dir/live`` and, with an EMA, the EMA weights to ``out_dir/ema``.

    The EMA weights are swapped in with ``store`` / ``copy_to`` and swapped out with ``restore``,
    so the live weights are the same before and after (bit for bit).
    """
    out = {"live": Path(out_dir) / "live"}
    save_fn(model, out["live"])
    if ema is not None:
        params = list(model.parameters())
        ema.store(params)
        try:
            ema.copy_to(params)
            out["ema"] = Path(out_dir) / "ema"
            save_fn(model, out["ema"])
        finally:
            ema.restore(params)
    return out


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _reset_accelerate_state_if_single_process() -> None:
    """Let one Python process run several trainings (tests, notebooks) with different settings."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def resolve_warmup(loop: LoopConfig, max_steps: int) -> int:
    """Warmup length in optimizer steps: ``ceil(warmup_ratio * max_steps)`` if a ratio is set."""
    if loop.optim.warmup_ratio is not None:
        return int(math.ceil(loop.optim.warmup_ratio * max_steps))
    return loop.optim.warmup_steps


def train_loop(
    spec: TrainSpec,
    loop: LoopConfig,
    run_dir: str | os.PathLike,
    seed: int,
    *,
    resume: str | os.PathLike | None = "latest",
    cpu: bool = False,
    progress: bool = True,
    on_step_end: Callable[[int], None] | None = None,
    record_indices: bool = False,
) -> TrainResult:
    """Train ``spec.model`` with ``spec.objective`` under the settings of ``loop``.

    Args:
        spec: model, objective, dataset (see :class:`TrainSpec`).
        loop: batch size per process, accumulation, length, precision, checkpoints, optimiser, EMA.
        run_dir: the run folder; ``checkpoints/``, ``metrics.csv`` and ``weights/`` go here.
        seed: the run seed; data order and every random draw derive from it.
        resume: ``"latest"`` (the newest complete checkpoint, if any), a checkpoint folder, or None.
        cpu: force CPU even where a GPU exists.
        progress: show a progress bar (main process only).
        on_step_end: called with the step number after each optimizer step (after any checkpoint).
        record_indices: append each process's sample indices to ``indices-rank<r>.jsonl`` (tests).

    Returns:
        A :class:`TrainResult`. On SIGINT/SIGTERM a checkpoint is written first and the status is
        ``"interrupted"`` (no weights exported).

    Raises:
        ValueError: the dataset is smaller than one global batch, or a checkpoint was written with
            another batch layout.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    _reset_accelerate_state_if_single_process()
    accelerator = Accelerator(
        mixed_precision=loop.mixed_precision,
        cpu=cpu,
        project_config=ProjectConfiguration(project_dir=str(run_dir)),
    )
    nproc, rank = accelerator.num_processes, accelerator.process_index
    bsz, accum = loop.batch_size, loop.gradient_accumulation_steps
    n = len(spec.dataset)
    per_epoch = steps_per_epoch(n, bsz, nproc, accum)
    max_steps = loop.max_steps if loop.max_steps is not None else loop.epochs * per_epoch
    warmup = resolve_warmup(loop, max_steps)
    layout = {
        "batch_size": bsz,
        "gradient_accumulation_steps": accum,
        "num_processes": nproc,
        "dataset_size": n,
        "seed": seed,
    }

    # 1. Model, optimiser, schedule, EMA.
    model = spec.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (requires_grad is False everywhere)")
    o = loop.optim
    optimizer = torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, eps=o.eps)
    lr_scheduler = get_scheduler(
        o.lr_scheduler,
        optimizer,
        num_warmup_steps=warmup * nproc,  # the prepared scheduler steps nproc times per optimizer step
        num_training_steps=max_steps * nproc,
    )
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    bare = accelerator.unwrap_model(model)
    for m in spec.frozen:
        m.requires_grad_(False)
        m.to(accelerator.device).eval()
    ema = None
    if loop.ema.enabled:
        e = loop.ema
        ema = EMAModel(
            bare.parameters(),
            decay=e.decay,
            min_decay=e.min_decay,
            update_after_step=e.update_after_step,
            use_ema_warmup=e.use_ema_warmup,
            inv_gamma=e.inv_gamma,
            power=e.power,
        )
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    # 2. Resume.
    ckpt_root = run_dir / CHECKPOINTS_DIR
    start = 0
    ckpt = latest_checkpoint(ckpt_root) if resume == "latest" else (Path(resume) if resume else None)
    if ckpt is not None:
        state = read_trainer_state(ckpt)
        mismatch = {k: (state.get(k), v) for k, v in layout.items() if state.get(k) != v}
        if mismatch:
            raise ValueError(f"{ckpt} was written with another layout (checkpoint, now): {mismatch}")
        accelerator.load_state(str(ckpt))
        if ema is not None:
            ema.to(accelerator.device)
        start = int(state["step"])
    main = accelerator.is_main_process
    log = MetricsLog(run_dir / METRICS_FILE, keep_until_step=start, enabled=main)
    idx_file = run_dir / f"indices-rank{rank}.jsonl" if record_indices else None

    # 3. Loop.
    step, status, last_loss = start, "completed", float("nan")
    bar = tqdm(total=max_steps, initial=start, disable=not (progress and main), desc="train", unit="step")
    t0 = time.perf_counter()
    model.train()
    with _StopFlag() as stop:
        while step < max_steps and status == "completed":
            epoch, in_epoch = divmod(step, per_epoch)
            sampler = ShardBatchSampler(n, seed, epoch, bsz, rank, nproc, accum, start_step=in_epoch)
            loader = DataLoader(
                spec.dataset, batch_sampler=sampler, collate_fn=spec.collate_fn, num_workers=loop.num_workers
            )
            batches = iter(loader)
            for _ in range(in_epoch, per_epoch):
                if step >= max_steps:
                    break
                lr = optimizer.param_groups[0]["lr"]  # the LR this step uses
                losses, logs_sum = [], {}
                for a in range(accum):
                    batch = _to_device(next(batches), accelerator.device)
                    if idx_file is not None and "index" in batch:
                        with open(idx_file, "a") as fh:
                            fh.write(
                                json.dumps({"step": step, "accum": a, "index": batch["index"].tolist()})
                                + "\n"
                            )
                    gen = make_generator(derive_seed(seed, "step", step, "micro", a * nproc + rank))
                    sync = contextlib.nullcontext() if a == accum - 1 else accelerator.no_sync(model)
                    with sync:
                        with accelerator.autocast():
                            loss, logs = spec.objective(model, batch, gen)
                        accelerator.backward(loss / accum)
                    losses.append(loss.detach().float())
                    for k, v in logs.items():
                        logs_sum[k] = logs_sum.get(k, 0.0) + float(v) / accum
                loss_all = accelerator.reduce(torch.stack(losses).mean(), reduction="mean")
                last_loss = float(loss_all)
                row: dict[str, Any] = {"step": step + 1, "epoch": epoch, "loss": last_loss, "lr": lr}
                if not math.isfinite(last_loss):
                    optimizer.zero_grad(set_to_none=True)
                    status = "diverged"
                    log.log(
                        {**row, "grad_norm": float("nan"), "wall_s": time.perf_counter() - t0, **logs_sum}
                    )
                    break
                grad_norm = float("nan")
                if o.max_grad_norm is not None:
                    grad_norm = float(accelerator.clip_grad_norm_(params, o.max_grad_norm))
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if ema is not None:
                    ema.step(bare.parameters())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4g}")
                if step % loop.log_every == 0 or step == max_steps:
                    log.log({**row, "grad_norm": grad_norm, "wall_s": time.perf_counter() - t0, **logs_sum})
                saved = False
                if step % loop.checkpointing_steps == 0 and step < max_steps:
                    save_checkpoint(accelerator, ckpt_root, step, layout, loop.checkpoints_total_limit)
                    saved = True
                stopping = stop.signum is not None and step < max_steps
                if nproc > 1:  # every process stops at the same step
                    flag = torch.tensor(float(stopping), device=accelerator.device)
                    stopping = bool(accelerator.reduce(flag, reduction="sum") > 0)
                if stopping:
                    if not saved:
                        save_checkpoint(accelerator, ckpt_root, step, layout, loop.checkpoints_total_limit)
                    status = "interrupted"
                if on_step_end is not None:
                    on_step_end(step)
                if stopping:
                    break
    bar.close()

    # 4. Final weights (live and EMA), main process only.
    weights: dict[str, Path] = {}
    accelerator.wait_for_everyone()
    if status != "interrupted" and main:
        weights = export_weights(bare, ema, run_dir / WEIGHTS_DIR, spec.save_weights or save_model)
    accelerator.wait_for_everyone()
    return TrainResult(
        status=status,
        step=step,
        max_steps=max_steps,
        resumed_from=start,
        final_loss=last_loss,
        run_dir=run_dir,
        weights=weights,
        num_processes=nproc,
    )

"""The training loop: LR schedule, EMA export, determinism, resume, divergence, SIGKILL and SIGTERM.

Reliability tests fork the test process (no re-import, so they stay fast) and kill the child for
real; everything runs on CPU in one thread so that runs compare bit for bit.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from harmonylib.config import EMAConfig, LoopConfig, OptimConfig, load_config
from harmonylib.training.checkpoints import latest_checkpoint, list_checkpoints
from harmonylib.training.loop import TrainSpec, export_weights, train_loop
from harmonylib.training.runs import TrainingInterrupted, ensure_trained, read_done

# ---- a toy problem ----------------------------------------------------------------------------


class Regression(Dataset):
    def __init__(self, n: int = 32):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.arange(1.0, 5.0)[:, None]

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i], "index": i}


def noisy_mse(model, batch, generator):
    noise = torch.randn(batch["y"].shape, generator=generator) * 0.1  # exercises the derived generator
    return ((model(batch["x"]) - batch["y"] - noise) ** 2).mean(), {}


def _toy_spec(objective=noisy_mse) -> TrainSpec:
    torch.manual_seed(0)
    return TrainSpec(nn.Linear(4, 1), objective, Regression())


def _loop(**kw) -> LoopConfig:
    base = dict(batch_size=4, max_steps=10, checkpointing_steps=3, checkpoints_total_limit=2)
    base.update(kw)
    base.setdefault("optim", OptimConfig(lr=0.05, warmup_steps=2))
    base.setdefault("ema", EMAConfig(decay=0.9))
    return LoopConfig(**base)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    files = list(Path(folder).glob("*.safetensors"))
    assert len(files) == 1, files
    return load_file(str(files[0]))


def _assert_bit_identical(a: Path, b: Path) -> None:
    for kind in ("live", "ema"):
        wa, wb = _weights(a / "weights" / kind), _weights(b / "weights" / kind)
        assert wa.keys() == wb.keys()
        for k in wa:
            assert torch.equal(wa[k], wb[k]), f"{kind} {k} differs"


# ---- schedule, EMA, determinism ---------------------------------------------------------------


def test_lr_warmup_then_constant(tmp_path):
    loop = _loop(max_steps=6, optim=OptimConfig(lr=0.3, warmup_steps=3))
    train_loop(_toy_spec(), loop, tmp_path, seed=0, progress=False)
    lrs = pd.read_csv(tmp_path / "metrics.csv")["lr"].tolist()
    assert lrs == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.3, 0.3])


def test_warmup_ratio_is_a_fraction_of_total_steps(tmp_path):
    loop = _loop(max_steps=8, optim=OptimConfig(lr=1.0, warmup_ratio=0.5))  # ceil(0.5 * 8) = 4
    train_loop(_toy_spec(), loop, tmp_path, seed=0, progress=False)
    assert pd.read_csv(tmp_path / "metrics.csv")["lr"].tolist()[:5] == pytest.approx(
        [0, 0.25, 0.5, 0.75, 1.0]
    )


def test_export_weights_never_overwrites_live_weights(tmp_path):
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = EMAModel(model.parameters(), decay=0.5)
    for _ in range(2):  # the first EMA step copies (decay 0); the second averages
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        ema.step(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = export_weights(model, ema, tmp_path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # live weights untouched, bit for bit
    live, ema_w = _weights(out["live"]), _weights(out["ema"])
    assert all(torch.equal(live[k], before[k]) for k in before)
    shadow = dict(zip([n for n, _ in model.named_parameters()], ema.shadow_params, strict=True))
    assert all(torch.equal(ema_w[k], shadow[k]) for k in shadow)
    assert not torch.equal(ema_w["weight"], live["weight"])


def test_same_seed_same_run_bit_for_bit(tmp_path):
    loop = _loop()
    a = train_loop(_toy_spec(), loop, tmp_path / "a", seed=5, progress=False)
    b = train_loop(_toy_spec(), loop, tmp_path / "b", seed=5, progress=False)
    c = train_loop(_toy_spec(), loop, tmp_path / "c", seed=6, progress=False)
    assert a.status == b.status == "completed" and a.step == 10
    _assert_bit_identical(tmp_path / "a", tmp_path / "b")
    assert not torch.equal(
        _weights(tmp_path / "a/weights/live")["weight"], _weights(tmp_path / "c/weights/live")["weight"]
    )
    assert c.final_loss != a.final_loss


def test_checkpoints_keep_newest_k_and_resume_truncates_metrics(tmp_path):
    loop = _loop()
    train_loop(_toy_spec(), loop, tmp_path / "full", seed=0, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "full/checkpoints")] == [
        "checkpoint-6",
        "checkpoint-9",
    ]
    # Resume a copy from checkpoint-6 whose metrics.csv already ran ahead to step 10.
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "full/checkpoints/checkpoint-6", part / "checkpoints/checkpoint-6")
    shutil.copy(tmp_path / "full/metrics.csv", part / "metrics.csv")
    r = train_loop(_toy_spec(), loop, part, seed=0, progress=False)
    assert r.resumed_from == 6 and r.step == 10
    m_full, m_part = pd.read_csv(tmp_path / "full/metrics.csv"), pd.read_csv(part / "metrics.csv")
    assert m_part["step"].tolist() == list(range(1, 11))
    assert m_part["loss"].tolist() == m_full["loss"].tolist()
    _assert_bit_identical(tmp_path / "full", part)


def test_resume_refuses_another_batch_layout(tmp_path):
    train_loop(_toy_spec(), _loop(max_steps=4, checkpointing_steps=2), tmp_path, seed=0, progress=False)
    with pytest.raises(ValueError, match="another layout.*batch_size"):
        train_loop(
            _toy_spec(),
            _loop(max_steps=6, batch_size=2, checkpointing_steps=2),
            tmp_path,
            seed=0,
            progress=False,
        )


def test_non_finite_loss_stops_cleanly_and_records_nan(tmp_path):
    calls = []

    def explodes_at_third_step(model, batch, generator):
        calls.append(1)
        loss, logs = noisy_mse(model, batch, generator)
        return (loss * float("nan") if len(calls) == 3 else loss), logs

    r = train_loop(_toy_spec(explodes_at_third_step), _loop(), tmp_path / "nan", seed=0, progress=False)
    assert r.status == "diverged" and r.step == 2
    losses = pd.read_csv(tmp_path / "nan/metrics.csv")["loss"]
    assert losses.iloc[:2].notna().all() and losses.isna().tolist()[2]
    # No update was applied at the NaN step: the weights are those after step 2.
    train_loop(_toy_spec(), _loop(max_steps=2), tmp_path / "two", seed=0, progress=False)
    _assert_bit_identical(tmp_path / "nan", tmp_path / "two")


# ---- SIGKILL and SIGTERM on a real recipe (smoke Harmony-VAE) -----------------------------------


@pytest.fixture(scope="module")
def reliability_cfg(smoke_data_root):
    return load_config(
        "smoke",
        {
            "data.root": str(smoke_data_root),
            "train.harmony_vae.loop.batch_size": 2,
            "train.harmony_vae.loop.max_steps": 8,
            "train.harmony_vae.loop.checkpointing_steps": 2,
            "train.harmony_vae.loop.checkpoints_total_limit": 2,
        },
    )


@pytest.fixture(scope="module")
def uninterrupted(reliability_cfg, tmp_path_factory):
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run = ensure_trained(reliability_cfg, "harmony_vae", run_dir=run_dir, progress=False)
    assert run.status == "completed" and run.steps == 8
    return run_dir


def _child(cfg, run_dir, steps_file, kill_at, sleep_s):
    def on_step(step):
        with open(steps_file, "a") as fh:
            fh.write(f"{step}\n")
        if sleep_s:
            time.sleep(sleep_s)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    torch.set_num_threads(1)
    try:
        ensure_trained(cfg, "harmony_vae", run_dir=run_dir, progress=False, on_step_end=on_step)
    except TrainingInterrupted:
        os._exit(3)
    os._exit(0)


def _fork(*args) -> mp.Process:
    p = mp.get_context("fork").Process(target=_child, args=args)
    p.start()
    return p


def _steps(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_sigkill_twice_then_resume_is_bit_identical(reliability_cfg, uninterrupted, tmp_path):
    run_dir, steps_file = tmp_path / "run", tmp_path / "steps.txt"
    for kill_at in (3, 7):  # after checkpoint-2, and after checkpoint-6 (with 4 and 6 kept)
        p = _fork(reliability_cfg, run_dir, steps_file, kill_at, 0.0)
        p.join(120)
        assert p.exitcode == -signal.SIGKILL
        assert read_done(run_dir) is None
    assert _steps(steps_file) == [1, 2, 3, 3, 4, 5, 6, 7]  # the second run restored step 2
    assert [c.name for c in list_checkpoints(run_dir / "checkpoints")] == ["checkpoint-4", "checkpoint-6"]
    seen = []
    run = ensure_trained(
        reliability_cfg, "harmony_vae", run_dir=run_dir, progress=False, on_step_end=seen.append
    )
    assert seen == [7, 8]  # restored step 6 > 0
    assert run.status == "completed" and run.steps == 8
    _assert_bit_identical(uninterrupted, run_dir)
    a, b = pd.read_csv(uninterrupted / "metrics.csv"), pd.read_csv(run_dir / "metrics.csv")
    assert a["loss"].tolist() == b["loss"].tolist() and b["step"].tolist() == list(range(1, 9))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_leave_a_usable_checkpoint(reliability_cfg, uninterrupted, tmp_path, signum):
    run_dir, steps_file = tmp_path / "run", tmp_path / "steps.txt"
    p = _fork(reliability_cfg, run_dir, steps_file, None, 0.4)
    deadline = time.time() + 60
    while not _steps(steps_file) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(p.pid, signum)
    p.join(60)
    assert p.exitcode == 3  # TrainingInterrupted after the checkpoint
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    assert ckpt is not None and read_done(run_dir) is None
    stopped = int(ckpt.name.split("-")[1])
    assert 1 <= stopped < 8
    seen = []
    ensure_trained(reliability_cfg, "harmony_vae", run_dir=run_dir, progress=False, on_step_end=seen.append)
    assert seen[0] == stopped + 1
    _assert_bit_identical(uninterrupted, run_dir)


def test_the_loop_trains_a_plain_autoencoder(smoke_data_root, tmp_path):
    """The mini pretraining recipe is just this loop on an AutoencoderKL with a reconstruction objective."""
    import functools

    from diffusers import AutoencoderKL

    from harmonylib.models.tiny import build_tiny_vae
    from harmonylib.training.objectives import autoencoder_loss
    from harmonylib.training.recipes import harmony_dataset

    cfg = load_config("smoke", {"data.root": str(smoke_data_root)})
    spec = TrainSpec(
        build_tiny_vae(0), functools.partial(autoencoder_loss), harmony_dataset(cfg, 32, "square")
    )
    r = train_loop(spec, _loop(max_steps=3, batch_size=2), tmp_path, seed=0, progress=False)
    assert r.status == "completed"
    vae = AutoencoderKL.from_pretrained(tmp_path / "weights/ema")
    assert vae.config.latent_channels == 4


def test_metrics_log_drops_rows_after_the_resume_point_and_a_torn_last_line(tmp_path):
    from harmonylib.training.metrics_log import MetricsLog

    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n1,0.5\n2,0.4\n3,0.3\n4,0.")  # killed while writing step 4
    log = MetricsLog(path, keep_until_step=2)
    log.log({"step": 3, "loss": 0.25})
    assert path.read_text() == "step,loss\n1,0.5\n2,0.4\n3,0.25\n"


def test_mixed_precision_bf16_runs_on_cpu(tmp_path):
    bf16 = train_loop(
        _toy_spec(), _loop(max_steps=4, mixed_precision="bf16"), tmp_path / "bf16", seed=0, progress=False
    )
    fp32 = train_loop(_toy_spec(), _loop(max_steps=4), tmp_path / "fp32", seed=0, progress=False)
    assert bf16.status == fp32.status == "completed"
    assert bf16.final_loss != fp32.final_loss  # autocast was active
    assert bf16.final_loss == pytest.approx(fp32.final_loss, rel=0.05)

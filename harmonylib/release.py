"""The mini profile's released checkpoints: stored, installed and re-made as the authors' are.

The paper's authors release a DiffHarmony UNet and Harmony-VAE weights; users load them instead of
training. The mini profile does the same with its own, committed under
``harmonylib/weights/mini/released/``:

* ``harmony_vae-<variant>-seed<k>/`` for each claim seed: a Harmony-VAE stored as a *delta* on the
  committed base VAE. Only what training changes is stored (the conditional encoder E_c with its
  skip convs, the decoder, the latent skip conv), fp16 safetensors in shards under 5 MB; the frozen
  encoder and quant convs come from ``weights/mini/vae`` at load time (its SHA-256 is checked).
  ``RELEASE.json`` records the run hash, steps, final loss and the base VAE's hash.
* the forward UNet is ``weights/mini/unet`` (pretraining stage d, fine-tuned from the inpainting
  stand-in on the harmonization train split).

``install_released`` turns a release into a finished run folder (``DONE`` with status
``completed`` and ``source: released``) when its run hash equals the one the config asks for, so
``ensure_trained`` reuses it and ``make table1`` evaluates the released checkpoints without
training. ``python -m harmonylib.release retrain`` re-makes them from the base weights in a scratch
folder and compares every file's SHA-256 with the committed ones (CPU training is deterministic).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from harmonylib.io import atomic_write_json

RELEASE_FILE = "RELEASE.json"
DELTA_PREFIXES = ("conditional_encoder.", "decoder.", "latent_skip_conv.")  # what E_c+D training changes
BASE_PREFIXES = ("encoder.", "quant_conv.", "post_quant_conv.")  # frozen copies of the base VAE
MAX_SHARD_BYTES = 4 * 1024 * 1024  # shards below 5 MB: every committed file stays small
SHARD_INDEX = "delta.safetensors.index.json"


class ReleaseError(RuntimeError):
    """A released checkpoint is incomplete, or was made on another base VAE than the one given."""


# ---- 1. Harmony-VAE deltas ----------------------------------------------------------------------


def delta_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The Harmony-VAE entries that training changes (``DELTA_PREFIXES``), sorted by key."""
    sd = model.state_dict()
    other = [k for k in sd if not k.startswith(DELTA_PREFIXES + BASE_PREFIXES)]
    if other:
        raise ReleaseError(f"unexpected Harmony-VAE parameters (neither delta nor base): {other[:5]}")
    return {k: sd[k] for k in sorted(sd) if k.startswith(DELTA_PREFIXES)}


def _write_shards(tensors: dict[str, torch.Tensor], folder: Path) -> list[str]:
    """Deterministic shards ``delta-0000i-of-0000n.safetensors`` (< MAX_SHARD_BYTES) and their index."""
    from safetensors.torch import save_file

    groups: list[list[str]] = [[]]
    size = 0
    for k, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if groups[-1] and size + nbytes > MAX_SHARD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(k)
        size += nbytes
    names = [f"delta-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    weight_map = {}
    for name, keys in zip(names, groups, strict=True):
        save_file({k: tensors[k].contiguous() for k in keys}, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(keys, name))
    (folder / SHARD_INDEX).write_text(json.dumps({"weight_map": weight_map}, indent=2, sort_keys=True) + "\n")
    return names


def save_harmony_vae_delta(
    model: torch.nn.Module,
    folder: str | os.PathLike,
    base_vae_dir: str | os.PathLike,
    record: dict[str, Any],
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Store ``model`` (a ``HarmonyVAE`` built on the base VAE at ``base_vae_dir``) as a delta.

    Writes ``config.json``, the delta shards and their index, and ``RELEASE.json`` (``record`` plus
    the base VAE's SHA-256) into a fresh ``folder``, atomically (a sibling temporary folder).
    """
    from harmonylib.provenance import sha256_tree

    out = Path(folder)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        # from_pretrained records the absolute folder it read in ``_name_or_path``; the release is
        # named by its own folder, so that `make retrain` in another clone writes the same bytes
        model.register_to_config(_name_or_path=out.name)
        model.save_config(tmp)
        _write_shards({k: v.detach().to(dtype) for k, v in delta_state_dict(model).items()}, tmp)
        rec = {**record, "base_vae_sha256": sha256_tree(Path(base_vae_dir)), "stored_dtype": str(dtype)}
        atomic_write_json(tmp / RELEASE_FILE, rec)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_harmony_vae_delta(folder: str | os.PathLike, base_vae_dir: str | os.PathLike):
    """The ``HarmonyVAE`` of a released delta, in fp32, on the base VAE at ``base_vae_dir``.

    Raises:
        ReleaseError: a missing file, a base VAE other than the one the delta was made on, or
            shards that do not cover exactly the delta parameters.
    """
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file

    from harmonylib.models.harmony_vae import HarmonyVAE
    from harmonylib.provenance import sha256_tree

    folder, base = Path(folder), Path(base_vae_dir)
    for name in ("config.json", SHARD_INDEX, RELEASE_FILE):
        if not (folder / name).is_file():
            raise ReleaseError(f"{folder}: missing {name}; not a released Harmony-VAE delta")
    rec = json.loads((folder / RELEASE_FILE).read_text())
    if rec.get("base_vae_sha256") != sha256_tree(base):
        raise ReleaseError(
            f"{folder} was made on another base VAE than {base} (SHA-256 {rec.get('base_vae_sha256')!r}); "
            "re-make it with `make retrain`"
        )
    config = json.loads((folder / "config.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    model = HarmonyVAE.from_vae(AutoencoderKL.from_pretrained(base, torch_dtype=torch.float32), **{
        k: v for k, v in config.items() if k in ("skip_init", "mask_conv_init")
    })  # fmt: skip
    index = json.loads((folder / SHARD_INDEX).read_text())["weight_map"]
    delta: dict[str, torch.Tensor] = {}
    for shard in sorted(set(index.values())):
        delta.update(load_file(str(folder / shard)))
    want = set(delta_state_dict(model))
    if set(delta) != want:
        raise ReleaseError(
            f"{folder}: delta keys differ from the model's (missing {sorted(want - set(delta))[:3]}, "
            f"extra {sorted(set(delta) - want)[:3]})"
        )
    model.load_state_dict({k: v.float() for k, v in delta.items()}, strict=False)
    return model.eval()


# ---- 2. Released runs -----------------------------------------------------------------------------


def released_dir(cfg) -> Path:
    """``<pretrain.out_dir>/released``: where the profile's released checkpoints live."""
    from harmonylib.paths import resolve

    return resolve(cfg.pretrain.out_dir) / "released"


def release_name(cfg) -> str:
    """``harmony_vae-<variant>-seed<k>``: the released folder of a Harmony-VAE config."""
    return f"harmony_vae-{cfg.train.harmony_vae.variant}-seed{cfg.seed}"


def install_released(cfg, run_dir: str | os.PathLike) -> bool:
    """Make ``run_dir`` a finished ``harmony_vae`` run from the released checkpoint of ``cfg``.

    Only when a release exists for ``cfg`` (variant and seed) and its run hash is the one ``cfg``
    asks for; a finished run already in ``run_dir`` is left alone. Returns True if the folder now
    holds the release.
    """
    import yaml

    from harmonylib.config import to_dict
    from harmonylib.training.loop import WEIGHTS_DIR
    from harmonylib.training.runs import read_done, run_config, run_folder, run_hash

    folder = released_dir(cfg) / release_name(cfg)
    run_dir = Path(run_dir)
    if not (folder / RELEASE_FILE).is_file():
        return False
    rec = json.loads((folder / RELEASE_FILE).read_text())
    h = run_hash(cfg, "harmony_vae")
    if rec.get("run_hash") != h:
        return False
    done = read_done(run_dir)
    if done is not None:
        return run_folder(run_dir, h).is_done() and done.get("source") == "released"
    from harmonylib.paths import portable, resolve

    model = load_harmony_vae_delta(folder, resolve(cfg.train.harmony_vae.vae))
    tmp = run_dir.with_name(run_dir.name + ".installing")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / WEIGHTS_DIR).mkdir(parents=True)
    model.save_pretrained(tmp / WEIGHTS_DIR / "ema", safe_serialization=True)
    (tmp / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    markers = run_folder(tmp, h)  # the markers a trained run writes (run.json, DONE)
    markers.key_marker.write(
        tmp,
        h,
        {
            "recipe": "harmony_vae",
            "run_name": run_dir.name,
            "config_hash": h,
            "run_config": run_config(cfg, "harmony_vae"),
        },
    )
    markers.mark_done(
        {
            "recipe": "harmony_vae",
            "config_hash": h,
            "status": "completed",
            "steps": int(rec["steps"]),
            "max_steps": int(rec["steps"]),
            "final_loss": float(rec["final_loss"]),
            "source": "released",
            "released_from": portable(folder),
        },
    )
    if run_dir.exists():
        aside = run_dir.with_name(run_dir.name + ".replaced-unfinished")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(run_dir, aside)
    os.replace(tmp, run_dir)
    return True


def export_release(runs: Iterable[Any], cfgs: Iterable[Any], out: str | os.PathLike) -> list[Path]:
    """Store finished Harmony-VAE runs (EMA weights) as released deltas under ``out``."""
    from harmonylib.paths import resolve
    from harmonylib.training.runs import run_hash

    written = []
    for run, cfg in zip(runs, cfgs, strict=True):
        record = {
            "recipe": "harmony_vae",
            "variant": cfg.train.harmony_vae.variant,
            "seed": cfg.seed,
            "run_hash": run_hash(cfg, "harmony_vae"),
            "steps": run.steps,
            "final_loss": run.final_loss,
        }
        written.append(
            save_harmony_vae_delta(
                run.load_model(ema=True),
                Path(out) / release_name(cfg),
                resolve(cfg.train.harmony_vae.vae),
                record,
            )
        )
    return written


def released_pipeline(profile: str = "mini", seed: int | None = None):
    """DiffHarmony++ from the committed release of ``profile``: base VAE + the Harmony-VAE delta of
    ``seed`` (default: the profile's seed) + the forward UNet, recording the R_inf "1024" rung as
    its default size. Needs no training and no run folder (``harmonylib harmonize``'s default).

    Raises:
        ReleaseError: the profile has no released Harmony-VAE for that seed.
    """
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from harmonylib.config import PAPER_VARIANT, load_config, with_seed
    from harmonylib.models.scheduler import make_scheduler
    from harmonylib.models.unet import EmptyPromptEmbedding
    from harmonylib.paths import resolve
    from harmonylib.pipeline import DiffHarmonyPipeline

    cfg = load_config(profile)
    cfg = with_seed(cfg, cfg.seed if seed is None else seed, PAPER_VARIANT)
    weights = resolve(cfg.pretrain.out_dir)
    folder = released_dir(cfg) / release_name(cfg)
    if not (folder / RELEASE_FILE).is_file():
        raise ReleaseError(
            f"no released Harmony-VAE at {folder}; make one with `make retrain` (profile {profile!r}) "
            "or pass --pipeline DIR"
        )
    pipe = DiffHarmonyPipeline(
        vae=load_harmony_vae_delta(folder, weights / "vae"),
        unet=UNet2DConditionModel.from_pretrained(weights / "unet", torch_dtype=torch.float32).eval(),
        # the exported training scheduler's schedule and prediction_type, sampled by Euler ancestral
        scheduler=make_scheduler(DDPMScheduler.load_config(weights / "scheduler")),
        empty_prompt_embedding=EmptyPromptEmbedding.from_pretrained(weights / "empty_prompt_embedding"),
        direction="forward",
        default_size=cfg.ladder.r_inf_high,
    )
    return pipe

"""One training step per paper recipe, for ``gpu_check.py``: s/step and peak memory.

Each recipe's model is built as :mod:`harmonylib.training.recipes` builds it, with random weights
(no SD, ImageNet or iHarmony4 files are needed), and trained on a synthetic batch of the paper
profile's resolution and batch size with the profile's mixed precision (``torch.autocast`` plus a
``GradScaler`` for fp16, what accelerate does inside ``training/loop.py``), AdamW and gradient
clipping. When the paper batch does not fit, the batch is halved until it does, and the size used
is reported. ``dry=True`` swaps in the tiny architectures, batch 2 and 64 px, on the CPU.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
from torch import nn

from harmonylib.config import load_config
from harmonylib.reproducibility import make_generator
from harmonylib.training import objectives

TRAIN_RECIPES = ("unet", "harmony_vae", "refinement", "classifier")
AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "no": None}

# Random weights in place of the pretrained folders the paper profile points at.
PAPER_OVERRIDES: dict[str, Any] = {
    "train.unet.init": None,
    "train.unet.vae": None,
    "train.harmony_vae.vae": None,
    "train.classifier.backbone_weights": None,
}
DRY_OVERRIDES: dict[str, Any] = {
    **PAPER_OVERRIDES,
    "train.unet.arch": "tiny",
    "train.unet.vae_arch": "tiny",
    "train.harmony_vae.vae_arch": "tiny",
    "train.refinement.size": "tiny",
    "train.classifier.arch": "mini",
}
DRY_BATCH, DRY_RESOLUTION = 2, 64


def _build(recipe: str, cfg: Any, device: torch.device) -> tuple[nn.Module, Any]:
    """(model to train, objective with its frozen helpers bound), as the recipe builds them."""
    from harmonylib.training import recipes

    rc = getattr(cfg.train, recipe)
    seed = recipes._init_seed(cfg, recipe, "net")
    if recipe == "unet":
        from harmonylib.models.scheduler import make_training_scheduler
        from harmonylib.models.unet import build_unet

        if rc.arch == "tiny":
            from harmonylib.models.tiny import build_tiny_unet, tiny_empty_prompt_embedding

            model, prompt = build_tiny_unet(seed), tiny_empty_prompt_embedding(seed).embeds.detach()
        else:
            torch.manual_seed(seed)
            with torch.device(device):  # 860M parameters: initialise on the device, not the CPU
                model = build_unet()
            prompt = torch.zeros(1, 77, model.config.cross_attention_dim)  # the recipe's null condition
        vae = recipes.load_base_vae(None, rc.vae_arch, seed, "train.unet.vae").to(device).eval()
        vae.requires_grad_(False)
        objective = functools.partial(
            objectives.diffusion_loss,
            vae=vae,
            noise_scheduler=make_training_scheduler(),
            prompt_embeds=prompt.to(device),
            direction=rc.direction,
            loss=rc.loss,
            fg_weight_max=rc.fg_weight_max,
            sample_posterior=rc.sample_posterior,
        )
    elif recipe == "harmony_vae":
        model = recipes.build_harmony_vae_model(cfg)  # set_trainable by the Table 5 variant
        objective = functools.partial(
            objectives.harmony_vae_loss,
            direction=rc.direction,
            loss=rc.loss,
            sample_posterior=rc.sample_posterior,
        )
    elif recipe == "refinement":
        from harmonylib.models.configs import TINY_REFINEMENT_CONFIG
        from harmonylib.models.refinement_unet import RefinementUNet, build_refinement_unet

        torch.manual_seed(seed)
        model = (
            RefinementUNet(**{**TINY_REFINEMENT_CONFIG, "in_channels": rc.in_channels})
            if rc.size == "tiny"
            else build_refinement_unet(rc.size, in_channels=rc.in_channels)
        )
        objective = objectives.refinement_loss
    else:
        from harmonylib.models.classifier import build_classifier
        from harmonylib.training.classifier_data import NormalizedInputClassifier

        clf = build_classifier(rc.arch, input_size=rc.resolution, generator=make_generator(seed))
        if rc.linear_probe:  # the paper's probe; a random backbone costs the same as ImageNet's
            clf.freeze_backbone()
        model = NormalizedInputClassifier(clf)
        objective = objectives.classifier_loss
    return model.to(device).train(), objective


def _batch(recipe: str, batch_size: int, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A synthetic batch in the objectives' contract: images in [-1, 1], binary masks."""
    g = make_generator(0)

    def image(n: int) -> torch.Tensor:
        return (torch.rand(n, 3, size, size, generator=g) * 2 - 1).to(device)  # (n, 3, size, size)

    if recipe == "classifier":  # pair_collate: batch_size composites, then their reals
        labels = torch.cat([torch.ones(batch_size), torch.zeros(batch_size)]).long()
        return {"images": image(2 * batch_size), "labels": labels.to(device)}
    mask = (torch.rand(batch_size, 1, size, size, generator=g) > 0.5).float().to(device)
    batch = {"composite": image(batch_size), "real": image(batch_size), "mask": mask}
    if recipe == "refinement":
        batch["stage1"] = image(batch_size)
    return batch


def _time_steps(
    model: nn.Module, objective: Any, batch: dict, loop: Any, device: torch.device, steps: int
) -> float:
    """Seconds per optimiser step, over ``steps`` steps after one warm-up step."""
    params = [p for p in model.parameters() if p.requires_grad]
    o = loop.optim
    opt = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay, eps=o.eps)
    amp = AMP_DTYPES[loop.mixed_precision]
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    times = []
    for step in range(steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss, _ = objective(model, batch, make_generator(step))
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(params, o.max_grad_norm)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / steps


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def training_step(recipe: str, device: torch.device, dry: bool, steps: int = 3) -> dict[str, Any]:
    """s/step and peak memory of one recipe at the paper batch size, or the largest that fits.

    Returns:
        ``{recipe, resolution, paper_batch_size, batch_size, mixed_precision, s_per_step,
        peak_mem_gb, trainable_params}``; ``peak_mem_gb`` is None on the CPU.
    """
    cfg = load_config("paper", overrides=DRY_OVERRIDES if dry else PAPER_OVERRIDES)
    rc = getattr(cfg.train, recipe)
    size = DRY_RESOLUTION if dry else rc.resolution
    paper_batch = rc.loop.batch_size
    batch_size = DRY_BATCH if dry else paper_batch
    model, objective = _build(recipe, cfg, device)
    while True:
        try:
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            seconds = _time_steps(
                model, objective, _batch(recipe, batch_size, size, device), rc.loop, device, steps
            )
            break
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size //= 2  # the paper batch does not fit: report the largest that does
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    result = {
        "recipe": recipe,
        "resolution": size,
        "paper_batch_size": paper_batch,
        "batch_size": batch_size,
        "mixed_precision": rc.loop.mixed_precision,
        "s_per_step": seconds,
        "peak_mem_gb": peak,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    del model, objective
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result

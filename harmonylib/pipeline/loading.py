"""Loading a :class:`~harmonylib.pipeline.DiffHarmonyPipeline`: saved folders and the authors' layout.

Two routes, both local only (harmonylib never downloads):

- :meth:`PipelineLoading.from_pretrained`: a folder written by ``save_pretrained``, checked first
  so that a missing folder, index or component is named in the error;
- :meth:`PipelineLoading.from_authors_layout`: an SD-inpainting base folder plus the authors'
  fine-tuned UNet, Harmony-VAE and refinement folders (official-implementation.md §3.1).

:func:`load_vae` picks the VAE class from the ``_class_name`` its ``config.json`` records, never
from the folder's name. :class:`PipelineLoading` is a mixin: the pipeline class inherits these
class methods, so ``DiffHarmonyPipeline.from_pretrained(...)`` is the call users make.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from harmonylib.models.harmony_vae import HarmonyVAE
from harmonylib.models.refinement_unet import RefinementUNet
from harmonylib.models.scheduler import make_scheduler
from harmonylib.models.unet import (
    EmptyPromptEmbedding,
    check_unet,
    load_empty_prompt_embeds,
    load_or_compute_empty_prompt_embeds,
)


class PipelineLoading:
    """Class methods that load a pipeline; mixed into :class:`DiffHarmonyPipeline` before ``DiffusionPipeline``."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Self:
        """Load a folder written by ``save_pretrained`` (never downloads).

        Custom components (``HarmonyVAE``, ``EmptyPromptEmbedding``, ``RefinementUNet``) are
        recorded in ``model_index.json`` by module path and re-imported from harmonylib. For the
        authors' released folders use :meth:`from_authors_layout`.

        Raises:
            FileNotFoundError: the folder, its ``model_index.json`` or a component folder is
                missing (the message names the path).
            ValueError / TypeError: a component has the wrong class (the message names it).
        """
        path = Path(pretrained_model_name_or_path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: pipeline folder does not exist (harmonylib never downloads)")
        index = path / "model_index.json"
        if not index.is_file():
            raise FileNotFoundError(
                f"{index}: missing, so {path} is not a saved pipeline. For the authors' released "
                "checkpoints use DiffHarmonyPipeline.from_authors_layout(base_dir, unet_dir=..., harmony_vae_dir=...)"
            )
        spec = json.loads(index.read_text())
        if spec.get("_class_name") != cls.__name__:
            raise ValueError(
                f"{index}: describes a {spec.get('_class_name')!r}, not a {cls.__name__}. An SD-inpainting "
                "folder (the authors' base/) loads with DiffHarmonyPipeline.from_authors_layout(base_dir, ...)"
            )
        for name, entry in spec.items():
            if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
                continue
            if not (path / name).is_dir():
                raise FileNotFoundError(
                    f"{path / name}: folder of component {name!r} ({entry[1]}) is missing"
                )
        kwargs.setdefault("local_files_only", True)
        try:
            pipe = super().from_pretrained(path, **kwargs)
        except (TypeError, ValueError, OSError) as exc:
            exc.args = (f"{path}: {exc.args[0] if exc.args else exc}", *exc.args[1:])
            raise
        return pipe

    @classmethod
    def from_authors_layout(
        cls,
        base_dir: str | os.PathLike,
        unet_dir: str | os.PathLike | None = None,
        harmony_vae_dir: str | os.PathLike | None = None,
        vae_dir: str | os.PathLike | None = None,
        refinement_dir: str | os.PathLike | None = None,
        torch_dtype: torch.dtype | None = None,
        empty_prompt_embeds: str | os.PathLike | torch.Tensor | None = None,
        cache_dir: str | os.PathLike | None = None,
        direction: str = "forward",
        dtype: torch.dtype | None = None,
    ) -> Self:
        """Assemble a pipeline from the authors' folders (official-implementation.md §3.1, peers.md §4.1).

        Args:
            base_dir: an SD-inpainting root (``model_index.json``, ``unet/``, ``vae/``,
                ``scheduler/``, ``text_encoder/``, ``tokenizer/``; ``safety_checker`` and
                ``feature_extractor`` are never loaded). ``.bin`` or ``.safetensors`` weights.
            unet_dir: the fine-tuned UNet: a model folder (``config.json`` + weights, e.g.
                ``weights-N/``) or a folder holding ``unet/``. Default: ``base_dir/unet``.
            harmony_vae_dir: a Harmony-VAE folder (``config.json`` says ``ConditionVAE`` or
                ``HarmonyVAE``) → DiffHarmony++.
            vae_dir: a plain VAE folder (e.g. ``sd-vae-ft-mse``), used when no ``harmony_vae_dir``.
                Default: ``base_dir/vae``. The class is read from ``config.json`` ``_class_name``,
                so a Harmony-VAE given here is also recognised.
            refinement_dir: a stage-2 refinement UNet folder (optional).
            torch_dtype: dtype for all weights (``dtype`` is an alias, diffusers' newer name).
            empty_prompt_embeds: a cached embedding (file or (1, 77, C) tensor). Default: looked up
                by :func:`harmonylib.models.unet.load_or_compute_empty_prompt_embeds` (cache next
                to ``base_dir`` or in the user cache, else computed once with ``transformers``).
            cache_dir: user cache for the embedding.
            direction: ``"forward"`` or ``"inverse"`` (the authors' ``-gen`` models).

        Raises:
            FileNotFoundError: a folder or ``config.json`` is missing (named).
            ValueError: a folder holds a model of an unexpected class (named).
            ImportError: no cached embedding and ``transformers`` missing (says how to fix).
        """
        base_dir = Path(base_dir)
        if not base_dir.is_dir():
            raise FileNotFoundError(f"{base_dir}: SD-inpainting base folder does not exist")
        torch_dtype = dtype if dtype is not None else torch_dtype
        load_kw: dict[str, Any] = {"local_files_only": True}
        if torch_dtype is not None:
            load_kw["dtype"] = torch_dtype

        # UNet: the fine-tuned one, else the base's
        unet_folder = _model_folder(Path(unet_dir) if unet_dir is not None else base_dir / "unet", "unet")
        _expect_class(unet_folder, ("UNet2DConditionModel",), "unet")
        unet = UNet2DConditionModel.from_pretrained(unet_folder, **load_kw)
        check_unet(unet, f"unet ({unet_folder})")

        # VAE: chosen by the class its config names, never by the folder name
        if harmony_vae_dir is not None:
            vae = load_vae(harmony_vae_dir, require_harmony=True, **load_kw)
        else:
            vae = load_vae(vae_dir if vae_dir is not None else base_dir / "vae", **load_kw)

        # Scheduler: the base's noise schedule, sampled with Euler ancestral (linspace)
        sched_file = base_dir / "scheduler" / "scheduler_config.json"
        if not sched_file.is_file():
            raise FileNotFoundError(f"{sched_file}: missing (the base folder's scheduler config)")
        scheduler = make_scheduler(json.loads(sched_file.read_text()))

        # Text condition: the cached / computed empty-prompt embedding
        if isinstance(empty_prompt_embeds, torch.Tensor):
            embeds = empty_prompt_embeds
        elif empty_prompt_embeds is not None:
            embeds = load_empty_prompt_embeds(empty_prompt_embeds)
        else:
            embeds = load_or_compute_empty_prompt_embeds(base_dir, cache_dir=cache_dir)
        embedding = EmptyPromptEmbedding.from_tensor(embeds)
        if torch_dtype is not None:
            embedding.to(torch_dtype)

        refinement = None
        if refinement_dir is not None:
            ref_folder = _model_folder(Path(refinement_dir), "refinement_unet")
            _expect_class(ref_folder, ("RefinementUNet", "UNet2DCustom"), "refinement_unet")
            refinement = RefinementUNet.from_pretrained(ref_folder, **load_kw)

        pipe = cls(
            vae=vae,
            unet=unet,
            scheduler=scheduler,
            empty_prompt_embedding=embedding,
            refinement_unet=refinement,
            direction=direction,
        )
        return pipe


# ------------------------------------------------------------------------------------------------
# Folder helpers


def _model_folder(path: Path, sub: str) -> Path:
    """``path`` if it holds ``config.json``, else ``path/sub`` if that does; else FileNotFoundError."""
    if (path / "config.json").is_file():
        return path
    if (path / sub / "config.json").is_file():
        return path / sub
    if not path.exists():
        raise FileNotFoundError(f"{path}: folder for component {sub!r} does not exist")
    raise FileNotFoundError(f"{path}: no config.json for component {sub!r} (nor in {path / sub})")


def _expect_class(folder: Path, allowed: Sequence[str], component: str) -> str:
    name = json.loads((folder / "config.json").read_text()).get("_class_name")
    if name is not None and name not in allowed:
        raise ValueError(
            f"{folder}: holds a {name!r}, but component {component!r} must be one of {list(allowed)}"
        )
    return name


_HARMONY_VAE_CLASS_NAMES = ("HarmonyVAE", "ConditionVAE")


def load_vae(
    folder: str | os.PathLike, require_harmony: bool = False, **kwargs: Any
) -> AutoencoderKL | HarmonyVAE:
    """Load a VAE folder as the class its ``config.json`` names.

    ``AutoencoderKL`` → diffusers ``AutoencoderKL``; ``ConditionVAE`` (authors) or ``HarmonyVAE``
    → :class:`HarmonyVAE`. Any other class raises ``ValueError`` naming the folder.
    """
    path = _model_folder(Path(folder), "vae")
    allowed = _HARMONY_VAE_CLASS_NAMES if require_harmony else ("AutoencoderKL", *_HARMONY_VAE_CLASS_NAMES)
    name = _expect_class(path, allowed, "harmony_vae" if require_harmony else "vae")
    if require_harmony and name is None:
        raise ValueError(f"{path}: config.json names no class; a Harmony-VAE folder says {list(allowed)}")
    kwargs.setdefault("local_files_only", True)
    if name in _HARMONY_VAE_CLASS_NAMES:
        return HarmonyVAE.from_pretrained(path, **kwargs)
    return AutoencoderKL.from_pretrained(path, **kwargs)

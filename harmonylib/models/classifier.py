"""The harmony classifier (paper §4.2, §5.2; official-implementation.md §5): P(image is a composite).

The authors use torchvision's ``resnet50()`` with ``fc`` replaced by ``Linear(2048, 2)``. Class 1 is
"unharmonious" (composite). Their checkpoint is a plain state dict ``.pth`` loaded with
``load_state_dict``. The paper trains it as a linear probe on the pooled 2048-d features of an
ImageNet-pretrained ResNet-50 (§5.2); the repo has no training code, so which layers they trained
cannot be checked (official-implementation.md §5).

torchvision does not import beside our torch, so ``ResNet`` (:mod:`harmonylib.models.resnet`,
importable from here too) re-implements torchvision's ResNet (v1.5: the stride sits on the 3×3 conv
of a bottleneck) in plain torch, with the same module names. Its ``state_dict`` is key for key and shape for shape torchvision's, so both the authors'
``.pth`` and torchvision's ImageNet ``resnet50`` weights load. ``HarmonyClassifier`` is that
ResNet plus the authors' input transform; its normalisation constants are non-persistent buffers,
so its ``state_dict`` is still exactly the torchvision layout (320 tensors for ResNet-50).

The ``mini`` classifier is a documented substitution for CPU runs at 64 px: a narrow BasicBlock
ResNet trained from scratch, since no ImageNet weights are available offline.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from harmonylib.models.resnet import (  # noqa: F401  (re-exported: the backbone's names, from their old home)
    RESNET50_LAYERS,
    RESNET_WIDTHS,
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet50,
)

# torchvision's ImageNet constants (official-implementation.md §5: ``Normalize(mean, std)``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Class index of "composite / unharmonious" (authors: ``softmax(logits)[:, 1]``).
COMPOSITE_CLASS = 1

# Architectures of ``build_classifier``. "resnet50" is the authors' network at the paper's 256 px
# input; "mini" is our CPU substitute at 64 px (309,714 parameters, BasicBlocks, widths 16..128).
CLASSIFIER_CONFIGS: dict[str, dict[str, Any]] = {
    "resnet50": {
        "block": "bottleneck",
        "layers": RESNET50_LAYERS,
        "widths": RESNET_WIDTHS,
        "stem_width": 64,
        "input_size": 256,
    },
    "mini": {
        "block": "basic",
        "layers": (1, 1, 1, 1),
        "widths": (16, 32, 64, 128),
        "stem_width": 16,
        "input_size": 64,
    },
}
CLASSIFIER_ARCHS = tuple(CLASSIFIER_CONFIGS)


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys or shapes do not fit the model; the message names file and keys."""


# --------------------------------------------------------------------------------------------------
# Harmony classifier: ResNet + the authors' input transform
# --------------------------------------------------------------------------------------------------


def _load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"classifier checkpoint not found: {os.fspath(path)}") from None
    except pickle.UnpicklingError as e:  # e.g. a whole pickled model instead of a state dict
        raise pickle.UnpicklingError(
            f"{os.fspath(path)}: refused by torch.load(weights_only=True); save a state dict: {e}"
        ) from e
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatchError(
            f"{os.fspath(path)}: expected a plain state dict (name -> tensor), got {type(obj).__name__}"
        )
    return dict(obj)


def _fmt_keys(keys: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


def _check_fits(
    path: str | os.PathLike, got: Mapping[str, torch.Tensor], expected: Mapping[str, Any]
) -> None:
    """Raise ``CheckpointMismatchError`` naming the file and every missing/unexpected/reshaped key."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    reshaped = [
        f"{k} {tuple(got[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in got and tuple(got[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or reshaped):
        return
    lines = [f"checkpoint {os.fspath(path)} does not fit the classifier:"]
    if missing:
        lines.append(f"  missing keys ({len(missing)}): {_fmt_keys(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys ({len(unexpected)}): {_fmt_keys(unexpected)}")
    if reshaped:
        lines.append(f"  shape mismatches ({len(reshaped)}): {_fmt_keys(reshaped)}")
    prefixes = {k.split(".", 1)[0] for k in got}
    if len(prefixes) == 1 and (p := next(iter(prefixes))) in {"module", "model", "net", "backbone"}:
        lines.append(f"  hint: every key starts with '{p}.'; strip that prefix before loading")
    raise CheckpointMismatchError("\n".join(lines))


class HarmonyClassifier(ResNet):
    """The harmony classifier: the authors' input transform, then a torchvision-layout ResNet.

    ``forward`` takes harmonylib images: float (B, 3, H, W) in ``value_range`` ([-1, 1] by
    default, as everywhere in harmonylib; pass ``(0, 1)`` for ``ToTensor`` output), any H, W.
    ``preprocess`` squashes them to ``input_size``² and normalises with ImageNet mean/std, as the
    authors' ``Resize((256, 256)) → ToTensor → Normalize`` does (official-implementation.md §5).
    Our resize is bilinear with antialias on float tensors; theirs runs on PIL uint8 images, so
    pixel values differ by rounding.

    ``state_dict()`` is exactly torchvision's layout (mean/std are non-persistent buffers), so
    ``torch.save(clf.state_dict(), "model_state_dict.pth")`` is the authors' checkpoint format.

    Args:
        input_size: side of the square network input (256 in the paper profile, 64 for mini).
        value_range: (low, high) of the input images; mapped to [0, 1] before normalisation.
        block, layers, widths, stem_width, num_classes, zero_init_residual, generator: see ``ResNet``.
    """

    def __init__(
        self,
        block: str = "bottleneck",
        layers: Sequence[int] = RESNET50_LAYERS,
        widths: Sequence[int] = RESNET_WIDTHS,
        stem_width: int = 64,
        num_classes: int = 2,
        input_size: int = 256,
        value_range: tuple[float, float] = (-1.0, 1.0),
        zero_init_residual: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__(block, layers, widths, stem_width, num_classes, zero_init_residual, generator)
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
        self.input_size = int(input_size)
        self.value_range = (lo, hi)
        self.backbone_frozen = False
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ---- input ------------------------------------------------------------------------------

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Map images in ``value_range`` to the network input.

        Args:
            images: float (B, 3, H, W) in ``value_range``.

        Returns:
            (B, 3, input_size, input_size), ImageNet-normalised.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be a float tensor in {self.value_range}, got {images.dtype}")
        lo, hi = self.value_range
        x = (images - lo) / (hi - lo)  # (B, 3, H, W) in [0, 1], as ToTensor gives
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            # Squash (no aspect-preserving crop), as the authors' Resize((256, 256)).
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )  # (B, 3, S, S)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of images in ``value_range``; class 1 is "composite"."""
        return self.forward_normalized(self.preprocess(images))

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of already normalised input (the authors' transform applied outside)."""
        return ResNet.forward(self, x)

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (B, feature_dim) of images in ``value_range`` (linear probe)."""
        return self.forward_features(self.preprocess(images))

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """P(composite) = softmax(logits)[:, 1], shape (B,). Call under ``no_grad`` and ``eval()``."""
        return torch.softmax(self(images), dim=1)[:, COMPOSITE_CLASS]

    # ---- weights ----------------------------------------------------------------------------

    def load_authors_checkpoint(self, path: str | os.PathLike) -> HarmonyClassifier:
        """Load the authors' ``model_state_dict.pth`` (a plain torchvision-layout state dict).

        Loaded with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``.

        Raises:
            CheckpointMismatchError: naming the file and the missing, unexpected or reshaped keys.

        Returns:
            self.
        """
        state = _load_state_dict_file(path)
        _check_fits(path, state, self.state_dict())
        self.load_state_dict(state, strict=True)
        return self

    def load_imagenet_backbone(self, path: str | os.PathLike) -> HarmonyClassifier:
        """Load a local torchvision ImageNet ``resnet*.pth`` into everything except ``fc``.

        For the paper's linear probe (§5.2): the 1000-way ``fc`` in the file is ignored, and ours
        keeps its current (random) init. Every other key must match exactly.

        Raises:
            CheckpointMismatchError: naming the file and the keys that do not fit.

        Returns:
            self.
        """
        state = {k: v for k, v in _load_state_dict_file(path).items() if not k.startswith("fc.")}
        expected = {k: v for k, v in self.state_dict().items() if not k.startswith("fc.")}
        _check_fits(path, state, expected)
        result = self.load_state_dict(state, strict=False)
        assert not result.unexpected_keys and set(result.missing_keys) == {"fc.weight", "fc.bias"}
        return self

    def freeze_backbone(self, frozen: bool = True) -> HarmonyClassifier:
        """Linear probe (§5.2): only ``fc`` trains; the backbone's BN layers stay in eval mode.

        Frozen BNs keep their running statistics even under ``train()``, so the probed features
        are the pretrained ones. ``freeze_backbone(False)`` undoes it.

        Returns:
            self.
        """
        self.backbone_frozen = bool(frozen)
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith("fc.") or not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> HarmonyClassifier:
        super().train(mode)
        if self.backbone_frozen:
            for name, m in self.named_children():
                if name != "fc":
                    m.eval()
        return self


def build_classifier(arch: str = "resnet50", **overrides: Any) -> HarmonyClassifier:
    """Build a harmony classifier by architecture name.

    Args:
        arch: "resnet50" (authors' network, 256 px) or "mini" (narrow BasicBlock ResNet, 64 px,
            trained from scratch: our CPU substitute, since no ImageNet weights exist offline).
        **overrides: any ``HarmonyClassifier`` argument, e.g. ``input_size``, ``generator``.

    Returns:
        A randomly initialised ``HarmonyClassifier``.
    """
    if arch not in CLASSIFIER_CONFIGS:
        raise ValueError(f"unknown classifier arch {arch!r}; expected one of {list(CLASSIFIER_ARCHS)}")
    return HarmonyClassifier(**{**CLASSIFIER_CONFIGS[arch], **overrides})

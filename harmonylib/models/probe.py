"""The harmony classifier as a linear probe on our own pretrained backbone (paper §5.2's recipe).

The paper's classifier is a linear probe: a linear head on the pooled features of a frozen,
pretrained backbone (ImageNet ResNet-50). No ImageNet weights exist offline, so the mini profile
probes a backbone pretrained by our own recipe on photographs: the encoder of the base VAE
(``harmonylib.training.pretrain`` stage a).

Features (:class:`VAEEncoderFeatures`): the output of every down block of the VAE encoder and of
its mid block, each pooled over space to its per-channel mean and standard deviation (first and
second moments: a composite's colour mismatch between foreground and background shows up as
spread, which a mean alone averages away). For SD's VAE that is 2 * (128+256+512+512+512) = 3,840
numbers; for the mini VAE 2 * (32+64+64+64+64) = 576.

:class:`LinearProbeClassifier` has the same interface as ``HarmonyClassifier`` (``forward`` on
images in ``value_range``, ``forward_normalized`` on ImageNet-normalised input as the training
objective passes it, ``extract_features``, ``predict_proba``, ``freeze_backbone``), so the
classifier recipe, its evaluation and the candidate filter use either. Class 1 = composite.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harmonylib.models.classifier import COMPOSITE_CLASS, IMAGENET_MEAN, IMAGENET_STD

PROBE_BACKBONES = ("vae_encoder",)


class VAEEncoderFeatures(nn.Module):
    """Global-pooled multi-level features of an ``AutoencoderKL`` encoder, (B, feature_dim).

    Args:
        vae: the ``AutoencoderKL`` whose ``encoder`` is kept (the decoder is dropped).
    """

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.encoder = vae.encoder
        widths = [b.resnets[-1].out_channels for b in self.encoder.down_blocks]
        widths.append(self.encoder.mid_block.resnets[-1].out_channels)
        self.feature_dim = 2 * sum(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] -> (B, feature_dim) = [mean, std] of each level."""
        enc = self.encoder
        h = enc.conv_in(x)  # (B, C0, H, W)
        levels = []
        for block in enc.down_blocks:
            h = block(h)  # (B, C_i, H / 2^i, W / 2^i)
            levels.append(h)
        levels.append(enc.mid_block(h))  # (B, C_mid, h, w)
        pooled = []
        for f in levels:
            f = f.float().flatten(2)  # (B, C, hw)
            pooled += [f.mean(2), f.std(2, unbiased=False)]  # (B, C) each
        return torch.cat(pooled, dim=1)  # (B, feature_dim)


class LinearProbeClassifier(nn.Module):
    """A linear head (feature standardisation + ``Linear(feature_dim, 2)``) on a pretrained backbone.

    The standardisation is a ``BatchNorm1d`` without affine parameters (as MAE's linear probe):
    features of a VAE encoder differ in scale by orders of magnitude between levels, and a
    per-feature standardisation is itself linear at evaluation, so the classifier stays linear in
    the features.

    Args:
        backbone: maps images in [-1, 1] to (B, backbone.feature_dim).
        input_size: side of the square input (images are squashed to it, bilinear + antialias).
        value_range: (low, high) of the input images of ``forward``.
        num_classes: 2 (class 1 = composite).
        generator: draws the head's initial weights (PyTorch's Linear default).
    """

    def __init__(
        self,
        backbone: nn.Module,
        input_size: int = 64,
        value_range: tuple[float, float] = (-1.0, 1.0),
        num_classes: int = 2,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = int(backbone.feature_dim)
        self.norm = nn.BatchNorm1d(self.feature_dim, affine=False)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
        self.input_size, self.value_range = int(input_size), (lo, hi)
        self.backbone_frozen = False
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.fc.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(self.feature_dim)
            nn.init.uniform_(self.fc.bias, -bound, bound, generator=generator)

    @classmethod
    def from_vae_folder(cls, folder: str | os.PathLike, **kwargs) -> LinearProbeClassifier:
        """A probe on the encoder of the ``AutoencoderKL`` in ``folder`` (or its ``vae/`` subfolder).

        Raises:
            FileNotFoundError: naming the folder, if it holds no ``config.json``.
        """
        from diffusers import AutoencoderKL

        p = Path(folder)
        p = p / "vae" if (p / "vae" / "config.json").is_file() else p
        if not (p / "config.json").is_file():
            raise FileNotFoundError(
                f"{p}: no AutoencoderKL folder (config.json) for the vae_encoder backbone"
            )
        return cls(VAEEncoderFeatures(AutoencoderKL.from_pretrained(p)), **kwargs)

    # ---- input ------------------------------------------------------------------------------

    def _to_backbone_range(self, x01: torch.Tensor) -> torch.Tensor:
        """[0, 1] images at any size -> [-1, 1] at ``input_size``², (B, 3, S, S)."""
        if tuple(x01.shape[-2:]) != (self.input_size, self.input_size):
            x01 = F.interpolate(
                x01,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return x01 * 2.0 - 1.0

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, feature_dim) of images in ``value_range``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        lo, hi = self.value_range
        return self.backbone(self._to_backbone_range((images - lo) / (hi - lo)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of images in ``value_range``; class 1 is "composite"."""
        return self.fc(self.norm(self.extract_features(images)))

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ImageNet-normalised input (the training objective's contract)."""
        x01 = x * self.std.to(x.dtype) + self.mean.to(x.dtype)  # (B, 3, H, W) back in [0, 1]
        return self.fc(self.norm(self.backbone(self._to_backbone_range(x01))))

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """P(composite), shape (B,). Call under ``no_grad`` and ``eval()``."""
        return torch.softmax(self(images), dim=1)[:, COMPOSITE_CLASS]

    # ---- training mode ------------------------------------------------------------------------

    def freeze_backbone(self, frozen: bool = True) -> LinearProbeClassifier:
        """Linear probe: only the head (``norm``, ``fc``) trains; the backbone stays in eval mode."""
        self.backbone_frozen = bool(frozen)
        self.backbone.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> LinearProbeClassifier:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()  # its GroupNorms hold no statistics, but dropout etc. stay off
        return self


def build_probe_classifier(
    backbone: str, weights: str | os.PathLike, *, input_size: int, generator: torch.Generator | None = None
) -> LinearProbeClassifier:
    """A :class:`LinearProbeClassifier` on ``backbone`` (one of :data:`PROBE_BACKBONES`) from ``weights``."""
    if backbone not in PROBE_BACKBONES:
        raise ValueError(f"unknown probe backbone {backbone!r}; allowed: {list(PROBE_BACKBONES)}")
    return LinearProbeClassifier.from_vae_folder(weights, input_size=input_size, generator=generator)

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

Pooling (``train.classifier.pooling``). ``global`` pools each level over the whole image, as above.
``mask`` pools each level separately over the foreground and the background (the composite's mask,
area-resized to the level's grid) and keeps the per-channel differences: fg mean - bg mean and
log fg std - log bg std (the same feature_dim). A composite's defect is a colour/light mismatch
between the two regions, which these differences carry linearly; a global edit of the whole image
moves both regions alike and largely cancels. Measured on mini (LEVERS.md §5): global pooling left
the probe at chance. A mask-pooled probe needs the mask wherever it scores an image
(:attr:`LinearProbeClassifier.requires_mask`); it raises without one.

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
POOLINGS = ("global", "mask")
# A region holding less than this fraction of a level's grid (in mask area) gets zero difference
# features: an empty foreground or background has no statistics to compare.
_MIN_REGION = 1e-3
_VAR_EPS = 1e-6  # log std = 0.5 * log(var + eps): finite on flat regions


def _region_moments(f: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted mean and log std of ``f`` (B, C, n) under weights ``w`` (B, 1, n) in [0, 1].

    Returns (mean (B, C), log std (B, C), the region's area fraction (B, 1)).
    """
    area = w.sum(2)  # (B, 1)
    denom = area.clamp_min(1e-8)
    mean = (f * w).sum(2) / denom  # (B, C)
    var = ((f - mean[..., None]) ** 2 * w).sum(2) / denom  # (B, C)
    return mean, 0.5 * torch.log(var + _VAR_EPS), area / w.shape[2]


class VAEEncoderFeatures(nn.Module):
    """Pooled multi-level features of an ``AutoencoderKL`` encoder, (B, feature_dim).

    Args:
        vae: the ``AutoencoderKL`` whose ``encoder`` is kept (the decoder is dropped).
        pooling: ``global`` ([mean, std] of each level over the whole image) or ``mask``
            ([fg mean - bg mean, log fg std - log bg std] of each level; needs the mask).
    """

    def __init__(self, vae: nn.Module, pooling: str = "global"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown probe pooling {pooling!r}; allowed: {list(POOLINGS)}")
        self.encoder = vae.encoder
        self.pooling = pooling
        widths = [b.resnets[-1].out_channels for b in self.encoder.down_blocks]
        widths.append(self.encoder.mid_block.resnets[-1].out_channels)
        self.feature_dim = 2 * sum(widths)

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every down block and of the mid block, each (B, C_i, h_i, w_i), float."""
        enc = self.encoder
        h = enc.conv_in(x)  # (B, C0, H, W)
        out = []
        for block in enc.down_blocks:
            h = block(h)  # (B, C_i, H / 2^i, W / 2^i)
            out.append(h.float())
        out.append(enc.mid_block(h).float())  # (B, C_mid, h, w)
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] (and, for ``mask`` pooling, the foreground mask
        (B, 1, H', W') in [0, 1] at any size) -> (B, feature_dim)."""
        if self.pooling == "mask" and mask is None:
            raise ValueError(
                "this probe pools features over the foreground mask (train.classifier.pooling: mask) "
                "and was called without one: pass mask=(B, 1, H, W)"
            )
        pooled = []
        for f in self.levels(x):
            b, c, hh, ww = f.shape
            if self.pooling == "global":
                f = f.flatten(2)  # (B, C, hw)
                pooled += [f.mean(2), f.std(2, unbiased=False)]  # (B, C) each
                continue
            # "area" = the mask's coverage of each cell of this level's grid (soft at edges)
            w_fg = F.interpolate(mask.float(), size=(hh, ww), mode="area").flatten(2)  # (B, 1, hw)
            f = f.flatten(2)  # (B, C, hw)
            m_fg, s_fg, a_fg = _region_moments(f, w_fg)
            m_bg, s_bg, a_bg = _region_moments(f, 1.0 - w_fg)
            valid = ((a_fg > _MIN_REGION) & (a_bg > _MIN_REGION)).float()  # (B, 1)
            pooled += [(m_fg - m_bg) * valid, (s_fg - s_bg) * valid]  # (B, C) each
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

    With a ``mask``-pooling backbone every entry point takes ``mask`` (B, 1, H, W) in [0, 1], the
    composite's foreground (a real image is scored with its composite's mask), and raises without it.
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

    @property
    def requires_mask(self) -> bool:
        """Whether every call needs the foreground mask (``mask`` pooling)."""
        return getattr(self.backbone, "pooling", "global") == "mask"

    @classmethod
    def from_vae_folder(
        cls, folder: str | os.PathLike, pooling: str = "global", **kwargs
    ) -> LinearProbeClassifier:
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
        return cls(VAEEncoderFeatures(AutoencoderKL.from_pretrained(p), pooling=pooling), **kwargs)

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

    def _features01(self, x01: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """[0, 1] images (B, 3, H, W) (+ mask (B, 1, H', W')) -> backbone features (B, feature_dim)."""
        if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != x01.shape[0]):
            raise ValueError(f"mask must be (B, 1, H, W) with B = {x01.shape[0]}, got {tuple(mask.shape)}")
        x = self._to_backbone_range(x01)
        return self.backbone(x, mask) if self.requires_mask else self.backbone(x)

    def extract_features(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Backbone features (B, feature_dim) of images in ``value_range``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        lo, hi = self.value_range
        return self._features01((images - lo) / (hi - lo), mask)

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, num_classes) of images in ``value_range``; class 1 is "composite"."""
        return self.fc(self.norm(self.extract_features(images, mask)))

    def forward_normalized(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ImageNet-normalised input (the training objective's contract)."""
        x01 = x * self.std.to(x.dtype) + self.mean.to(x.dtype)  # (B, 3, H, W) back in [0, 1]
        return self.fc(self.norm(self._features01(x01, mask)))

    def predict_proba(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """P(composite), shape (B,). Call under ``no_grad`` and ``eval()``."""
        return torch.softmax(self(images, mask), dim=1)[:, COMPOSITE_CLASS]

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
    backbone: str,
    weights: str | os.PathLike,
    *,
    input_size: int,
    pooling: str = "global",
    generator: torch.Generator | None = None,
) -> LinearProbeClassifier:
    """A :class:`LinearProbeClassifier` on ``backbone`` (one of :data:`PROBE_BACKBONES`) from ``weights``."""
    if backbone not in PROBE_BACKBONES:
        raise ValueError(f"unknown probe backbone {backbone!r}; allowed: {list(PROBE_BACKBONES)}")
    return LinearProbeClassifier.from_vae_folder(
        weights, pooling=pooling, input_size=input_size, generator=generator
    )


def needs_mask(classifier: nn.Module) -> bool:
    """Whether ``classifier`` (a probe, a ``HarmonyClassifier``, or a wrapper exposing
    ``requires_mask``) must be given the foreground mask when it scores images."""
    return bool(getattr(classifier, "requires_mask", False))

"""torchvision's ResNet (v1.5) in plain torch, module for module: the harmony classifier's backbone.

torchvision does not import beside our torch, so this re-implements its ResNet: the stride sits on
the 3×3 conv of a bottleneck, and the module names are torchvision's (``conv1 bn1 relu maxpool
layer1..4 avgpool fc``). A ``state_dict`` is key for key and shape for shape torchvision's, so
torchvision's ImageNet ``resnet50`` weights and the authors' classifier ``.pth`` load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

RESNET50_LAYERS = (3, 4, 6, 3)
RESNET_WIDTHS = (64, 128, 256, 512)


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision ``BasicBlock``: 3×3 (stride) → 3×3, identity or ``downsample`` shortcut."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(in_ch, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision ``Bottleneck`` (ResNet v1.5): 1×1 → 3×3 (stride) → 1×1 (×4), plus shortcut."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(in_ch, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)  # v1.5: stride here, not on conv1
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """torchvision's ResNet in plain torch, same module names: ``conv1 bn1 relu maxpool layer1..4
    avgpool fc``. Input: ImageNet-normalised images (B, 3, H, W); output: logits (B, num_classes).

    Args:
        block: "bottleneck" (ResNet-50/101/152) or "basic" (ResNet-18/34).
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        widths: inner width of each stage (torchvision's ``planes``); a stage outputs
            ``width * expansion`` channels.
        stem_width: channels of the 7×7 stem conv (64 in torchvision).
        num_classes: size of ``fc``; 2 for the harmony classifier.
        zero_init_residual: zero the last BN gamma of each block (torchvision's option, off).
        generator: if given, all weights are drawn from it instead of the global RNG.
    """

    def __init__(
        self,
        block: str = "bottleneck",
        layers: Sequence[int] = RESNET50_LAYERS,
        widths: Sequence[int] = RESNET_WIDTHS,
        stem_width: int = 64,
        num_classes: int = 2,
        zero_init_residual: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"unknown block {block!r}; expected one of {list(_BLOCKS)}")
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"layers and widths need 4 stages, got {list(layers)} and {list(widths)}")
        block_cls = _BLOCKS[block]
        self.block = block
        self.conv1 = nn.Conv2d(3, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = stem_width
        for i, (n, width) in enumerate(zip(layers, widths, strict=True)):
            stage, in_ch = self._make_stage(block_cls, in_ch, width, n, stride=1 if i == 0 else 2)
            self.add_module(f"layer{i + 1}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim = in_ch
        self.fc = nn.Linear(in_ch, num_classes)
        self.init_weights(generator, zero_init_residual)

    @staticmethod
    def _make_stage(block_cls, in_ch: int, width: int, n: int, stride: int) -> tuple[nn.Sequential, int]:
        out_ch = width * block_cls.expansion
        downsample = None
        if stride != 1 or in_ch != out_ch:  # torchvision: 1×1 conv + BN on the first block only
            downsample = nn.Sequential(_conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))
        blocks = [block_cls(in_ch, width, stride, downsample)]
        blocks += [block_cls(out_ch, width) for _ in range(n - 1)]
        return nn.Sequential(*blocks), out_ch

    @torch.no_grad()
    def init_weights(
        self, generator: torch.Generator | None = None, zero_init_residual: bool = False
    ) -> None:
        """torchvision's init: kaiming-normal (fan_out, relu) convs, BN γ=1 β=0, default ``fc``.

        With ``generator=None`` the global RNG is used in torchvision's order (modules built in
        the same order, then this loop), so ``torch.manual_seed`` makes it deterministic. With a
        generator, ``fc`` is also redrawn from it with PyTorch's Linear default (kaiming-uniform
        a=√5, bias U(±1/√fan_in)).
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if generator is not None:
            nn.init.kaiming_uniform_(self.fc.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(self.fc.in_features)
            nn.init.uniform_(self.fc.bias, -bound, bound, generator=generator)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, feature_dim) of normalised images: 2048-d for ResNet-50 (§5.2)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, C, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, feature_dim, H/32, W/32)
        return torch.flatten(self.avgpool(x), 1)  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))  # (B, num_classes)


def resnet50(num_classes: int = 2, generator: torch.Generator | None = None) -> ResNet:
    """torchvision's ``resnet50()`` with ``fc = Linear(2048, num_classes)``, randomly initialised."""
    return ResNet("bottleneck", RESNET50_LAYERS, RESNET_WIDTHS, 64, num_classes, generator=generator)

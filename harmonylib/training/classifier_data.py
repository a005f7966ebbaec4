"""Balanced composite/real batches for the harmony classifier, and its test metrics.

Each dataset item is one composite with its own real image, so a batch of B items holds B
composites (label 1, the authors' "unharmonious" class) and B reals (label 0): exactly balanced,
and each real sits beside a recoloured version of itself, so content alone cannot separate the
classes. A real shared by several composites (iHarmony4's ``x_1_1 ... x_1_5``) therefore appears
once per composite, in training and in the test metrics alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from harmonylib.training.objectives import imagenet_normalize

COMPOSITE_LABEL = 1
REAL_LABEL = 0


def pair_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate HarmonyDataset items into ``images`` (2B, 3, H, W) = [composites, reals] and ``labels`` (2B,)."""
    batch = default_collate(items)
    bsz = batch["composite"].shape[0]
    images = torch.cat([batch["composite"], batch["real"]], dim=0)  # (2B, 3, H, W)
    labels = torch.cat([torch.full((bsz,), COMPOSITE_LABEL), torch.full((bsz,), REAL_LABEL)]).long()  # (2B,)
    return {"images": images, "labels": labels, "index": batch["index"]}


# Rec. 601 luma weights (as torchvision's ``rgb_to_grayscale``), for contrast and saturation.
_LUMA = (0.299, 0.587, 0.114)


def augment_pairs(
    images: torch.Tensor,
    generator: torch.Generator | None,
    *,
    hflip: bool = False,
    crop_scale: float = 1.0,
    color: float = 0.0,
) -> torch.Tensor:
    """Random photometric/geometric augmentation of a ``pair_collate`` batch, shared within each pair.

    ``images`` is (2B, 3, H, W) in [-1, 1] = [composites, reals]; composite ``i`` and real ``i``
    (rows ``i`` and ``B + i``) get the *same* transform, so the pair still differs only in its
    recoloured foreground and the transform itself carries no label. All randomness is drawn from
    ``generator`` (CPU), 8 numbers per pair in a fixed order, so a resumed run repeats it.

    Args:
        hflip: mirror left-right with probability 1/2.
        crop_scale: random resized crop: area fraction ~ U(crop_scale, 1), aspect ratio
            log-uniform in [3/4, 4/3], resized back to (H, W) bilinearly; 1.0 turns it off.
        color: global brightness, contrast and saturation factors each ~ U(1 - color, 1 + color),
            applied to the whole image (foreground and background alike, so a real stays
            harmonious and a composite keeps its foreground/background discrepancy); 0 turns it off.

    Returns:
        The augmented batch, same shape, dtype and device.
    """
    if images.shape[0] % 2:
        raise ValueError(f"expected a [composites, reals] batch of even size, got {images.shape[0]}")
    if not 0.0 < crop_scale <= 1.0:
        raise ValueError(f"crop_scale must lie in (0, 1], got {crop_scale}")
    if not 0.0 <= color < 1.0:
        raise ValueError(f"color must lie in [0, 1), got {color}")
    if not hflip and crop_scale == 1.0 and color == 0.0:
        return images
    n_pairs = images.shape[0] // 2
    _, _, h, w = images.shape
    u = torch.rand((n_pairs, 8), generator=generator, dtype=torch.float64).tolist()
    out = []
    for pair in (images[:n_pairs], images[n_pairs:]):
        rows = []
        for i in range(n_pairs):
            x = pair[i : i + 1]  # (1, 3, H, W)
            r_flip, r_area, r_aspect, r_x, r_y, r_b, r_c, r_s = u[i]
            if crop_scale < 1.0:
                area = crop_scale + (1.0 - crop_scale) * r_area
                aspect = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * r_aspect)
                cw = min(w, max(1, round(math.sqrt(area * aspect) * w)))
                ch = min(h, max(1, round(math.sqrt(area / aspect) * h)))
                x0 = min(w - cw, int(r_x * (w - cw + 1)))
                y0 = min(h - ch, int(r_y * (h - ch + 1)))
                x = x[..., y0 : y0 + ch, x0 : x0 + cw]
                if (ch, cw) != (h, w):
                    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
            if hflip and r_flip < 0.5:
                x = torch.flip(x, dims=(3,))
            if color > 0.0:
                x = _jitter_color(x, (r_b, r_c, r_s), color)
            rows.append(x)
        out.append(torch.cat(rows, dim=0))
    return torch.cat(out, dim=0)


def _jitter_color(x: torch.Tensor, r: tuple[float, float, float], color: float) -> torch.Tensor:
    """Global brightness, contrast, saturation (in that order) of (1, 3, H, W) in [-1, 1].

    ``r`` holds three U(0, 1) draws, mapped to factors U(1 - color, 1 + color).
    """
    r_b, r_c, r_s = r
    luma = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (x + 1.0) / 2.0 * (1.0 - color + 2.0 * color * r_b)  # brightness
    gray = (y * luma).sum(dim=1, keepdim=True)  # (1, 1, H, W)
    y = (y - gray.mean()) * (1.0 - color + 2.0 * color * r_c) + gray.mean()  # contrast
    gray = (y * luma).sum(dim=1, keepdim=True)
    y = (y - gray) * (1.0 - color + 2.0 * color * r_s) + gray  # saturation
    return y.clamp(0.0, 1.0) * 2.0 - 1.0


class NormalizedInputClassifier(nn.Module):
    """Adapts a ``HarmonyClassifier`` (which normalises its own [-1, 1] input) to the objective's
    contract: ImageNet-normalised input -> logits. ``classifier`` is what gets saved."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.forward_normalized(x)  # (B, 2)


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, dataset: Dataset, batch_size: int = 32, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """Accuracy and ROC-AUC of P(composite) on composite/real pairs.

    Args:
        model: maps ImageNet-normalised (B, 3, H, W) to (B, 2) logits (class 1 = composite).
        dataset: a ``HarmonyDataset`` (test split); each item gives a composite and its real.

    Returns:
        ``{"accuracy", "roc_auc", "n_images"}``; accuracy at the argmax (P > 0.5).
    """
    from sklearn.metrics import roc_auc_score

    was_training = model.training
    model.eval().to(device)
    probs, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=pair_collate):
        logits = model(imagenet_normalize(batch["images"].to(device)))  # (2B, 2)
        probs.append(torch.softmax(logits.float(), dim=1)[:, COMPOSITE_LABEL].cpu())
        labels.append(batch["labels"])
    model.train(was_training)
    p = torch.cat(probs).numpy()
    y = torch.cat(labels).numpy()
    acc = float(np.mean((p > 0.5) == (y == COMPOSITE_LABEL)))
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {"accuracy": acc, "roc_auc": auc, "n_images": int(len(y))}

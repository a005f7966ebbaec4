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
    """Collate HarmonyDataset items into ``images`` (2B, 3, H, W) = [composites, reals], ``labels``
    (2B,) and, when the items have masks, ``masks`` (2B, 1, H, W): a real is scored with its
    composite's mask (the same region, which in the real is harmonious)."""
    batch = default_collate(items)
    bsz = batch["composite"].shape[0]
    images = torch.cat([batch["composite"], batch["real"]], dim=0)  # (2B, 3, H, W)
    labels = torch.cat([torch.full((bsz,), COMPOSITE_LABEL), torch.full((bsz,), REAL_LABEL)]).long()  # (2B,)
    out = {"images": images, "labels": labels, "index": batch["index"]}
    if "mask" in batch:
        out["masks"] = torch.cat([batch["mask"], batch["mask"]], dim=0)  # (2B, 1, H, W)
    return out


# Rec. 601 luma weights (as torchvision's ``rgb_to_grayscale``), for contrast and saturation.
_LUMA = (0.299, 0.587, 0.114)


def augment_pairs(
    images: torch.Tensor,
    generator: torch.Generator | None,
    *,
    hflip: bool = False,
    crop_scale: float = 1.0,
    color: float = 0.0,
    masks: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
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
        masks: optional (2B, 1, H, W) foreground masks of the rows; each gets its image's crop and
            flip (bilinear, so crop edges stay soft), never the colour jitter.

    Returns:
        The augmented batch, same shape, dtype and device; with ``masks``, ``(images, masks)``.
    """
    if images.shape[0] % 2:
        raise ValueError(f"expected a [composites, reals] batch of even size, got {images.shape[0]}")
    if not 0.0 < crop_scale <= 1.0:
        raise ValueError(f"crop_scale must lie in (0, 1], got {crop_scale}")
    if not 0.0 <= color < 1.0:
        raise ValueError(f"color must lie in [0, 1), got {color}")
    if masks is not None and (masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]):
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    if not hflip and crop_scale == 1.0 and color == 0.0:
        return images if masks is None else (images, masks)
    n_pairs = images.shape[0] // 2
    _, _, h, w = images.shape
    u = torch.rand((n_pairs, 8), generator=generator, dtype=torch.float64).tolist()

    def geometric(x: torch.Tensor, r: list[float]) -> torch.Tensor:
        """Crop and flip of one row (1, C, H, W) with the pair's draws ``r``."""
        r_flip, r_area, r_aspect, r_x, r_y = r[:5]
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
        return x

    out, out_masks = [], []
    for half in (slice(0, n_pairs), slice(n_pairs, 2 * n_pairs)):
        pair = images[half]
        rows = []
        for i in range(n_pairs):
            x = geometric(pair[i : i + 1], u[i])  # (1, 3, H, W)
            if color > 0.0:
                x = _jitter_color(x, tuple(u[i][5:8]), color)
            rows.append(x)
        out.append(torch.cat(rows, dim=0))
        if masks is not None:
            out_masks.append(torch.cat([geometric(m[None], u[i]) for i, m in enumerate(masks[half])]))
    images_out = torch.cat(out, dim=0)
    return images_out if masks is None else (images_out, torch.cat(out_masks, dim=0))


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
    contract: ImageNet-normalised input (and, for a mask-pooled probe, masks) -> logits.
    ``classifier`` is what gets saved."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    @property
    def requires_mask(self) -> bool:
        return bool(getattr(self.classifier, "requires_mask", False))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:  # a mask-pooled probe raises here, naming the option
            return self.classifier.forward_normalized(x)  # (B, 2)
        return self.classifier.forward_normalized(x, mask)  # (B, 2)


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, dataset: Dataset, batch_size: int = 32, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """Accuracy and ROC-AUC of P(composite) on composite/real pairs.

    Args:
        model: maps ImageNet-normalised (B, 3, H, W) to (B, 2) logits (class 1 = composite); a
            mask-pooled one (``requires_mask``) also gets each pair's mask.
        dataset: a ``HarmonyDataset`` (any split); each item gives a composite, its real and mask.

    Returns:
        ``{"accuracy", "roc_auc", "n_images"}``; accuracy at the argmax (P > 0.5).
    """
    from sklearn.metrics import roc_auc_score

    was_training = model.training
    model.eval().to(device)
    probs, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=pair_collate):
        x = imagenet_normalize(batch["images"].to(device))  # (2B, 3, H, W)
        if getattr(model, "requires_mask", False):
            logits = model(x, batch["masks"].to(device))  # (2B, 2)
        else:
            logits = model(x)  # (2B, 2)
        probs.append(torch.softmax(logits.float(), dim=1)[:, COMPOSITE_LABEL].cpu())
        labels.append(batch["labels"])
    model.train(was_training)
    p = torch.cat(probs).numpy()
    y = torch.cat(labels).numpy()
    acc = float(np.mean((p > 0.5) == (y == COMPOSITE_LABEL)))
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {"accuracy": acc, "roc_auc": auc, "n_images": int(len(y))}

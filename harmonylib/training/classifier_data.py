"""Balanced composite/real batches for the harmony classifier, and its test metrics.

Each dataset item is one composite with its own real image, so a batch of B items holds B
composites (label 1, the authors' "unharmonious" class) and B reals (label 0): exactly balanced,
and each real sits beside a recoloured version of itself, so content alone cannot separate the
classes. A real shared by several composites (iHarmony4's ``x_1_1 ... x_1_5``) therefore appears
once per composite, in training and in the test metrics alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
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

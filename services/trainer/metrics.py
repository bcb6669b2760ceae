"""Test-set metrics: confusion matrix and per-class precision, recall and F1."""

from typing import Any

import torch


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Rows: true class, columns: predicted class."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_report(labels: torch.Tensor, predictions: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """{"confusion_matrix": [[…]], "per_class": {name: {precision, recall, f1, support}}, "macro_f1"}.

    A class never predicted (or never present) gets precision (or recall) 0, as scikit-learn's
    zero_division=0 does.
    """
    matrix = confusion_matrix(labels.cpu(), predictions.cpu(), len(class_names)).double()
    true_positive = matrix.diag()
    predicted = matrix.sum(0)
    actual = matrix.sum(1)
    precision = torch.where(predicted > 0, true_positive / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_positive / actual.clamp(min=1), 0.0)
    denominator = precision + recall
    f1 = torch.where(denominator > 0, 2 * precision * recall / denominator.clamp(min=1e-12), 0.0)
    per_class = {
        name: {
            "precision": precision[i].item(),
            "recall": recall[i].item(),
            "f1": f1[i].item(),
            "support": int(actual[i].item()),
        }
        for i, name in enumerate(class_names)
    }
    return {"confusion_matrix": matrix.long().tolist(), "per_class": per_class, "macro_f1": f1.mean().item()}

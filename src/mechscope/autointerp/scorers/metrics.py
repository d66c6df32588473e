"""The numbers scorers report: classification metrics as delphi computes them, AUC, correlation."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def classification(labels: Sequence[bool], probabilities: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    """Balanced accuracy, precision, recall, F1 (prediction: probability >= threshold) and AUC."""
    labels_t = torch.tensor([bool(x) for x in labels])
    probs = torch.tensor([float(p) for p in probabilities])
    predicted = probs >= threshold
    tp = int((predicted & labels_t).sum())
    tn = int((~predicted & ~labels_t).sum())
    fp = int((predicted & ~labels_t).sum())
    pos, neg = int(labels_t.sum()), int((~labels_t).sum())
    recall = tp / pos if pos else 0.0
    specificity = tn / neg if neg else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"balanced_accuracy": (recall + specificity) / 2, "precision": precision, "recall": recall, "f1": f1,
            "auc": auc(labels, probabilities)}


def auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting half.
    0.5 when one class is empty."""
    pos = torch.tensor([float(s) for s, y in zip(scores, labels) if y])
    neg = torch.tensor([float(s) for s, y in zip(scores, labels) if not y])
    if len(pos) == 0 or len(neg) == 0:
        return 0.5
    greater = (pos[:, None] > neg[None, :]).float().sum()
    ties = (pos[:, None] == neg[None, :]).float().sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0 when either side is constant."""
    a = torch.tensor([float(v) for v in x], dtype=torch.float64)
    b = torch.tensor([float(v) for v in y], dtype=torch.float64)
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.norm() * b.norm()).item()
    return 0.0 if denominator == 0 else float((a @ b).item() / denominator)

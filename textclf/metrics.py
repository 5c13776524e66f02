"""Evaluation reports: the same numbers in the training printout, the manifest and `evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-label precision/recall/F1/support, JSON-ready."""
    if len(y_true):
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=list(labels), zero_division=0
        )
    else:  # scikit-learn refuses empty input; an empty report is all zeros
        precision = recall = f1 = support = [0] * len(labels)
    per_label = {
        label: {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    present = [label for label in labels if per_label[label]["support"] > 0]
    macro_f1 = sum(per_label[x]["f1"] for x in present) / len(present) if present else 0.0
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(macro_f1),
        "n": len(y_true),
        "per_label": per_label,
    }


def format_report(report: dict[str, Any], title: str = "") -> str:
    """A fixed-width table for terminals."""
    per_label = report["per_label"]
    width = max([len("label"), *(len(x) for x in per_label)])
    lines = [title] if title else []
    lines.append(f"{'label':<{width}}  precision  recall     f1  support")
    for label, row in per_label.items():
        lines.append(
            f"{label:<{width}}  {row['precision']:>9.3f}  {row['recall']:>6.3f}  "
            f"{row['f1']:>5.3f}  {row['support']:>7d}"
        )
    lines.append(
        f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   n={report['n']}"
    )
    return "\n".join(lines)

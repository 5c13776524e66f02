"""Every artifact carries its learning curves, confusion matrix and reliability diagram,
checksummed like the rest."""

from __future__ import annotations

import json
from pathlib import Path

from textclf.model_card import CONFUSION_MATRIX, LEARNING_CURVES, RELIABILITY_DIAGRAM
from textclf.plots import confusion_matrix_png, learning_curves_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_artifact_has_both_pictures_listed_and_linked(trained_model_dir: Path) -> None:
    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    card = (trained_model_dir / "README.md").read_text()
    for name in (LEARNING_CURVES, CONFUSION_MATRIX, RELIABILITY_DIAGRAM):
        data = (trained_model_dir / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert manifest["files"][name]["bytes"] == len(data)
        assert f"]({name})" in card


def test_confusion_matrix_renders_any_label_set() -> None:
    labels = [f"label-{i}" for i in range(25)]
    y_true = labels * 2
    y_pred = labels[1:] + labels[:1] + labels
    assert confusion_matrix_png(y_true, y_pred, labels, "t").startswith(PNG_SIGNATURE)


def test_learning_curves_render_a_single_epoch() -> None:
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "train_accuracy": 0.5, "val_accuracy": 0.6}
    ]
    assert learning_curves_png(history, best_epoch=1).startswith(PNG_SIGNATURE)

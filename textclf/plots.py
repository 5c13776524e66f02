"""Pictures for the artifact: learning curves, a confusion matrix and a reliability diagram, as
PNG bytes.

Numbers in the manifest say how good a model is; these say how it got there (did validation
loss turn while training loss kept falling?) and where it goes wrong (which labels it confuses),
which people read faster from a picture than from a table.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # the object API: no pyplot state, no display, thread-safe
from matplotlib.ticker import MaxNLocator


def learning_curves_png(history: Sequence[Mapping[str, Any]], best_epoch: int) -> bytes:
    """Loss and accuracy per epoch, training and validation, with the kept epoch marked."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, key, title in (
        (loss_ax, "loss", "cross-entropy loss"),
        (acc_ax, "accuracy", "accuracy"),
    ):
        train = [h[f"train_{key}"] for h in history]
        ax.plot(epochs, train, marker="o", label="training (running, dropout on)")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], marker="o", label="validation")
        ax.axvline(best_epoch, color="grey", linestyle="--", label=f"kept (epoch {best_epoch})")
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    acc_ax.legend(loc="lower right")
    return _png(fig)


def confusion_matrix_png(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], title: str
) -> bytes:
    """Row-normalised confusion matrix: row = true label, each row sums to 1 (recall on the
    diagonal), so small and large labels read the same."""
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)))
    np.add.at(counts, ([index[y] for y in y_true], [index[y] for y in y_pred]), 1)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.45 * len(labels) + 2)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=90, fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if len(labels) <= 30:
        for (i, j), rate in np.ndenumerate(rates):
            if rate >= 0.01:
                color = "white" if rate > 0.5 else "black"
                ax.text(j, i, f"{rate:.2f}", ha="center", va="center", fontsize=6, color=color)
    return _png(fig)


def reliability_diagram_png(
    before: Sequence[Mapping[str, float]],
    after: Sequence[Mapping[str, float]],
    ece_before: float,
    ece_after: float,
    title: str,
) -> bytes:
    """Accuracy against mean top score per bin (`textclf.calibration.reliability_bins`), before
    and after the temperature: on the diagonal a score means what it says; below it the model
    is overconfident. The bars under it show where the texts are."""
    fig = Figure(figsize=(6, 6.5))
    ax, counts = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for bins, ece, name, marker in (
        (before, ece_before, "before temperature", "s"),
        (after, ece_after, "after temperature (served)", "o"),
    ):
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker=marker,
            label=f"{name}: ECE {ece:.4f}",
        )
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    width = after[0]["hi"] - after[0]["lo"] if after else 1 / 15
    counts.bar([b["lo"] for b in after], [b["n"] for b in after], width=width, align="edge")
    counts.set(xlabel="top score (confidence), served model", ylabel="texts", yscale="log")
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()

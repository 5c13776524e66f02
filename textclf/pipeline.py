"""Train end to end: data -> features -> fit -> metrics -> artifact.

The one place that strings the stages together, used by the CLI, the test fixtures and the
benchmarks, so they all train the model the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import softmax

from textclf import artifact as artifact_io
from textclf import data as data_io
from textclf.calibration import calibration_report, reliability_bins
from textclf.config import RunConfig, to_dict
from textclf.errors import ArtifactError, DataError, TrainingInterrupted
from textclf.features import build_vectorizer, vectorizer_state
from textclf.metrics import classification_report
from textclf.model import MLP
from textclf.model_card import (
    CONFUSION_MATRIX,
    LEARNING_CURVES,
    RELIABILITY_DIAGRAM,
    render_model_card,
)
from textclf.plots import confusion_matrix_png, learning_curves_png, reliability_diagram_png
from textclf.progress import say
from textclf.train import Trained, predict_logits, train_classifier


@dataclass
class TrainReport:
    path: Path
    labels: tuple[str, ...]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)


def train_artifact(
    config: RunConfig,
    out: Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainReport:
    """Train a model as `config` says and write it to `out` (atomically)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ArtifactError("already exists; pass --overwrite to replace it", path=out)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    splits = data_io.load_splits(config.data, progress=progress)
    timings["load_data"] = _lap(clock)
    vectorizer = build_vectorizer(config.features)
    say(progress, f"vectorizing {len(splits.train)} training texts ...")
    x_train = vectorizer.fit_transform(splits.train.texts)
    x_val = vectorizer.transform(splits.val.texts)
    timings["vectorize"] = _lap(clock) - timings["load_data"]
    pairs = f" + {vectorizer.n_bigrams} word pairs" if vectorizer.n_bigrams else ""
    say(progress, f"{vectorizer.n_word_features} features{pairs}, {len(splits.labels)} labels")
    trained = train_classifier(
        x_train,
        _encode(splits.train.labels, splits.labels, "train"),
        x_val,
        _encode(splits.val.labels, splits.labels, "validation"),
        n_labels=len(splits.labels),
        config=config.train,
        n_bigrams=vectorizer.n_bigrams,
        progress=progress,
        should_stop=should_stop,
    )
    vectorizer.keep_columns(trained.model.config.n_features)
    timings["fit"] = _lap(clock) - timings["load_data"] - timings["vectorize"]
    metrics, predictions, features = {}, {}, {}
    for split, corpus in (("validation", splits.val), ("test", splits.test)):
        if corpus is not None:
            x = x_val if split == "validation" else vectorizer.transform(corpus.texts)
            x = x[:, : trained.model.config.n_features]  # without pairs validation dropped
            model = trained.validation_model if split == "validation" else trained.model
            predictions[split] = _predict(model, x, splits.labels, trained.selection.device)
            metrics[split] = classification_report(corpus.labels, predictions[split], splits.labels)
            features[split] = x
    summary = trained.summary()
    plots = _plots(summary["history"], trained.selection.best_epoch, splits, predictions)
    split = "test" if "test" in features else "validation"
    metrics[split]["calibration"], plots[RELIABILITY_DIAGRAM] = _calibration(
        trained, split, features[split], splits
    )
    if should_stop():
        raise TrainingInterrupted("training interrupted; no artifact was written")
    artifact_io.save(
        out,
        model=trained.model.cpu(),
        vectorizer_state=vectorizer_state(vectorizer, config.features),
        metadata_={
            "name": config.name,
            "labels": list(splits.labels),
            "training_config": to_dict(config),
            "data": splits.description,
            "metrics": metrics,
            "training": summary,
        },
        overwrite=overwrite,
        extra_files=plots,
        model_card=render_model_card,
    )
    timings["total"] = _lap(clock)
    return TrainReport(out, splits.labels, metrics, summary["history"], timings)


def _encode(labels: Sequence[str], classes: Sequence[str], split: str) -> np.ndarray:
    index = {label: i for i, label in enumerate(classes)}
    unknown = sorted(set(labels) - index.keys())
    if unknown:
        raise DataError(f"{split} split has labels the training split lacks: {unknown}")
    return np.fromiter((index[x] for x in labels), dtype=np.int64, count=len(labels))


def _predict(model: MLP, x: Any, labels: Sequence[str], device: str) -> list[str]:
    predicted = predict_logits(model, x, device).argmax(1)
    return [labels[i] for i in predicted]


def _calibration(
    trained: Trained, split: str, x: Any, splits: data_io.Splits
) -> tuple[dict[str, Any], bytes]:
    """ECE before and after the temperature and the coverage table, on `split` (test, else
    validation), with its reliability diagram."""
    corpus = splits.test if split == "test" else splits.val
    assert corpus is not None
    y = _encode(corpus.labels, splits.labels, split)
    model = trained.model if split == "test" else trained.validation_model
    device, scale = trained.selection.device, trained.blend.scale
    after = softmax(predict_logits(model, x, device).astype(np.float64), axis=1)
    unscaled = _without_temperature(model, scale)
    before = softmax(predict_logits(unscaled, x, device).astype(np.float64), axis=1)
    report = calibration_report(before, after, y, temperature=1 / scale)
    png = reliability_diagram_png(
        reliability_bins(before, y),
        reliability_bins(after, y),
        report["ece_before_temperature"],
        report["ece"],
        f"{split} split: reliability ({report['bins']} bins)",
    )
    return report, png


@torch.no_grad()
def _without_temperature(model: MLP, scale: float) -> MLP:
    """A copy of `model` with the fitted logit scale undone (the naive Bayes terms kept): the
    scores as they would be without temperature scaling."""
    unscaled = MLP(model.config).to(next(model.parameters()).device)
    unscaled.load_state_dict(model.state_dict())
    unscaled.output.weight.div_(scale)
    unscaled.output.bias.div_(scale)
    return unscaled.eval()


def _plots(
    history: list[dict[str, Any]],
    best_epoch: int,
    splits: data_io.Splits,
    predictions: dict[str, list[str]],
) -> dict[str, bytes]:
    """Learning curves, and the confusion matrix of the test split (validation if none)."""
    split = "test" if "test" in predictions else "validation"
    corpus = splits.test if split == "test" else splits.val
    assert corpus is not None
    title = f"{split} split: row-normalised confusion matrix"
    return {
        LEARNING_CURVES: learning_curves_png(history, best_epoch),
        CONFUSION_MATRIX: confusion_matrix_png(
            corpus.labels, predictions[split], splits.labels, title
        ),
    }


def _lap(start: float) -> float:
    return time.perf_counter() - start

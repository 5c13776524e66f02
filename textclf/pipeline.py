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

from textclf import artifact as artifact_io
from textclf import data as data_io
from textclf.config import RunConfig, to_dict
from textclf.errors import ArtifactError, DataError, TrainingInterrupted
from textclf.features import build_vectorizer, vectorizer_state
from textclf.metrics import classification_report
from textclf.model import MLP
from textclf.model_card import CONFUSION_MATRIX, LEARNING_CURVES, render_model_card
from textclf.plots import confusion_matrix_png, learning_curves_png
from textclf.progress import say
from textclf.train import predict_logits, train_classifier


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
    metrics, predictions = {}, {}
    for split, corpus in (("validation", splits.val), ("test", splits.test)):
        if corpus is not None:
            x = x_val if split == "validation" else vectorizer.transform(corpus.texts)
            x = x[:, : trained.model.config.n_features]  # without pairs validation dropped
            model = trained.validation_model if split == "validation" else trained.model
            predictions[split] = _predict(model, x, splits.labels, trained.selection.device)
            metrics[split] = classification_report(corpus.labels, predictions[split], splits.labels)
    summary = trained.summary()
    plots = _plots(summary["history"], trained.selection.best_epoch, splits, predictions)
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

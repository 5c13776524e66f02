"""`TextClassifier`: the textclf model as a scikit-learn estimator on raw texts.

    clf = TextClassifier(random_state=0).fit(texts, labels)
    clf.predict_proba(["..."]); clf.score(test_texts, test_labels)
    clf.save("models/mine")          # the same artifact `textclf serve` serves

It follows scikit-learn's developer guide: `__init__` only stores parameters, `fit` returns self,
learned state ends in `_`, `classes_` fixes the column order, `random_state` controls randomness.
So it drops into pipelines, `cross_val_score` and `GridSearchCV`. Under the hood it is the very
same features, fit loop and artifact as the CLI; nothing is pickled when saving.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from textclf import artifact as artifact_io
from textclf.config import FeatureConfig, TrainConfig
from textclf.features import TextFeatures, build_vectorizer, vectorizer_state
from textclf.model import MLP
from textclf.predictor import Predictor, as_text_list
from textclf.train import predict_logits, train_classifier

_FEATURES, _TRAIN = FeatureConfig(), TrainConfig()


class TextClassifier(ClassifierMixin, BaseEstimator):
    """TF-IDF + MLP text classifier; a validation split of `validation_size` picks the epoch
    and the naive Bayes weights (words; word pairs, kept only if they save `bigram_min_gain` of
    the validation log-loss), then (with `refit`) the model is retrained on all of `X`.
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = _FEATURES.ngram_range,
        min_df: int | float = _FEATURES.min_df,
        max_df: float = _FEATURES.max_df,
        max_features: int | None = _FEATURES.max_features,
        subject_weight: float = _FEATURES.subject_weight,
        bigram_min_df: int = _FEATURES.bigram_min_df,
        hidden: tuple[int, ...] = _TRAIN.hidden,
        dropout: float = _TRAIN.dropout,
        epochs: int = _TRAIN.epochs,
        batch_size: int = _TRAIN.batch_size,
        lr: float = _TRAIN.lr,
        weight_decay: float = _TRAIN.weight_decay,
        patience: int = _TRAIN.patience,
        naive_bayes_alpha: float = _TRAIN.naive_bayes_alpha,
        refit: bool = _TRAIN.refit,
        bigram_min_gain: float = _TRAIN.bigram_min_gain,
        validation_size: float = 0.1,
        device: str = "auto",
        random_state: int = 0,
        verbose: bool = False,
    ) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.subject_weight = subject_weight
        self.bigram_min_df = bigram_min_df
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.naive_bayes_alpha = naive_bayes_alpha
        self.refit = refit
        self.bigram_min_gain = bigram_min_gain
        self.validation_size = validation_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Sequence[str], y: Sequence[Any]) -> TextClassifier:
        texts, labels = as_text_list(X, name="X"), np.asarray(y)
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("TextClassifier needs at least two classes")
        train, val = train_test_split(
            np.arange(len(texts)),
            test_size=self.validation_size,
            stratify=codes,
            random_state=self.random_state,
        )
        self.features_ = build_vectorizer(self._feature_config())
        x_train = self.features_.fit_transform([texts[i] for i in train])
        x_val = self.features_.transform([texts[i] for i in val])
        trained = train_classifier(
            x_train,
            codes[train],
            x_val,
            codes[val],
            n_labels=len(self.classes_),
            config=self._train_config(),
            n_bigrams=self.features_.n_bigrams,
            progress=self.verbose,
        )
        self.features_.keep_columns(trained.model.config.n_features)
        self.model_: MLP = trained.model.cpu()
        self.training_ = trained.summary()
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        check_is_fitted(self, "model_")
        logits = predict_logits(self.model_, self.features_.transform(as_text_list(X, name="X")))
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(self, X: Sequence[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def save(
        self, path: Path | str, *, name: str = "textclf-estimator", overwrite: bool = False
    ) -> Path:
        """Write the standard artifact (servable with `textclf serve`); labels become strings."""
        check_is_fitted(self, "model_")
        features: TextFeatures = self.features_
        return artifact_io.save(
            Path(path),
            model=self.model_,
            vectorizer_state=vectorizer_state(features, features.config),
            metadata_={
                "name": name,
                "labels": [str(c) for c in self.classes_],
                "training_config": {"estimator": _jsonable(self.get_params())},
                "data": {"source": "TextClassifier.fit"},
                "metrics": {},
                "training": self.training_,
            },
            overwrite=overwrite,
        )

    @staticmethod
    def load(path: Path | str) -> Predictor:
        """A saved estimator loads as the ordinary predictor (`textclf.load`)."""
        from textclf.predictor import load

        return load(path)

    def _feature_config(self) -> FeatureConfig:
        return FeatureConfig(
            ngram_range=tuple(self.ngram_range),  # type: ignore[arg-type]
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            subject_weight=self.subject_weight,
            bigram_min_df=self.bigram_min_df,
        )

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            hidden=tuple(self.hidden),
            dropout=self.dropout,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            naive_bayes_alpha=self.naive_bayes_alpha,
            refit=self.refit,
            bigram_min_gain=self.bigram_min_gain,
            device=self.device,  # type: ignore[arg-type]
            seed=self.random_state,
        )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}

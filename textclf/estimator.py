"""`TextClassifier`: the textclf model as a scikit-learn estimator on raw texts.

    clf = TextClassifier(random_state=0).fit(texts, labels)
    clf.predict_proba(["..."]); clf.score(test_texts, test_labels)
    clf.save("models/mine")          # the same artifact `textclf serve` serves

It follows scikit-learn's developer guide: `__init__` only stores parameters, `fit` returns self,
learned state ends in `_`, `classes_` fixes the column order, `random_state` controls randomness.
So it drops into pipelines, `cross_val_score` and `GridSearchCV`. Under the hood it is the very
same features, fit loop and artifact as the CLI; nothing is pickled when saving.

Its parameters are not typed out here: `__init__` takes the config dataclasses' fields, with
their defaults, and publishes them as its signature (which `get_params` and `clone` read), so
a new option in `textclf.config` is an estimator parameter, and a `textclf train` flag, at once.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from textclf import artifact as artifact_io
from textclf.config import DataConfig, FeatureConfig, TrainConfig
from textclf.features import TextFeatures, build_vectorizer, vectorizer_state
from textclf.model import MLP
from textclf.predictor import Predictor, as_text_list
from textclf.train import predict_logits, train_classifier

F = TypeVar("F", bound=Callable[..., Any])

# Config fields whose estimator parameter has scikit-learn's conventional name instead.
RENAMED = {"seed": "random_state", "val_size": "validation_size"}
# The parameters: every field of these configs (DataConfig's: only the split the estimator
# makes itself; files, columns and the test split are the caller's business), renamed as above,
# plus `verbose`, the estimator's own.
SOURCES: tuple[tuple[type[Any], tuple[str, ...] | None], ...] = (
    (FeatureConfig, None),
    (TrainConfig, None),
    (DataConfig, ("val_size", "seed")),
)
OWN = {"verbose": (False, bool)}


def _parameters() -> list[inspect.Parameter]:
    """`__init__`'s keyword-only parameters, from the config fields (seed once: both configs')."""
    params: dict[str, inspect.Parameter] = {}
    for cls, names in SOURCES:
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            name = RENAMED.get(f.name, f.name)
            if (names is None or f.name in names) and name not in params:
                params[name] = _keyword(name, f.default, hints[f.name])
    params.update({name: _keyword(name, *spec) for name, spec in OWN.items()})
    return list(params.values())


def _keyword(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


PARAMETERS = _parameters()
SIGNATURE = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *PARAMETERS]
)


def _signed(signature: inspect.Signature) -> Callable[[F], F]:
    """Give a `**params` function the signature it accepts, which is what scikit-learn's
    `get_params` and `clone` (and `help`) read."""

    def sign(func: F) -> F:
        func.__signature__ = signature  # type: ignore[attr-defined]
        return func

    return sign


class TextClassifier(ClassifierMixin, BaseEstimator):
    """TF-IDF + MLP text classifier; a validation split of `validation_size` picks the epoch
    and the naive Bayes weights (words; word pairs, kept only if they save `bigram_min_gain` of
    the validation log-loss), then (with `refit`) the model is retrained on all of `X`.

    Its parameters are the fields of FeatureConfig and TrainConfig, with their defaults and
    meanings (`random_state` is `seed`, and also seeds the validation split), plus
    `validation_size` (DataConfig's `val_size`) and `verbose` (progress on stderr).
    """

    validation_size: float
    random_state: int
    verbose: bool

    @_signed(SIGNATURE)
    def __init__(self, **params: Any) -> None:
        unknown = sorted(params.keys() - {p.name for p in PARAMETERS})
        if unknown:
            raise TypeError(f"TextClassifier got unexpected keyword arguments {unknown}")
        for p in PARAMETERS:
            setattr(self, p.name, params.get(p.name, p.default))

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
        self.features_ = build_vectorizer(self.feature_config())
        x_train = self.features_.fit_transform([texts[i] for i in train])
        x_val = self.features_.transform([texts[i] for i in val])
        trained = train_classifier(
            x_train,
            codes[train],
            x_val,
            codes[val],
            n_labels=len(self.classes_),
            config=self.train_config(),
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
        probs = self.predict_proba(X)  # first: unfitted, it raises NotFittedError
        return self.classes_[probs.argmax(axis=1)]

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

    def feature_config(self) -> FeatureConfig:
        """The TF-IDF settings these parameters describe (validated, as `fit` will use them)."""
        config: FeatureConfig = self._config(FeatureConfig)
        return config

    def train_config(self) -> TrainConfig:
        """The training settings these parameters describe (validated, as `fit` will use them)."""
        config: TrainConfig = self._config(TrainConfig)
        return config

    def _config(self, cls: type[Any]) -> Any:
        # Lists as tuples: a grid search or a JSON round trip may hand `hidden=[64, 32]`.
        values = {
            f.name: getattr(self, RENAMED.get(f.name, f.name)) for f in dataclasses.fields(cls)
        }
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}

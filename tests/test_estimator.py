"""TextClassifier behaves as scikit-learn estimators do, and saves the ordinary artifact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score

import textclf
from textclf.config import TUTORIAL_CATEGORIES, DataConfig
from textclf.data import Splits, load_splits
from textclf.estimator import TextClassifier

SMALL = {"hidden": (32,), "epochs": 4, "max_features": 20_000}


@pytest.fixture(scope="module")
def splits(archive: Path) -> Splits:
    return load_splits(DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES))


@pytest.fixture(scope="module")
def fitted(splits: Splits) -> TextClassifier:
    texts = splits.train.texts + splits.val.texts
    return TextClassifier(random_state=0, **SMALL).fit(
        texts, splits.train.labels + splits.val.labels
    )


def test_fit_predict_proba_on_raw_texts(fitted: TextClassifier, splits: Splits) -> None:
    assert splits.test is not None
    probs = fitted.predict_proba(splits.test.texts)
    assert probs.shape == (len(splits.test), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert list(fitted.classes_) == sorted(TUTORIAL_CATEGORIES)
    assert fitted.score(splits.test.texts, splits.test.labels) >= 0.9


def test_same_random_state_gives_the_same_model(fitted: TextClassifier, splits: Splits) -> None:
    again = clone(fitted).fit(
        splits.train.texts + splits.val.texts, splits.train.labels + splits.val.labels
    )
    assert np.array_equal(
        again.predict_proba(splits.val.texts[:50]), fitted.predict_proba(splits.val.texts[:50])
    )


def test_saved_estimator_serves_the_same_probabilities(
    fitted: TextClassifier, splits: Splits, tmp_path: Path
) -> None:
    path = fitted.save(tmp_path / "est")
    texts = splits.val.texts[:40]
    # float32 either way, but not the same operations: ~1e-6 apart on a 0.88 probability.
    np.testing.assert_allclose(
        textclf.load(path).predict_proba(texts), fitted.predict_proba(texts), atol=1e-5
    )


WORDS = {
    0: "rocket orbit launch nasa",
    1: "pitcher inning batter score",
    2: "pixel render shader image",
}
TOY_TEXTS = [f"{WORDS[i % 3]} doc{i}" for i in range(60)]
TOY_LABELS = [i % 3 for i in range(60)]


def test_works_with_cross_validation_and_integer_labels() -> None:
    clf = TextClassifier(hidden=(8,), epochs=3, min_df=1, lr=0.05)
    assert cross_val_score(clf, TOY_TEXTS, TOY_LABELS, cv=3).mean() > 0.9


def test_grid_search_sets_config_parameters_the_estimator_once_lacked() -> None:
    """The generated signature is what GridSearchCV clones and sets; lists become tuples."""
    base = TextClassifier(hidden=(8,), epochs=2, min_df=1, lr=0.05, threads=1)
    grid = {"first_layer_lr": [None, 0.1], "label_smoothing": [0.0, 0.1], "hidden": [[8], [4]]}
    search = GridSearchCV(base, grid, cv=2).fit(TOY_TEXTS, TOY_LABELS)
    assert set(search.best_params_) == set(grid)
    assert search.best_estimator_.train_config().hidden in ((8,), (4,))
    assert search.best_score_ > 0.9


def test_get_params_round_trips() -> None:
    clf = TextClassifier(hidden=(16,), dropout=0.2, stop_words="english", random_state=3)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert copy.get_params()["stop_words"] == "english" and copy.random_state == 3
    assert (
        repr(clf)
        == "TextClassifier(dropout=0.2, hidden=(16,), random_state=3, stop_words='english')"
    )
    with pytest.raises(TypeError, match="sequence of texts"):
        TextClassifier().fit("one string", [1])


def test_set_params_and_unknown_parameters() -> None:
    clf = TextClassifier().set_params(threads=None, lowercase=False, validation_size=0.2)
    assert clf.get_params()["threads"] is None and clf.validation_size == 0.2
    with pytest.raises(ValueError, match="nonsense"):
        clf.set_params(nonsense=1)
    with pytest.raises(TypeError, match="nonsense"):
        TextClassifier(nonsense=1)


def test_parameters_become_the_configs_fit_uses() -> None:
    clf = TextClassifier(
        ngram_range=[1, 2],
        subject_ngram_range=(1, 1),
        sublinear_tf=False,
        max_features=0,
        hidden=[64, 32],
        first_layer_lr=0.01,
        label_smoothing=0.1,
        threads=2,
        random_state=7,
    )
    features, train = clf.feature_config(), clf.train_config()
    assert (features.ngram_range, features.subject_ngram_range) == ((1, 2), (1, 1))
    assert (features.sublinear_tf, features.max_features) == (False, None)
    assert (train.hidden, train.first_layer_lr, train.label_smoothing) == ((64, 32), 0.01, 0.1)
    assert (train.threads, train.seed) == (2, 7)


UNFITTED_USES: dict[str, Callable[[TextClassifier, Path], Any]] = {
    "predict": lambda clf, _: clf.predict(["text"]),
    "predict_proba": lambda clf, _: clf.predict_proba(["text"]),
    "score": lambda clf, _: clf.score(["text"], ["label"]),
    "save": lambda clf, tmp: clf.save(tmp / "model"),
}


@pytest.mark.parametrize("use", UNFITTED_USES)
def test_unfitted_use_raises_not_fitted_error(use: str, tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        UNFITTED_USES[use](TextClassifier(), tmp_path)
    assert not (tmp_path / "model").exists()

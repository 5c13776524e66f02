"""TextClassifier behaves as scikit-learn estimators do, and saves the ordinary artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

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
    np.testing.assert_allclose(
        textclf.load(path).predict_proba(texts), fitted.predict_proba(texts), atol=1e-6
    )


def test_works_with_cross_validation_and_integer_labels() -> None:
    words = {
        0: "rocket orbit launch nasa",
        1: "pitcher inning batter score",
        2: "pixel render shader image",
    }
    texts = [f"{words[i % 3]} doc{i}" for i in range(60)]
    labels = [i % 3 for i in range(60)]
    clf = TextClassifier(hidden=(8,), epochs=3, min_df=1, lr=0.05)
    assert cross_val_score(clf, texts, labels, cv=3).mean() > 0.9


def test_get_params_round_trips_and_unfitted_use_fails() -> None:
    clf = TextClassifier(hidden=(16,), dropout=0.2)
    assert clone(clf).get_params() == clf.get_params()
    with pytest.raises(Exception, match="not fitted"):
        clf.predict_proba(["text"])
    with pytest.raises(TypeError, match="sequence of texts"):
        TextClassifier().fit("one string", [1])

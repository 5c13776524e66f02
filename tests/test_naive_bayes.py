"""The closed-form naive Bayes weights equal scikit-learn's ComplementNB."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.naive_bayes import ComplementNB

from textclf.naive_bayes import complement_nb_weights


def _data(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = sp.random(60, 40, density=0.2, format="csr", dtype=np.float32, random_state=seed)
    return x, rng.integers(0, 4, size=60)


@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_weights_equal_scikit_learns_complement_nb(alpha: float) -> None:
    x, y = _data()
    ours = complement_nb_weights(x, y, n_labels=4, alpha=alpha)
    theirs = ComplementNB(alpha=alpha).fit(x, y).feature_log_prob_.T
    assert ours.shape == (40, 4) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    # So the scores, and the labels they pick, are scikit-learn's too.
    scores = np.asarray(x @ ours)
    assert np.array_equal(scores.argmax(1), ComplementNB(alpha=alpha).fit(x, y).predict(x))


def test_a_label_missing_from_the_data_still_gets_finite_weights() -> None:
    x, y = _data()
    weights = complement_nb_weights(x, y, n_labels=6, alpha=0.1)
    assert weights.shape == (40, 6) and np.isfinite(weights).all()


def test_smoothing_must_be_positive() -> None:
    x, y = _data()
    with pytest.raises(ValueError, match="alpha must be positive"):
        complement_nb_weights(x, y, n_labels=4, alpha=0.0)

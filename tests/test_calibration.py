"""fit_blend finds the validation log-loss optimum over (scale, naive Bayes weights)."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from textclf.calibration import NB_WEIGHT_BOUNDS, SCALE_BOUNDS, fit_blend


def _loss(z: np.ndarray, y: np.ndarray) -> float:
    return -float(log_softmax(z, axis=1)[np.arange(len(y)), y].mean())


def _labelled(seed: int = 0, n: int = 2000, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(true_logits): the true logits are the calibrated scores."""
    rng = np.random.default_rng(seed)
    true = rng.normal(scale=2.0, size=(n, k))
    p = np.exp(log_softmax(true, axis=1))
    y = np.array([rng.choice(k, p=row) for row in p])
    return true, y


def test_recovers_the_temperature_of_overconfident_logits() -> None:
    true, y = _labelled()
    blend = fit_blend(3.0 * true, None, y)  # three times too confident
    assert abs(blend.scale - 1 / 3) < 0.03
    assert blend.nb_weight == 0.0
    assert blend.val_loss_after < blend.val_loss_before
    assert abs(blend.val_loss_after - _loss(true, y)) < 1e-3


def test_weighs_in_scores_that_carry_the_missing_signal() -> None:
    true, y = _labelled(seed=1)
    rng = np.random.default_rng(2)
    half = rng.normal(size=true.shape)
    # The model sees part of the signal, naive Bayes the rest (at half strength).
    blend = fit_blend(true - half, 0.5 * half, y)
    assert abs(blend.scale - 1.0) < 0.1
    assert abs(blend.nb_weight - 2.0) < 0.2


def test_useless_scores_get_no_weight() -> None:
    true, y = _labelled(seed=3)
    noise = np.random.default_rng(4).normal(size=true.shape)
    blend = fit_blend(true, -5.0 * true + noise, y)  # anti-correlated: weight clamps at 0
    assert blend.nb_weight == 0.0
    assert abs(blend.scale - 1.0) < 0.1


def test_separable_validation_stays_within_bounds() -> None:
    y = np.arange(10) % 2
    logits = np.stack([-(y * 2 - 1), y * 2 - 1], axis=1).astype(float)  # always right
    blend = fit_blend(logits, logits, y)
    assert SCALE_BOUNDS[0] <= blend.scale <= SCALE_BOUNDS[1]
    assert NB_WEIGHT_BOUNDS[0] <= blend.nb_weight <= NB_WEIGHT_BOUNDS[1]
    assert np.isfinite(blend.val_loss_after)


def test_three_terms_each_get_the_weight_of_their_share() -> None:
    """The model, naive Bayes and the word-pair term each see part of the signal."""
    true, y = _labelled(seed=5)
    rng = np.random.default_rng(6)
    words, pairs = rng.normal(size=true.shape), rng.normal(size=true.shape)
    blend = fit_blend(true - words - pairs, 0.5 * words, y, 0.25 * pairs)
    assert abs(blend.scale - 1.0) < 0.1
    assert abs(blend.nb_weight - 2.0) < 0.25
    assert abs(blend.bigram_weight - 4.0) < 0.5
    without = fit_blend(true - words - pairs, 0.5 * words, y)
    assert without.bigram_weight == 0.0
    assert blend.val_loss_after < without.val_loss_after

"""fit_blend finds the validation log-loss optimum over (scale, naive Bayes weights); the
expected calibration error and coverage table say how honest the shipped scores are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import log_softmax

from textclf.calibration import (
    NB_WEIGHT_BOUNDS,
    SCALE_BOUNDS,
    coverage_table,
    expected_calibration_error,
    fit_blend,
    reliability_bins,
)


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


# --- expected calibration error and coverage ---------------------------------------------------


def test_ece_matches_a_hand_computed_example() -> None:
    """Four texts, 2 labels. Top scores 0.9, 0.9 (one right), 0.65 (right), 0.55 (wrong).
    With 15 bins: 0.9 falls in (13/15, 14/15], 0.65 in (9/15, 10/15], 0.55 in (8/15, 9/15].
    ECE = 2/4 * |0.9 - 0.5| + 1/4 * |0.65 - 1| + 1/4 * |0.55 - 0| = 0.2 + 0.0875 + 0.1375."""
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.65, 0.35], [0.45, 0.55]])
    y = np.array([0, 0, 0, 0])
    assert expected_calibration_error(probs, y) == pytest.approx(0.425)
    assert expected_calibration_error(probs, y, bins=1) == pytest.approx(
        abs(np.mean([0.9, 0.9, 0.65, 0.55]) - 0.5)
    )


def test_bin_edges_are_closed_above() -> None:
    """A top score of exactly 2/3 with 3 bins sits in the middle bin (1/3, 2/3], not the top."""
    probs = np.array([[2 / 3, 1 / 3], [0.9, 0.1]])
    bins = reliability_bins(probs, np.array([0, 0]), bins=3)
    assert [(b["lo"], b["n"]) for b in bins] == [
        (pytest.approx(1 / 3), 1),
        (pytest.approx(2 / 3), 1),
    ]


def test_perfectly_calibrated_scores_have_near_zero_ece() -> None:
    true, y = _labelled(seed=7, n=20_000)
    probs = np.exp(log_softmax(true, axis=1))
    assert expected_calibration_error(probs, y) < 0.01
    assert expected_calibration_error(np.exp(log_softmax(4 * true, axis=1)), y) > 0.05


def test_coverage_table_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.65, 0.35], [0.45, 0.55]])
    rows = coverage_table(probs, np.array([0, 0, 0, 0]), thresholds=(0.0, 0.6, 0.95))
    assert [(r["coverage"], r["accuracy"], r["n"]) for r in rows] == [
        (1.0, 0.5, 4),
        (0.75, pytest.approx(2 / 3), 3),
        (0.0, 0.0, 0),
    ]


def test_calibration_in_the_trained_artifact(trained_model_dir: Path) -> None:
    """The fixture model records ECE before/after on its test split, and its card shows both."""
    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    report = manifest["metrics"]["test"]["calibration"]
    assert report["bins"] == 15
    assert 0.0 <= report["ece"] <= 1.0 and 0.0 <= report["ece_before_temperature"] <= 1.0
    assert report["coverage"][0]["coverage"] == 1.0
    assert report["coverage"][0]["accuracy"] == pytest.approx(
        manifest["metrics"]["test"]["accuracy"]
    )
    card = (trained_model_dir / "README.md").read_text()
    assert f"{report['ece_before_temperature']:.4f} before the fitted temperature" in card
    assert f"{report['ece']:.4f} after it" in card
    assert "| score at least | coverage | accuracy | n |" in card

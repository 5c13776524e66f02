"""The fit loop on real data: it learns, it is reproducible, it keeps the best epoch, it stops."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from textclf.config import TUTORIAL_CATEGORIES, DataConfig, FeatureConfig, TrainConfig
from textclf.data import load_splits
from textclf.device import _mps_available, resolve_device
from textclf.errors import ConfigError, TrainingInterrupted
from textclf.features import build_vectorizer
from textclf.naive_bayes import complement_nb_weights
from textclf.train import (
    FitResult,
    Trained,
    evaluate_loss,
    fit,
    predict_logits,
    refit,
    train_classifier,
)

# Unigrams, a small vocabulary and small batches: a few seconds per fit on two cores. No word
# pairs here (they have their own tests at the end).
FEATURES = FeatureConfig(ngram_range=(1, 1), max_features=5_000, bigram_min_df=0)
BASE = TrainConfig(hidden=(32,), epochs=3, batch_size=64, lr=3e-3, device="cpu", seed=0)


@dataclass(frozen=True)
class Data:
    x_train: sp.csr_matrix
    y_train: np.ndarray
    x_val: sp.csr_matrix
    y_val: np.ndarray
    n_labels: int


@pytest.fixture(scope="module")
def data(archive: Path) -> Data:
    splits = load_splits(DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES))
    index = {label: i for i, label in enumerate(splits.labels)}
    vectorizer = build_vectorizer(FEATURES)
    return Data(
        x_train=vectorizer.fit_transform(splits.train.texts),
        y_train=np.array([index[x] for x in splits.train.labels], dtype=np.int64),
        x_val=vectorizer.transform(splits.val.texts),
        y_val=np.array([index[x] for x in splits.val.labels], dtype=np.int64),
        n_labels=len(splits.labels),
    )


def _fit(data: Data, y_val: np.ndarray | None = None, **changes: Any) -> FitResult:
    config = TrainConfig(**{**asdict(BASE), **changes})
    y_val = data.y_val if y_val is None else y_val
    return fit(
        data.x_train,
        data.y_train,
        data.x_val,
        y_val,
        n_labels=data.n_labels,
        config=config,
        progress=False,
    )


@pytest.fixture(scope="module")
def result(data: Data) -> FitResult:
    return _fit(data)


def _history(result: FitResult) -> list[dict[str, float]]:
    """Epoch stats without wall-clock time, which is never reproducible."""
    return [{k: v for k, v in asdict(h).items() if k != "seconds"} for h in result.history]


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_fit_learns_the_tutorial_categories(result: FitResult, data: Data) -> None:
    assert result.device == "cpu"
    assert 1 <= result.best_epoch <= len(result.history) <= BASE.epochs
    _, val_accuracy = evaluate_loss(result.model, data.x_val, data.y_val)
    assert val_accuracy >= 0.85
    assert result.best.val_accuracy == val_accuracy
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert not result.model.training  # handed back ready for inference


def test_fit_builds_the_model_from_the_config(result: FitResult, data: Data) -> None:
    config = result.model.config
    assert config.n_features == data.x_train.shape[1]
    assert config.n_labels == data.n_labels == 3
    assert config.hidden == BASE.hidden and config.dropout == BASE.dropout


def test_predict_logits_shape_and_batches(result: FitResult, data: Data) -> None:
    logits = predict_logits(result.model, data.x_val)
    assert logits.shape == (data.x_val.shape[0], data.n_labels)
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    empty = predict_logits(result.model, data.x_val[:0])
    assert empty.shape == (0, data.n_labels)


def test_same_seed_gives_identical_weights_and_history(result: FitResult, data: Data) -> None:
    again = _fit(data)
    _assert_same_weights(result.model, again.model)
    assert _history(again) == _history(result)
    assert again.best_epoch == result.best_epoch


def test_another_seed_gives_other_weights(result: FitResult, data: Data) -> None:
    other = _fit(data, seed=1, epochs=1)
    assert not torch.equal(other.model.input.weight, result.model.input.weight)


def test_early_stopping_restores_the_best_epoch(data: Data) -> None:
    # Validation labels shifted by one: the better the model learns the real labels, the worse
    # it scores here, so validation peaks early and training stops `patience` epochs later.
    misleading = (data.y_val + 1) % data.n_labels
    patience, epochs = 2, 10
    stopped = _fit(data, misleading, epochs=epochs, patience=patience)

    history = stopped.history
    assert len(history) < epochs  # it did stop early
    assert [h.epoch for h in history] == list(range(1, len(history) + 1))
    assert stopped.best_epoch == len(history) - patience
    keys = [(h.val_accuracy, -h.val_loss) for h in history]
    assert keys.index(max(keys)) + 1 == stopped.best_epoch

    # The returned model is the best epoch's, not the last one's ...
    val_loss, val_accuracy = evaluate_loss(stopped.model, data.x_val, misleading)
    assert val_accuracy == stopped.best.val_accuracy
    assert val_loss == pytest.approx(stopped.best.val_loss, rel=1e-6)
    assert (val_accuracy, -val_loss) != (history[-1].val_accuracy, -history[-1].val_loss)

    # ... and exactly the model a run that ended at the best epoch produces.
    short = _fit(data, misleading, epochs=stopped.best_epoch, patience=patience)
    _assert_same_weights(stopped.model, short.model)


def test_should_stop_before_training_raises(data: Data) -> None:
    with pytest.raises(TrainingInterrupted, match="no artifact was written"):
        fit(
            data.x_train,
            data.y_train,
            data.x_val,
            data.y_val,
            n_labels=data.n_labels,
            config=BASE,
            progress=False,
            should_stop=lambda: True,
        )


def test_should_stop_mid_epoch_raises(data: Data) -> None:
    calls = 0

    def stop_on_the_fifth_batch() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 5

    with pytest.raises(TrainingInterrupted):
        fit(
            data.x_train,
            data.y_train,
            data.x_val,
            data.y_val,
            n_labels=data.n_labels,
            config=BASE,
            progress=False,
            should_stop=stop_on_the_fifth_batch,
        )
    assert calls == 5  # asked before every batch, and nothing ran after it said stop


def test_progress_output_lists_every_epoch(data: Data, capsys: pytest.CaptureFixture[str]) -> None:
    fit(
        data.x_train[:200],
        data.y_train[:200],
        data.x_val,
        data.y_val,
        n_labels=data.n_labels,
        config=TrainConfig(**{**asdict(BASE), "epochs": 2, "patience": 5}),
        progress=True,
    )
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "epoch  1" in text and "epoch  2" in text and "val_acc" in text


def test_progress_off_a_terminal_is_one_line_per_epoch(data: Data, tmp_path: Path) -> None:
    """Written to a log file, training must not fill it with bar redraws (carriage returns)."""
    log = tmp_path / "train.log"
    with log.open("w") as stderr, contextlib.redirect_stderr(stderr):
        trained = train_classifier(
            data.x_train[:300],
            data.y_train[:300],
            data.x_val,
            data.y_val,
            n_labels=data.n_labels,
            config=TrainConfig(**{**asdict(BASE), "epochs": 3, "patience": 5}),
            progress=True,
        )
    text = log.read_text()
    assert "\r" not in text
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == len(trained.selection.history) == 3
    assert all("val_acc" in line for line in epochs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"patience": 0}, "patience"),
        ({"lr": 0.0}, "lr"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"bigram_min_gain": 1.0}, "bigram_min_gain"),
        ({"bigram_min_gain": -0.1}, "bigram_min_gain"),
    ],
)
def test_train_config_rejects_bad_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_resolve_device_refuses_missing_cuda() -> None:
    with pytest.raises(ConfigError, match=r"cuda.*no CUDA device"):
        resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_fit_refuses_missing_cuda_before_training(data: Data) -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        _fit(data, device="cuda")


@pytest.mark.skipif(_mps_available(), reason="this machine has MPS")
def test_resolve_device_refuses_missing_mps() -> None:
    with pytest.raises(ConfigError, match=r"mps.*not available"):
        resolve_device("mps")


@pytest.mark.skipif(
    torch.cuda.is_available() or _mps_available(), reason="this machine has an accelerator"
)
def test_resolve_device_auto_is_cpu_here() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


def test_resolve_device_cpu_and_unknown() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")


# --- the whole recipe: fit, blend on validation, refit -----------------------------------------


def _train(
    data: Data,
    should_stop: Callable[[], bool] = lambda: False,
    n_bigrams: int = 0,
    **changes: Any,
) -> Trained:
    return train_classifier(
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        n_labels=data.n_labels,
        config=TrainConfig(**{**asdict(BASE), **changes}),
        n_bigrams=n_bigrams,
        progress=False,
        should_stop=should_stop,
    )


@pytest.fixture(scope="module")
def trained(data: Data) -> Trained:
    return _train(data)


def test_validation_model_is_the_selected_model_with_the_blend(
    trained: Trained, result: FitResult, data: Data
) -> None:
    _assert_same_weights(trained.selection.model, result.model)  # the same early-stopped fit
    nb = complement_nb_weights(data.x_train, data.y_train, data.n_labels, BASE.naive_bayes_alpha)
    blend = trained.blend
    expected = blend.scale * predict_logits(result.model, data.x_val) + blend.nb_weight * (
        data.x_val @ nb
    )
    np.testing.assert_allclose(
        predict_logits(trained.validation_model, data.x_val), expected, rtol=1e-4, atol=1e-4
    )
    assert blend.val_loss_after <= blend.val_loss_before


def test_shipped_model_is_refit_on_training_and_validation(trained: Trained, data: Data) -> None:
    assert trained.refit_examples == data.x_train.shape[0] + data.x_val.shape[0]
    assert trained.model is not trained.validation_model
    assert trained.model.config == trained.validation_model.config
    assert not trained.model.training
    # A fresh model trained for the chosen epochs on all labelled texts, then blended alike.
    x_all = sp.vstack([data.x_train, data.x_val], format="csr")
    y_all = np.concatenate([data.y_train, data.y_val])
    again = refit(
        x_all,
        y_all,
        epochs=trained.selection.best_epoch,
        n_labels=data.n_labels,
        config=BASE,
        progress=False,
    )
    logits = predict_logits(trained.model, data.x_val)
    expected = trained.blend.scale * predict_logits(again, data.x_val)
    if trained.model.config.wide:
        nb = complement_nb_weights(x_all, y_all, data.n_labels, BASE.naive_bayes_alpha)
        expected = expected + trained.blend.nb_weight * (data.x_val @ nb)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    # It learnt from validation too: it fits those texts at least as well as the held-out model.
    val_acc = (logits.argmax(1) == data.y_val).mean()
    assert (
        val_acc
        >= (predict_logits(trained.validation_model, data.x_val).argmax(1) == data.y_val).mean()
    )
    summary = trained.summary()
    assert summary["refit"] == {"epochs": trained.selection.best_epoch, "examples": len(y_all)}
    assert summary["blend"]["scale"] == trained.blend.scale


def test_without_refit_the_validation_model_ships(data: Data) -> None:
    trained = _train(data, refit=False)
    assert trained.model is trained.validation_model
    assert trained.refit_examples == 0 and trained.summary()["refit"] is None


def test_without_naive_bayes_there_is_no_wide_term(data: Data) -> None:
    trained = _train(data, naive_bayes_alpha=0.0, refit=False)
    assert not trained.model.config.wide and trained.blend.nb_weight == 0.0
    # Temperature alone never changes a prediction.
    plain = predict_logits(trained.selection.model, data.x_val).argmax(1)
    assert np.array_equal(predict_logits(trained.model, data.x_val).argmax(1), plain)


def test_should_stop_in_the_refit_thread_raises(data: Data) -> None:
    """The refit trains in a second thread; a stop it sees ends the whole run."""

    def stop_in_the_refit_thread() -> bool:
        return threading.current_thread() is not threading.main_thread()

    with pytest.raises(TrainingInterrupted):
        _train(data, should_stop=stop_in_the_refit_thread)


# --- the word-pair naive Bayes term ------------------------------------------------------------


@dataclass(frozen=True)
class PairData:
    data: Data  # word columns, then pair columns
    n_bigrams: int


@pytest.fixture(scope="module")
def pair_data(archive: Path) -> PairData:
    """Headers, footers and quotes removed, where word pairs help most."""
    remove = ("headers", "footers", "quotes")
    splits = load_splits(DataConfig(archive=archive, categories=TUTORIAL_CATEGORIES, remove=remove))
    index = {label: i for i, label in enumerate(splits.labels)}
    vectorizer = build_vectorizer(FeatureConfig(ngram_range=(1, 1), max_features=5_000))
    data = Data(
        x_train=vectorizer.fit_transform(splits.train.texts),
        y_train=np.array([index[x] for x in splits.train.labels], dtype=np.int64),
        x_val=vectorizer.transform(splits.val.texts),
        y_val=np.array([index[x] for x in splits.val.labels], dtype=np.int64),
        n_labels=len(splits.labels),
    )
    return PairData(data, vectorizer.n_bigrams)


def _train_pairs(pairs: PairData, **changes: Any) -> Trained:
    return _train(pairs.data, n_bigrams=pairs.n_bigrams, **{"refit": False, **changes})


def test_a_kept_pair_term_adds_its_weighted_naive_bayes_scores(pair_data: PairData) -> None:
    data, n_bigrams = pair_data.data, pair_data.n_bigrams
    trained = _train_pairs(pair_data, bigram_min_gain=0.0)
    words = data.x_train.shape[1] - n_bigrams
    assert n_bigrams > 1000 and trained.model.config.n_bigrams == n_bigrams
    assert trained.model.config.n_features == data.x_train.shape[1]
    blend = trained.blend
    assert blend.bigram_weight > 0
    nb_words, nb_pairs = (
        complement_nb_weights(part, data.y_train, data.n_labels, BASE.naive_bayes_alpha)
        for part in (data.x_train[:, :words], data.x_train[:, words:])
    )
    expected = (
        blend.scale * predict_logits(trained.selection.model, data.x_val[:, :words])
        + blend.nb_weight * (data.x_val[:, :words] @ nb_words)
        + blend.bigram_weight * (data.x_val[:, words:] @ nb_pairs)
    )
    logits = predict_logits(trained.model, data.x_val)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert trained.summary()["blend"]["bigram_weight"] == blend.bigram_weight


def test_a_pair_term_that_saves_too_little_is_dropped(pair_data: PairData) -> None:
    """Dropped, the recipe is exactly the one without pairs: same weights, same blend."""
    data, n_bigrams = pair_data.data, pair_data.n_bigrams
    words = data.x_train.shape[1] - n_bigrams
    trained = _train_pairs(pair_data, bigram_min_gain=0.99)
    assert trained.model.config.n_bigrams == 0 and trained.blend.bigram_weight == 0.0
    assert trained.model.config.n_features == words
    x_train, x_val = data.x_train[:, :words], data.x_val[:, :words]
    words_only = Data(x_train, data.y_train, x_val, data.y_val, data.n_labels)
    alone = _train(words_only, refit=False)
    assert trained.blend == alone.blend
    _assert_same_weights(trained.model, alone.model)

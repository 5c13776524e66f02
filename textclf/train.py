"""The fit loop: minibatch AdamW (LazyAdamW on the sparse first layer) on sparse TF-IDF batches,
early stopping on the validation split.

No file I/O and no signal handling here: the caller passes a `should_stop` callback (the CLI wires
it to SIGINT/SIGTERM) and decides what to write. `fit` keeps the best weights seen on validation
and restores them at the end, so its model is the selected one, never the last epoch's.

`train_classifier` is the whole recipe the CLI, the estimator and the benchmarks share: `fit`, then
weigh naive Bayes in and calibrate on validation, and ship a fresh model trained on training +
validation for the epoch count validation chose (`fit_with_refit` trains it alongside `fit`).
Validation picks every number; the test split none.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from textclf.calibration import Blend, fit_blend
from textclf.config import ModelConfig, TrainConfig
from textclf.device import resolve_device
from textclf.errors import TrainingInterrupted
from textclf.features import to_torch
from textclf.model import MLP
from textclf.naive_bayes import complement_nb_weights
from textclf.optim import LazyAdamW
from textclf.progress import bar, say

EVAL_BATCH = 2048


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass
class FitResult:
    model: MLP
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    device: str = "cpu"
    refit: MLP | None = None  # trained alongside on training + validation (`fit_with_refit`)

    @property
    def best(self) -> EpochStats:
        return self.history[self.best_epoch - 1]


@dataclass
class Trained:
    """What `train_classifier` hands on.

    `model` is the one to ship. When it was refit on training + validation, validation can no
    longer judge it, so validation metrics come from `validation_model`: the same recipe trained
    on the training split alone.
    """

    model: MLP
    validation_model: MLP
    selection: FitResult
    blend: Blend
    refit_examples: int = 0

    def summary(self) -> dict[str, Any]:
        """JSON-ready record of how the model was chosen, for the artifact's metadata."""
        return {
            "history": [vars(h) for h in self.selection.history],
            "best_epoch": self.selection.best_epoch,
            "device": self.selection.device,
            "blend": self.blend.as_dict(),
            "refit": {"epochs": self.selection.best_epoch, "examples": self.refit_examples}
            if self.refit_examples
            else None,
        }


def train_classifier(
    x_train: sp.csr_matrix,
    y_train: np.ndarray,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    *,
    n_labels: int,
    config: TrainConfig,
    n_bigrams: int = 0,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> Trained:
    """Early-stopped fit with the refit alongside, then naive Bayes and temperature on validation.

    The refit sees ~10% more labelled posts than the selection run, which is worth ~0.5 points on
    20 Newsgroups; validation has already spent its say (epochs, scale, NB weights) on the model
    trained without it. The last `n_bigrams` columns of `x` are word pairs: only the second
    naive Bayes term reads them, and only if validation finds it worth its cost
    (`TrainConfig.bigram_min_gain`); `Trained.model.config.n_features` says which columns the
    shipped model reads.
    """
    words = x_train.shape[1] - n_bigrams
    train, val = _Columns.split(x_train, words), _Columns.split(x_val, words)
    everything = (train.stacked(val), np.concatenate([y_train, y_val])) if config.refit else None
    selection = fit_with_refit(
        train.words,
        y_train,
        val.words,
        y_val,
        n_labels=n_labels,
        config=config,
        progress=progress,
        should_stop=should_stop,
        refit_on=None if everything is None else (everything[0].words, everything[1]),
    )
    nb = _NaiveBayes.fit(train, y_train, n_labels, config)
    val_logits = predict_logits(selection.model, val.words, selection.device)
    blend = _weigh(val_logits, nb, val, y_val, config, progress)
    nb = nb.keeping(blend)
    validation_model = _blended(selection.model, nb, blend)
    if selection.refit is None or everything is None:
        return Trained(validation_model, validation_model, selection, blend)
    nb_all = _NaiveBayes.fit(everything[0], everything[1], n_labels, config).keeping(blend)
    shipped = _blended(selection.refit, nb_all, blend)
    return Trained(shipped, validation_model, selection, blend, len(everything[1]))


@dataclass
class _Columns:
    """A feature matrix as the first layer's word columns and the word-pair columns."""

    words: sp.csr_matrix
    pairs: sp.csr_matrix | None

    @classmethod
    def split(cls, x: sp.csr_matrix, words: int) -> _Columns:
        if words == x.shape[1]:
            return cls(x, None)
        return cls(x[:, :words], x[:, words:])

    def stacked(self, below: _Columns) -> _Columns:
        """These rows, then `below`'s (training + validation, for the refit)."""
        pairs = None
        if self.pairs is not None and below.pairs is not None:
            pairs = sp.vstack([self.pairs, below.pairs], format="csr")
        return _Columns(sp.vstack([self.words, below.words], format="csr"), pairs)


@dataclass
class _NaiveBayes:
    """The closed-form terms: over the word columns (`words`) and over the pairs (`pairs`)."""

    words: np.ndarray | None
    pairs: np.ndarray | None

    @classmethod
    def fit(cls, x: _Columns, y: np.ndarray, n_labels: int, config: TrainConfig) -> _NaiveBayes:
        def weights(part: sp.csr_matrix | None) -> np.ndarray | None:
            if part is None or not config.naive_bayes_alpha:
                return None
            return complement_nb_weights(part, y, n_labels, config.naive_bayes_alpha)

        return cls(weights(x.words), weights(x.pairs))

    def keeping(self, blend: Blend) -> _NaiveBayes:
        """Only the terms the blend gives weight to."""
        return _NaiveBayes(
            self.words if blend.nb_weight > 0 else None,
            self.pairs if blend.bigram_weight > 0 else None,
        )


def _weigh(
    logits: np.ndarray,
    nb: _NaiveBayes,
    val: _Columns,
    y: np.ndarray,
    config: TrainConfig,
    progress: bool,
) -> Blend:
    """The validation blend; the pair term goes if it saves under `bigram_min_gain` of the
    log-loss without it."""

    def scores(weights: np.ndarray | None, x: sp.csr_matrix | None) -> np.ndarray | None:
        return None if weights is None or x is None else np.asarray(x @ weights)

    words = scores(nb.words, val.words)
    blend = without = fit_blend(logits, words, y)
    pairs = scores(nb.pairs, val.pairs)
    if pairs is not None:
        blend = fit_blend(logits, words, y, pairs)
        # A validation split fitted perfectly already (log-loss 0) leaves the pairs nothing to save.
        before = without.val_loss_after
        gain = 1 - blend.val_loss_after / before if before > 0 else 0.0
        keep = gain >= config.bigram_min_gain
        say(
            progress,
            f"word-pair naive Bayes: validation log-loss {without.val_loss_after:.4f} -> "
            f"{blend.val_loss_after:.4f} ({gain:.1%}; "
            f"{'kept' if keep else f'dropped, under {config.bigram_min_gain:.0%}'})",
        )
        blend = blend if keep else without
    say(
        progress,
        f"validation log-loss {blend.val_loss_before:.4f} -> {blend.val_loss_after:.4f}"
        f" (logit scale {blend.scale:.3f}, naive Bayes weight {blend.nb_weight:.3f}"
        + (f", word pairs {blend.bigram_weight:.3f})" if blend.bigram_weight else ")"),
    )
    return blend


def refit(
    x: sp.csr_matrix,
    y: np.ndarray,
    *,
    epochs: int,
    n_labels: int,
    config: TrainConfig,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> MLP:
    """Train a fresh model for exactly `epochs` epochs and keep the last weights.

    Nothing is held out, so nothing can pick an epoch here: the count comes from `fit`. This is
    the model `fit_with_refit` trains alongside, on its own.
    """
    run = _Run(x, y, n_labels, config, _prepare(config))
    for epoch in range(1, epochs + 1):
        loss, acc = run.epoch(epoch, progress, should_stop)
        say(progress, f"refit epoch {epoch:>2}/{epochs}  loss {loss:.4f}  acc {acc:.3f}")
    return run.model.eval()


def fit(
    x_train: sp.csr_matrix,
    y_train: np.ndarray,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    *,
    n_labels: int,
    config: TrainConfig,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> FitResult:
    """Train an MLP and return it with the weights of its best validation epoch."""
    run = _Run(x_train, y_train, n_labels, config, _prepare(config))
    return _select(run, x_val, y_val, progress, should_stop)


def fit_with_refit(
    x_train: sp.csr_matrix,
    y_train: np.ndarray,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    *,
    refit_on: tuple[sp.csr_matrix, np.ndarray] | None,
    n_labels: int,
    config: TrainConfig,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> FitResult:
    """`fit`, with a second, identically seeded model training on `refit_on` (training +
    validation) in a second thread; `FitResult.refit` is that model as it was after the
    selected epoch. Without `refit_on`, just `fit`.

    Torch releases the GIL and this narrow model gains nothing from intra-op threads, so on two
    cores the refit costs little wall time: two independent runs in two threads finish 1.9x
    faster than one after the other. The refit follows a step behind (it has ~10% more texts per
    epoch) and never makes the selection run wait, except at the end for the selected epoch.
    """
    if refit_on is None:
        return fit(
            x_train,
            y_train,
            x_val,
            y_val,
            n_labels=n_labels,
            config=config,
            progress=progress,
            should_stop=should_stop,
        )
    device = _prepare(config)
    run = _Run(x_train, y_train, n_labels, config, device)
    side = _Run(*refit_on, n_labels, config, device)
    result, side_state = _select_followed(run, side, x_val, y_val, progress, should_stop)
    side.model.load_state_dict(side_state)
    result.refit = side.model.eval()
    return result


def _select_followed(
    run: _Run,
    side: _Run,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    progress: bool,
    should_stop: Callable[[], bool],
) -> tuple[FitResult, dict[str, torch.Tensor]]:
    """`_select` over `run` while `side` follows in a thread; `side`'s state at the selected
    epoch comes back with the result. An error in the selection run stops the follower at once;
    one in the follower is raised here when the selection run is done."""
    verdicts = _Verdicts()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="textclf-refit") as pool:
        follower = pool.submit(_follow, side, verdicts, should_stop)
        try:
            result = _select(run, x_val, y_val, progress, should_stop, on_epoch=verdicts.post)
        except BaseException:
            verdicts.finish(0)  # nothing more is needed from the follower: let it stop now
            raise
        verdicts.finish(result.best_epoch)
        side_state = follower.result()
    assert side_state is not None  # the selected epoch is at least the first
    return result, side_state


def _prepare(config: TrainConfig) -> torch.device:
    """The device to train on, with torch's thread count set: before any run is built."""
    device = resolve_device(config.device)
    _set_threads(config.threads)
    return device


def _select(
    run: _Run,
    x_val: sp.csr_matrix,
    y_val: np.ndarray,
    progress: bool,
    should_stop: Callable[[], bool],
    on_epoch: Callable[[int, bool], None] = lambda epoch, best: None,
) -> FitResult:
    """The early-stopping loop over `run`; `on_epoch(epoch, is_best)` hears each verdict as soon
    as validation gives it, and the model ends with its best epoch's weights."""
    config = run.config
    result = FitResult(model=run.model, device=str(run.device))
    best_state: dict[str, torch.Tensor] = {}
    best_key, stale = (-1.0, 0.0), 0
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        loss, acc = run.epoch(epoch, progress, should_stop)
        val_loss, val_acc = evaluate_loss(run.model, x_val, y_val, run.device)
        stats = EpochStats(epoch, loss, acc, val_loss, val_acc, time.perf_counter() - start)
        result.history.append(stats)
        is_best = (val_acc, -val_loss) > best_key
        on_epoch(epoch, is_best)
        if is_best:
            best_key, result.best_epoch, stale = (val_acc, -val_loss), epoch, 0
            best_state = _snapshot(run.model)
        else:
            stale += 1
        say(progress, _epoch_line(stats, is_best))
        if stale >= config.patience:
            break
    run.model.load_state_dict(best_state)
    run.model.eval()
    return result


class _Verdicts:
    """The selection run's word, epoch by epoch, on whether that epoch is its best so far."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._best: dict[int, bool] = {}
        self._final: int | None = None

    def post(self, epoch: int, best: bool) -> None:
        with self._changed:
            self._best[epoch] = best
            self._changed.notify_all()

    def finish(self, best_epoch: int) -> None:
        with self._changed:
            self._final = best_epoch
            self._changed.notify_all()

    def needed(self, epoch: int) -> bool:
        """False once the selection run has ended before choosing `epoch`."""
        final = self._final
        return final is None or epoch <= final

    def wait(self, epoch: int) -> bool:
        """Whether `epoch` was a best epoch, once the selection run has scored it."""
        with self._changed:
            self._changed.wait_for(lambda: epoch in self._best or self._final is not None)
            return self._best.get(epoch, False)


def _follow(
    side: _Run, verdicts: _Verdicts, should_stop: Callable[[], bool]
) -> dict[str, torch.Tensor] | None:
    """Train `side` epoch by epoch behind the selection run; keep its state at each best epoch."""
    state = None
    for epoch in range(1, side.config.epochs + 1):
        if not verdicts.needed(epoch):
            break

        def stop(epoch: int = epoch) -> bool:
            return not verdicts.needed(epoch) or should_stop()

        try:
            side.epoch(epoch, False, stop)
        except TrainingInterrupted:
            if not verdicts.needed(epoch):
                break  # an epoch after the selected one: not needed
            raise
        if verdicts.wait(epoch):
            state = _snapshot(side.model)
    return state


class _Run:
    """One model in training: its weights, optimisers, shuffling and dropout randomness.

    Everything random is seeded here and owned by the run, so two runs can train side by side
    in threads and each still gives the same weights as when it trains alone.
    """

    def __init__(
        self,
        x: sp.csr_matrix,
        y: np.ndarray,
        n_labels: int,
        config: TrainConfig,
        device: torch.device,
    ) -> None:
        self.x, self.y, self.config, self.device = x, y, config, device
        torch.manual_seed(config.seed)  # the initial weights
        self.model = _new_model(x.shape[1], n_labels, config, device)
        self.model.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.optimizers = _optimizers(self.model, config)
        self.rng = np.random.default_rng(config.seed)

    def epoch(
        self, epoch: int, progress: bool, should_stop: Callable[[], bool]
    ) -> tuple[float, float]:
        return _train_epoch(
            self.model,
            self.optimizers,
            self.x,
            self.y,
            self.config,
            self.rng,
            epoch,
            progress,
            should_stop,
            self.device,
        )


def _new_model(n_features: int, n_labels: int, config: TrainConfig, device: torch.device) -> MLP:
    model_config = ModelConfig(
        n_features=n_features, n_labels=n_labels, hidden=config.hidden, dropout=config.dropout
    )
    return MLP(model_config).to(device)


@torch.no_grad()
def _blended(model: MLP, nb: _NaiveBayes, blend: Blend) -> MLP:
    """A copy of `model` whose logits are `scale * logits + nb_weight * (x @ nb.words)`, plus
    `bigram_weight * (pairs @ nb.pairs)` when the blend keeps the pair term."""
    pairs = 0 if nb.pairs is None else nb.pairs.shape[0]
    config = dataclasses.replace(
        model.config,
        wide=nb.words is not None,
        n_features=model.config.n_features + pairs,
        n_bigrams=pairs,
    )
    out = MLP(config).to(next(model.parameters()).device)
    state = model.state_dict()
    if nb.words is not None:
        nb_columns = torch.from_numpy(nb.words * np.float32(blend.nb_weight))
        nb_columns = nb_columns.to(state["input.weight"])
        state["input.weight"] = torch.cat([state["input.weight"], nb_columns], dim=1)
        state["input.bias"] = torch.cat(
            [state["input.bias"], nb_columns.new_zeros(nb.words.shape[1])]
        )
    if nb.pairs is not None:
        state["bigrams"] = torch.from_numpy(nb.pairs * np.float32(blend.bigram_weight))
        state["bigrams"] = state["bigrams"].to(state["input.weight"])
    out.load_state_dict(state)
    out.output.weight.mul_(blend.scale)
    out.output.bias.mul_(blend.scale)
    return out.eval()


def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def _optimizers(model: MLP, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """Lazy AdamW for the huge first layer (only rows in the batch move), AdamW for the rest."""
    return [
        LazyAdamW(
            model.sparse_parameters(),
            lr=config.first_layer_lr or config.lr,
            weight_decay=config.weight_decay,
        ),
        torch.optim.AdamW(model.dense_parameters(), lr=config.lr, weight_decay=config.weight_decay),
    ]


def _train_epoch(
    model: MLP,
    optimizers: list[torch.optim.Optimizer],
    x: sp.csr_matrix,
    y: np.ndarray,
    config: TrainConfig,
    rng: np.random.Generator,
    epoch: int,
    progress: bool,
    should_stop: Callable[[], bool],
    device: torch.device,
) -> tuple[float, float]:
    model.train()
    order = rng.permutation(x.shape[0])
    total_loss, correct, seen = 0.0, 0, 0
    # A live bar on a terminal only; off one, the caller's line per epoch is the progress.
    starts = range(0, len(order), config.batch_size)
    for start in bar(starts, desc=f"epoch {epoch}", unit="batch", enabled=progress, leave=False):
        if should_stop():
            raise TrainingInterrupted("training interrupted; no artifact was written")
        index = order[start : start + config.batch_size]
        xb = to_torch(x[index], device)
        yb = torch.from_numpy(y[index]).to(device)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()
        total_loss += loss.item() * len(index)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(index)
    return total_loss / seen, correct / seen


@torch.inference_mode()
def predict_logits(model: MLP, x: sp.csr_matrix, device: torch.device | str = "cpu") -> np.ndarray:
    """Logits for every row of `x`, in batches, as float32 numpy (on CPU)."""
    model.eval()
    out = [
        model(to_torch(x[s : s + EVAL_BATCH], device)).float().cpu().numpy()
        for s in range(0, x.shape[0], EVAL_BATCH)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.config.n_labels), np.float32)


def evaluate_loss(
    model: MLP, x: sp.csr_matrix, y: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[float, float]:
    logits = torch.from_numpy(predict_logits(model, x, device))
    target = torch.from_numpy(y)
    loss = float(F.cross_entropy(logits, target))
    accuracy = float((logits.argmax(1) == target).float().mean())
    return loss, accuracy


def _snapshot(model: MLP) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in copy.copy(model.state_dict()).items()}


def _epoch_line(stats: EpochStats, best: bool) -> str:
    mark = " *" if best else ""
    return (
        f"epoch {stats.epoch:>2}  loss {stats.train_loss:.4f}  acc {stats.train_accuracy:.3f}  "
        f"val_loss {stats.val_loss:.4f}  val_acc {stats.val_accuracy:.4f}  "
        f"{stats.seconds:.1f}s{mark}"
    )

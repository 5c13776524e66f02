"""The fit loop: minibatch Adam on sparse TF-IDF batches, early stopping on the validation split.

No file I/O and no signal handling here: the caller passes a `should_stop` callback (the CLI wires
it to SIGINT/SIGTERM) and decides what to write. The best weights seen on validation are kept and
restored at the end, so the returned model is the selected one, never the last epoch's.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from textclf.config import ModelConfig, TrainConfig
from textclf.device import resolve_device
from textclf.errors import TrainingInterrupted
from textclf.features import to_torch
from textclf.model import MLP
from textclf.optim import LazyAdamW

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

    @property
    def best(self) -> EpochStats:
        return self.history[self.best_epoch - 1]


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
    device = resolve_device(config.device)
    _seed(config.seed, config.threads)
    model_config = ModelConfig(
        n_features=x_train.shape[1], n_labels=n_labels, hidden=config.hidden, dropout=config.dropout
    )
    model = MLP(model_config).to(device)
    optimizers = _optimizers(model, config)
    rng = np.random.default_rng(config.seed)
    result = FitResult(model=model, device=str(device))
    best_state, best_key, stale = None, (-1.0, 0.0), 0
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        loss, acc = _train_epoch(
            model, optimizers, x_train, y_train, config, rng, epoch, progress, should_stop, device
        )
        val_loss, val_acc = evaluate_loss(model, x_val, y_val, device)
        stats = EpochStats(epoch, loss, acc, val_loss, val_acc, time.perf_counter() - start)
        result.history.append(stats)
        key = (val_acc, -val_loss)
        if key > best_key:
            best_key, best_state, result.best_epoch, stale = key, _snapshot(model), epoch, 0
        else:
            stale += 1
        if progress:
            tqdm.write(_epoch_line(stats, result.best_epoch == epoch))
        if stale >= config.patience:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return result


def _seed(seed: int, threads: int | None) -> None:
    torch.manual_seed(seed)
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
    bar = tqdm(
        total=len(order), desc=f"epoch {epoch}", unit="doc", disable=not progress, leave=False
    )
    with bar:
        for start in range(0, len(order), config.batch_size):
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
            bar.update(len(index))
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
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

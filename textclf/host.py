"""The model's inference pass in NumPy and SciPy: the same weights, with no torch in the process.

A process that only scores on the CPU (a `textclf batch` worker, a Ray actor) would spend ~2 s
importing torch before its first row, on every core at once, and ~150 MiB of memory each; on a
30,000-row file that start-up is a third of the whole run. `load` verifies the folder exactly as
`textclf.load` does (`textclf.artifact_files`) and views the memory-mapped weights in place.

The arithmetic follows `MLP._infer` step for step (the sparse product with the bias, the wide
columns added before the output bias), so the logits are torch's to float32 rounding: the dense
products' BLAS (OpenBLAS here, MKL in torch) may sum in another order, a unit or so in the last
place; the softmax runs in float64. Probabilities agree with `Predictor`'s within 1e-5 (~1.3e-6
measured on the test models), so labels agree except where two scores tie that closely
(tests/test_host.py). Explanations use the same arrays (`textclf.explain`).

Only float32 weights are scored (what `textclf train` writes); others are refused by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textclf.artifact_files import WEIGHTS, ArtifactFiles, read_files
from textclf.errors import ArtifactError
from textclf.features import Encoded, TextFeatures
from textclf.tensor_file import numpy_view
from textclf.texts import as_text_list

if TYPE_CHECKING:
    import torch

    from textclf.model import MLP

BATCH_SIZE = 1024  # as `Predictor`'s: the same rows go through the same products


@dataclass(frozen=True)
class HostWeights:
    """The MLP's parameters as NumPy arrays (views, never copies, of the mapped file or of a CPU
    model's tensors; a GPU model is copied to the host once)."""

    input: np.ndarray  # (word features, first width + n_wide), one row per term
    input_bias: np.ndarray
    hidden: list[tuple[np.ndarray, np.ndarray]]  # (out, in) weights as nn.Linear keeps them
    output: np.ndarray
    output_bias: np.ndarray
    bigrams: np.ndarray | None  # (word pairs, labels): the naive Bayes term, or None
    n_wide: int

    @classmethod
    def of(cls, model: MLP) -> HostWeights:
        return cls.from_arrays(
            {name: _host(t) for name, t in model.state_dict().items()}, model.n_wide
        )

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_wide: int) -> HostWeights:
        n_hidden = sum(1 for name in arrays if name.startswith("hidden.")) // 2
        hidden = [
            (arrays[f"hidden.{i}.weight"], arrays[f"hidden.{i}.bias"]) for i in range(n_hidden)
        ]
        return cls(
            input=arrays["input.weight"],
            input_bias=arrays["input.bias"],
            hidden=hidden,
            output=arrays["output.weight"],
            output_bias=arrays["output.bias"],
            bigrams=arrays.get("bigrams"),
            n_wide=n_wide,
        )

    def logits(self, rows: Encoded) -> np.ndarray:
        """The model's logits for encoded rows, float32 (n_rows, n_labels)."""
        if self.bigrams is None:
            return self.head(_csr(rows) @ self.input + self.input_bias)
        words, pairs = _split_columns(rows, self.input.shape[0])
        logits = self.head(_csr(words) @ self.input + self.input_bias)
        logits += _csr(pairs) @ self.bigrams
        return logits

    def head(self, first: np.ndarray) -> np.ndarray:
        """The layers after the first, from its output (bias included), as `MLP._infer` runs
        them."""
        n_wide = self.n_wide
        h = np.maximum(first[:, :-n_wide] if n_wide else first, 0.0)
        for weight, bias in self.hidden:
            h = np.maximum(h @ weight.T + bias, 0.0)
        if not n_wide:
            return h @ self.output.T + self.output_bias
        return (first[:, -n_wide:] + h @ self.output.T) + self.output_bias


class HostModel:
    """A verified model folder, scored in NumPy. Build it with `textclf.host.load(path)`."""

    def __init__(self, files: ArtifactFiles, weights: HostWeights) -> None:
        self.files, self.weights = files, weights
        self.labels: tuple[str, ...] = tuple(files.manifest["labels"])
        self.vectorizer: TextFeatures = files.vectorizer

    @property
    def manifest(self) -> dict[str, Any]:
        return self.files.manifest

    @property
    def version(self) -> str:
        return str(self.files.manifest["version"])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape (len(texts), len(labels)), columns in `labels` order, float32
        (`Predictor.predict_proba`'s to 1e-5); a TypeError names the first item that is not a
        string."""
        texts = as_text_list(texts)
        parts = [
            probabilities(self.weights.logits(self.vectorizer.encode(texts[s : s + BATCH_SIZE])))
            for s in range(0, len(texts), BATCH_SIZE)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), np.float32)


def load(path: Path | str) -> HostModel:
    """Load and verify a model folder for NumPy scoring; a broken folder raises ArtifactError
    naming the file, as `textclf.load` does."""
    files = read_files(path)
    odd = sorted({spec.dtype for spec in files.specs.values()} - {"F32"})
    if odd:
        raise ArtifactError(
            f"weights are {', '.join(odd)}; textclf scores float32 weights (what `textclf train` "
            "writes): save the model again in float32",
            path=files.root / WEIGHTS,
        )
    arrays = {name: numpy_view(files.weights, spec) for name, spec in files.specs.items()}
    n_wide = files.config.n_labels if files.config.wide else 0
    return HostModel(files, HostWeights.from_arrays(arrays, n_wide))


def one_blas_thread() -> Any:
    """Hold this process's BLAS to one thread (threadpoolctl: NumPy has no setting of its own),
    for a process sharing the cores with other scorers. A process-wide switch, so thrown by
    entry points only (a batch worker, a Ray actor, `textclf batch --workers 0`); as a context
    manager it restores the previous setting."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over each row, computed in float64, returned as float32 (scipy.special's equals
    it, but importing it adds ~0.1 s to every worker's start-up)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z.astype(np.float32)


def _split_columns(rows: Encoded, at: int) -> tuple[Encoded, Encoded]:
    """The rows' columns before `at`, and those from `at` on (renumbered from 0); each row
    keeps its entries' order, as `textclf.model.split_columns` does."""
    left = rows.indices < at
    before = np.concatenate([[0], np.cumsum(left)])[rows.indptr]
    right = ~left
    return (
        Encoded(before, rows.indices[left], rows.data[left], at),
        Encoded(
            rows.indptr - before, rows.indices[right] - at, rows.data[right], rows.n_features - at
        ),
    )


def _csr(rows: Encoded) -> Any:
    import scipy.sparse as sp

    return sp.csr_matrix(
        (rows.data, rows.indices, rows.indptr), shape=(rows.n_rows, rows.n_features)
    )


def _host(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()

"""In-process inference: texts in, typed `Prediction`s out.

The same objects come back from the HTTP client, so code can switch between a local model and the
service without changes. Inference runs under `torch.inference_mode`, batched, and holds no mutable
state, so one predictor can serve many threads at once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import overload

import numpy as np
import torch

from textclf import artifact as artifact_io
from textclf.artifact import Artifact
from textclf.explain import Explainer
from textclf.features import Encoded, to_torch
from textclf.schemas import MAX_EXPLAIN_TERMS, LabelScore, ModelInfo, ModelRef, Prediction
from textclf.texts import as_text_list  # re-exported: the estimator imports it from here

BATCH_SIZE = 1024


class Predictor:
    """A loaded model. Build it with `textclf.load(path)`."""

    def __init__(self, artifact: Artifact, *, device: torch.device | str = "cpu") -> None:
        self.artifact = artifact
        self.device = torch.device(device)
        self._model = artifact.model.to(self.device).eval()
        self._vectorizer = artifact.vectorizer
        self.labels: tuple[str, ...] = artifact.labels

    @cached_property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.artifact.manifest["name"], version=self.artifact.version)

    @cached_property
    def info(self) -> ModelInfo:
        manifest = self.artifact.manifest
        return ModelInfo(
            name=manifest["name"],
            version=manifest["version"],
            format_version=manifest["format_version"],
            labels=list(self.labels),
            created_at=datetime.fromisoformat(manifest["created_at"]),
            metrics=manifest.get("metrics", {}),
            training_config=manifest.get("training_config", {}),
            data=manifest.get("data", {}),
        )

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape (len(texts), len(labels)), columns in `labels` order."""
        texts = as_text_list(texts)
        if 0 < len(texts) <= BATCH_SIZE:
            return self._proba_batch(texts)  # the service's case: no copy into a new array
        parts = [
            self._proba_batch(texts[s : s + BATCH_SIZE]) for s in range(0, len(texts), BATCH_SIZE)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), np.float32)

    @overload
    def predict(  # type: ignore[overload-overlap]
        self, texts: str, top_k: int = 1, *, explain: bool = False, explain_terms: int = 10
    ) -> Prediction: ...
    @overload
    def predict(
        self,
        texts: Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> list[Prediction]: ...

    def predict(
        self,
        texts: str | Sequence[str],
        top_k: int = 1,
        *,
        explain: bool = False,
        explain_terms: int = 10,
    ) -> Prediction | list[Prediction]:
        """One text gives one Prediction, a list gives a list in the same order. With
        `explain`, each carries its `explanation`: its `explain_terms` strongest terms
        (`textclf.explain` says what a term's weight means)."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else texts
        if explain:
            predictions = self.explain(batch, top_k, explain_terms)
        else:
            predictions = self.to_predictions(self.predict_proba(batch), top_k)
        return predictions[0] if single else predictions

    def explain(
        self, texts: Sequence[str], top_k: int = 1, explain_terms: int = 10
    ) -> list[Prediction]:
        """Predictions with their explanations (what `predict(..., explain=True)` returns for a
        list; the service's scorers call this)."""
        if not 1 <= explain_terms <= MAX_EXPLAIN_TERMS:
            raise ValueError(
                f"explain_terms must be 1 to {MAX_EXPLAIN_TERMS}, got {explain_terms}"
            )
        texts = as_text_list(texts)
        out: list[Prediction] = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = texts[start : start + BATCH_SIZE]
            encoded = self._vectorizer.encode(batch)  # once, for the scores and the terms
            probs = self._proba_encoded(encoded)
            labels = probs.argmax(1).tolist()
            explanations = self._explainer.explain(batch, labels, explain_terms, encoded)
            out += [
                Prediction.model_construct(
                    label=p.label, score=p.score, top_k=p.top_k, explanation=terms
                )
                for p, terms in zip(self.to_predictions(probs, top_k), explanations, strict=True)
            ]
        return out

    @torch.inference_mode()
    def _proba_encoded(self, features: Encoded) -> np.ndarray:
        """`_proba_batch` on rows already encoded (the same steps)."""
        logits = self._model(to_torch(features, self.device))
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    @cached_property
    def _explainer(self) -> Explainer:
        return Explainer(self._vectorizer, self._model)

    def to_predictions(self, probs: np.ndarray, top_k: int) -> list[Prediction]:
        """Typed results from a probability matrix (shared with the service's batched path)."""
        return to_predictions(probs, self.labels, top_k)

    @torch.inference_mode()
    def _proba_batch(self, texts: list[str]) -> np.ndarray:
        features = self._vectorizer.encode(texts)
        logits = self._model(to_torch(features, self.device))
        return torch.softmax(logits.float(), dim=1).cpu().numpy()


def load(
    path: Path | str, *, device: torch.device | str = "cpu", threads: int | None = None
) -> Predictor:
    """Load and verify a model folder written by `textclf train`.

    `threads` sets torch's CPU threads for the whole process (torch has no per-model setting).
    1 is fastest here: the vectorizer, single-threaded, is over 90% of predict time, and a second
    OpenMP thread stalls whenever another process wants the core. None leaves torch's default.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    return Predictor(artifact_io.load(path, device=device), device=device)


def to_predictions(probs: np.ndarray, labels: Sequence[str], top_k: int) -> list[Prediction]:
    """One `Prediction` per row of `probs` (columns in `labels` order), with its `top_k` best."""
    k = min(top_k, len(labels))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    out = []
    with gc_paused():
        for row, idx in zip(probs.tolist(), order.tolist(), strict=True):
            top = [LabelScore.model_construct(label=labels[i], score=row[i]) for i in idx]
            out.append(
                Prediction.model_construct(label=top[0].label, score=top[0].score, top_k=top)
            )
    return out


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (restored as it was on the way out).

    A batch of 1,024 predictions allocates ~6,000 tracked objects, which triggers several
    collections, and each one walks the young objects and, now and then, every object the
    process holds. None of them can find garbage here (the new objects form no cycles), yet in a
    process holding a corpus and a model they took 18 of `predict`'s 22 us per text in building
    its results (4 us with collection paused)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

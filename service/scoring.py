"""Scorers: where a worker runs its model. One interface, two places.

The batcher (`service.batcher`) hands a scorer a batch of jobs, each a request's texts, top_k
and explain_terms (0: no explanations), on one of its lanes, and awaits each job's outcome: the
top labels and predictions JSON, or the error that job alone raised. `ThreadScorer` runs the
model in this process, one thread per lane; `ProcessScorer` (`service.process_scorer`) in a
child process, one channel per lane. The batcher never needs to know which.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from service.encoding import PredictionsJSON, encode_predictions
from service.settings import ScorerKind as Kind
from textclf.schemas import ModelInfo, ModelRef, Prediction

logger = logging.getLogger("textclf.service")

LANES = 2  # the batcher's lanes: small requests, and bulk ones (service.batcher)
Job = tuple[list[str], int, int]  # a request's texts, top_k and explain_terms (0: none)
Outcome = tuple[list[str], bytes] | Exception


class ScorerUnavailable(RuntimeError):
    """The model cannot take work right now (its process died, or it is being replaced); the
    service answers 503, and a retry is served by the next model."""


class Scorer(Protocol):
    """A loaded model that scores batches of jobs, at most one batch in flight per lane."""

    kind: Kind
    # Whether the model's work takes turns with the event loop under the GIL: then waiting a
    # moment for a fuller batch pays (Settings.batch_wait_ms).
    shares_the_gil: bool
    labels: tuple[str, ...]
    ref: ModelRef
    info: ModelInfo

    async def start(self) -> None:
        """Attach to the running event loop; once, before the first `score`."""

    async def score(self, jobs: list[Job], lane: int) -> list[Outcome]:
        """Each job's outcome, in order; raises `ScorerUnavailable` if none can be scored."""
        ...

    def close(self, *, wait: bool = False) -> None:
        """Stop once the batches in flight are answered (`wait`: return when stopped)."""


class Model(Protocol):
    """What scoring needs of a model in this process (`textclf.Predictor` has it)."""

    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def ref(self) -> ModelRef: ...
    @property
    def info(self) -> ModelInfo: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def explain(
        self, texts: Sequence[str], top_k: int = 1, explain_terms: int = 10
    ) -> list[Prediction]: ...


def score_jobs(model: Model, encoder: PredictionsJSON, jobs: list[Job]) -> list[Outcome]:
    """One `predict_proba` over every job's texts, then each job's labels and JSON. If the
    batch fails, each job is scored alone, so one failing request does not fail the others that
    shared its batch. Both scorers run this: in a lane's thread, or in the child."""
    try:
        return list(_score(model, encoder, jobs))
    except Exception as exc:
        if len(jobs) == 1:
            return [exc]
        logger.warning("batch of %d requests failed (%s); retrying them one by one", len(jobs), exc)
        return [_score_alone(model, encoder, job) for job in jobs]


def _score(
    model: Model, encoder: PredictionsJSON, jobs: list[Job]
) -> list[tuple[list[str], bytes]]:
    if any(explain_terms for _, _, explain_terms in jobs):
        return _score_explained(model, encoder, jobs)
    probs = model.predict_proba([text for texts, _, _ in jobs for text in texts])
    return encoder.blocks(probs, [(len(texts), top_k) for texts, top_k, _ in jobs])


def _score_explained(
    model: Model, encoder: PredictionsJSON, jobs: list[Job]
) -> list[tuple[list[str], bytes]]:
    """A batch where some requests asked for explanations: those are explained one request at
    a time (a term batch per text), the rest scored together as usual."""
    plain = [job for job in jobs if not job[2]]
    written = iter(_score(model, encoder, plain) if plain else [])
    out = []
    for texts, top_k, explain_terms in jobs:
        if not explain_terms:
            out.append(next(written))
            continue
        predictions = model.explain(texts, top_k, explain_terms)
        out.append(([p.label for p in predictions], encode_predictions(predictions)))
    return out


def _score_alone(model: Model, encoder: PredictionsJSON, job: Job) -> Outcome:
    try:
        return _score(model, encoder, [job])[0]
    except Exception as exc:
        return exc


class ThreadScorer:
    """A model in this process, scored on one thread per lane, off the event loop.

    One process instead of two (less memory), but the model's Python work and the event loop
    take turns under the GIL. The model holds no mutable state, so lanes share it."""

    kind: Kind = "thread"
    shares_the_gil = True

    def __init__(self, model: Model) -> None:
        self._model = model
        self._encoder = PredictionsJSON(model.labels)
        self.labels, self.ref, self.info = model.labels, model.ref, model.info
        self._threads = [
            ThreadPoolExecutor(1, thread_name_prefix=f"textclf-lane{lane}") for lane in range(LANES)
        ]
        self._closed = False

    async def start(self) -> None:
        """Nothing to attach: the threads take work from any event loop."""

    async def score(self, jobs: list[Job], lane: int) -> list[Outcome]:
        if self._closed:
            raise ScorerUnavailable("this model was replaced or the server is stopping; retry")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._threads[lane], score_jobs, self._model, self._encoder, jobs
        )

    def close(self, *, wait: bool = False) -> None:
        self._closed = True
        for thread in self._threads:
            thread.shutdown(wait=wait)

"""Non-blocking inference: one model holder and a micro-batcher in front of one worker thread.

Request handlers never call the predictor. They hand their texts to `MicroBatcher.predict` and
await a future. The batcher keeps at most one predictor call in flight on its own thread; whatever
arrives meanwhile queues up and goes in the *next* call, joined into one `predict_proba`. So:

- the event loop never blocks on TF-IDF or torch, and keeps parsing requests while a batch runs;
- a lone request is dispatched at once (no batching window, no added latency at low load);
- under load, the fixed per-call cost (vectorizer setup, sparse conversion, torch dispatch) is
  paid once per batch instead of once per request;
- the predictor only ever runs on one thread, so concurrent requests cannot race inside it.

The predictor lives in a `ModelHolder`; each batch reads it once, so a later hot reload can swap
the holder's predictor atomically while in-flight batches finish on the old one, and every
response names the model (`ModelRef`) that actually produced it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from service.errors import NotReady
from textclf.predictor import Predictor
from textclf.schemas import ModelRef, Prediction

logger = logging.getLogger("textclf.service")


class ModelHolder:
    """The one reference to the live predictor, kept on `app.state` (never a module global)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def swap(self, predictor: Predictor) -> Predictor:
        """Serve `predictor` from the next batch on; returns the old one (in-flight batches keep
        using it)."""
        old, self.predictor = self.predictor, predictor
        return old


class Result(NamedTuple):
    model: ModelRef
    predictions: list[Prediction]


@dataclass(slots=True)
class _Job:
    texts: list[str]
    top_k: int
    future: asyncio.Future[Result]


_Outcome = list[Prediction] | BaseException


class MicroBatcher:
    """Coalesces concurrent `predict` calls into one predictor call on a dedicated thread."""

    def __init__(
        self,
        holder: ModelHolder,
        *,
        max_batch_texts: int = 1024,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._holder = holder
        self._max_batch_texts = max_batch_texts
        self._on_batch = on_batch
        self._queue: deque[_Job] = deque()
        self._busy = False
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "textclf-predict")

    async def predict(self, texts: list[str], top_k: int) -> Result:
        """Predictions for `texts` in order, from whichever batch they end up in."""
        if self._closed:
            raise NotReady("the service is shutting down; retry on another instance")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append(_Job(texts, top_k, future))
        if not self._busy:
            self._dispatch(loop)
        return await future

    def close(self) -> None:
        """Stop accepting work, fail anything still queued, and wait for the running batch."""
        self._closed = True
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(NotReady("the service is shutting down"))
        self._executor.shutdown(wait=True)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._take()
        if not jobs:
            self._busy = False
            return
        self._busy = True
        predictor = self._holder.predictor  # read once: the whole batch uses one model
        model = predictor.ref
        done = self._executor.submit(_run_batch, predictor, [(j.texts, j.top_k) for j in jobs])
        done.add_done_callback(
            lambda f: loop.call_soon_threadsafe(self._finish, loop, model, jobs, f)
        )

    def _take(self) -> list[_Job]:
        """Queued jobs up to `max_batch_texts` texts (always at least one job, never split)."""
        jobs: list[_Job] = []
        n_texts = 0
        while self._queue:
            job = self._queue[0]
            if job.future.done():  # the client went away: skip the work
                self._queue.popleft()
                continue
            if jobs and n_texts + len(job.texts) > self._max_batch_texts:
                break
            jobs.append(self._queue.popleft())
            n_texts += len(job.texts)
        return jobs

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        model: ModelRef,
        jobs: list[_Job],
        done: concurrent.futures.Future[list[_Outcome]],
    ) -> None:
        try:
            outcomes: list[_Outcome] = done.result()
        except BaseException as exc:  # _run_batch catches per job; this is a bug or shutdown
            outcomes = [exc] * len(jobs)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.future.done():
                continue
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(Result(model, outcome))
        if self._on_batch is not None:
            self._on_batch(sum(len(j.texts) for j in jobs))
        self._dispatch(loop)


def _run_batch(predictor: Predictor, jobs: list[tuple[list[str], int]]) -> list[_Outcome]:
    """Runs on the worker thread: one `predict_proba` for all texts, then split per job."""
    texts = [text for job_texts, _ in jobs for text in job_texts]
    try:
        probs = predictor.predict_proba(texts)
    except Exception as exc:
        if len(jobs) == 1:
            return [exc]
        logger.warning("batch of %d requests failed (%s); retrying them one by one", len(jobs), exc)
        return [_run_one(predictor, job_texts, top_k) for job_texts, top_k in jobs]
    outcomes: list[_Outcome] = []
    start = 0
    for job_texts, top_k in jobs:
        stop = start + len(job_texts)
        outcomes.append(predictor.to_predictions(probs[start:stop], top_k))
        start = stop
    return outcomes


def _run_one(predictor: Predictor, texts: list[str], top_k: int) -> _Outcome:
    # One failing request must not fail the requests that happened to share its batch.
    try:
        probs: np.ndarray = predictor.predict_proba(texts)
        return predictor.to_predictions(probs, top_k)
    except Exception as exc:
        return exc

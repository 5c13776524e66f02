"""Non-blocking inference: one model holder and a micro-batcher in front of the model.

Two batchers, one per place the model can run (`Settings.scorer`):

- `LoopBatcher`, for the default child-process scorer (`service.scorer`): batches on the event
  loop itself, no thread; see its docstring.
- `MicroBatcher`, for a predictor in this process, described here.

Request handlers never call the predictor. They put their texts on the batcher's queue and await a
future. One dedicated thread takes *everything* queued (up to `max_batch_texts` texts), runs one
`predict_proba` over it, hands the results back to the event loop in one callback, and repeats;
when the queue is empty it sleeps until the next request. So:

- the event loop never blocks on TF-IDF or torch;
- a lone request is picked up at once (no batching window, no added latency at low load);
- under load, requests that arrive while a batch runs share the next one, so the fixed cost of a
  predictor call (vectorizer setup, sparse conversion, torch dispatch) and of the thread hand-off
  is paid once per batch instead of once per request. The thread takes its batch only when it
  actually runs: it needs the GIL, which it gets once the event loop has parsed every request
  that was ready, so they all join;
- the predictor only ever runs on that one thread, so concurrent requests cannot race inside it.

The predictor lives in a `ModelHolder`; each batch reads it once, so a hot reload can swap the
holder's predictor atomically while the running batch finishes on the old one, and every
response names the model (`ModelRef`) that actually produced it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from service.errors import NotReady
from service.scorer import Outcome, ProcessPredictor, ScorerDied, score_jobs
from service.settings import Scorer
from textclf.schemas import PREDICTIONS, ModelRef, Prediction

if TYPE_CHECKING:
    from service.settings import Settings
    from textclf.predictor import Predictor

    # A model in this process, or in a child process of its own (`service.scorer`). Only for
    # type checking: a worker that scores in a child process never imports torch.
    Served: TypeAlias = Predictor | ProcessPredictor


def load_predictor(settings: Settings, *, scorer: Scorer | None = None) -> Served:
    """The model at `settings.model_path`, in a child process or in this one (`scorer`, by
    default `settings.scorer`); raises `textclf.ArtifactError` saying what is wrong."""
    if (scorer or settings.scorer) == "process":
        return ProcessPredictor(
            settings.model_path, device=settings.device, threads=settings.torch_threads
        )
    import textclf

    return textclf.load(settings.model_path, device=settings.device, threads=settings.torch_threads)


def scorer_of(predictor: Served) -> Scorer:
    return "process" if isinstance(predictor, ProcessPredictor) else "thread"


def release(predictor: Served, *, wait: bool = False) -> None:
    """Let go of a replaced or retired model: a child process exits once the batches it is
    running are answered (`wait`: return when it has, if it was idle); an in-process model is
    left to the garbage collector."""
    if isinstance(predictor, ProcessPredictor):
        predictor.close(wait=wait)


class ModelHolder:
    """The one reference to the live predictor, kept on `app.state` (never a module global)."""

    def __init__(self, predictor: Served) -> None:
        self.predictor = predictor

    def swap(self, predictor: Served) -> Served:
        """Serve `predictor` from the next batch on; returns the old one (in-flight batches keep
        using it)."""
        old, self.predictor = self.predictor, predictor
        return old


class Result:
    """One request's answer: the model that produced it, the top label of each text, and the
    predictions already serialised as the JSON array the response carries (serialised where
    they were computed: with a child-process scorer, off the event loop)."""

    __slots__ = ("labels", "model", "predictions_json")

    def __init__(self, model: ModelRef, labels: list[str], predictions_json: bytes) -> None:
        self.model = model
        self.labels = labels
        self.predictions_json = predictions_json

    @property
    def predictions(self) -> list[Prediction]:
        return PREDICTIONS.validate_json(self.predictions_json)


@dataclass(slots=True)
class _Job:
    texts: list[str]
    top_k: int
    future: asyncio.Future[Result]
    loop: asyncio.AbstractEventLoop


class _Batch(NamedTuple):
    model: ModelRef | None
    jobs: list[_Job]
    outcomes: Sequence[Outcome | BaseException]


class MicroBatcher:
    """Coalesces concurrent `predict` calls into one predictor call on a dedicated thread."""

    def __init__(
        self,
        holder: ModelHolder,
        *,
        max_batch_texts: int = 1024,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._holder = holder
        self._max_batch_texts = max_batch_texts
        self._max_wait_s = max_wait_s
        self._expected = 1  # requests in the previous batch
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="textclf-predict", daemon=True)
        self._thread.start()

    async def predict(self, texts: list[str], top_k: int) -> Result:
        """Predictions for `texts` in order, from whichever batch they end up in."""
        if self._closed:
            raise NotReady("the service is shutting down; retry on another instance")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.put(_Job(texts, top_k, future, loop))
        return await future

    async def aclose(self) -> None:
        """Refuse new work, finish what is queued, and stop the thread."""
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _work(self) -> None:
        """The worker thread: batch after batch until the `None` sentinel arrives."""
        carry: _Job | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            if first is None:
                return
            jobs, carry, stop = self._take(first)
            if jobs:
                self._run(jobs)
            if stop:
                return

    def _take(self, first: _Job) -> tuple[list[_Job], _Job | None, bool]:
        """`first` and whatever else is queued, up to `max_batch_texts` texts; a request is never
        split. Returns the batch, a job that did not fit (first of the next batch), and whether
        the stop sentinel was seen.

        If the previous batch had more requests than are queued now, the clients that sent them
        are probably about to send their next ones: wait up to `max_wait_s` for as many. A lone
        client never waits (its previous batch had one request)."""
        jobs: list[_Job] = []
        n_texts = 0
        deadline = time.monotonic() + self._max_wait_s
        job: _Job | None = first
        while job is not None:
            # Reading `done()` from this thread is a plain flag read: skip requests whose client
            # went away (their future was cancelled) rather than compute for nobody.
            if not job.future.done():
                if jobs and n_texts + len(job.texts) > self._max_batch_texts:
                    return jobs, job, False
                jobs.append(job)
                n_texts += len(job.texts)
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                wait = deadline - time.monotonic()
                if len(jobs) >= self._expected or wait <= 0:
                    break
                try:
                    job = self._queue.get(timeout=wait)
                except queue.Empty:
                    break
        else:
            return jobs, None, True
        self._expected = max(len(jobs), 1)
        return jobs, None, False

    def _run(self, jobs: list[_Job]) -> None:
        predictor = self._holder.predictor  # read once: the whole batch uses one model
        try:
            assert not isinstance(predictor, ProcessPredictor)  # Lanes gives those a LoopBatcher
            outcomes = score_jobs(predictor, [(j.texts, j.top_k) for j in jobs])
            batch = _Batch(predictor.ref, jobs, outcomes)
        except BaseException as exc:  # score_jobs catches per job: this is a bug; fail the batch
            batch = _Batch(None, jobs, [exc] * len(jobs))
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            jobs[0].loop.call_soon_threadsafe(self._finish, batch)

    def _finish(self, batch: _Batch) -> None:
        """On the event loop: resolve each request's future."""
        _resolve(batch, self._on_batch)


def _resolve(batch: _Batch, on_batch: Callable[[int], None] | None) -> None:
    """Resolve each request's future with its outcome (both batchers, on the event loop)."""
    for job, outcome in zip(batch.jobs, batch.outcomes, strict=True):
        if job.future.done():
            continue
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            assert batch.model is not None
            job.future.set_result(Result(batch.model, *outcome))
    if on_batch is not None:
        on_batch(sum(len(j.texts) for j in batch.jobs))


class LoopBatcher:
    """`MicroBatcher` for a model scored in a child process (`service.scorer`): the batching runs
    on the event loop itself, with no thread and so no GIL hand-offs.

    Requests whose handlers run in the same loop iteration share a batch; while a batch is in the
    child, the next requests queue here and go together as soon as it answers. So the loop parses
    and answers requests while the child computes, instead of taking turns with it."""

    def __init__(
        self,
        holder: ModelHolder,
        *,
        channel: int = 0,
        max_batch_texts: int = 1024,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._holder = holder
        self._channel = channel
        self._max_batch_texts = max_batch_texts
        self._on_batch = on_batch
        self._pending: collections.deque[_Job] = collections.deque()
        self._drain_task: asyncio.Task[None] | None = None
        self._closed = False

    async def predict(self, texts: list[str], top_k: int) -> Result:
        """Predictions for `texts` in order, from whichever batch they end up in."""
        if self._closed:
            raise NotReady("the service is shutting down; retry on another instance")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append(_Job(texts, top_k, future, loop))
        if self._drain_task is None:
            # A task, not a direct call: it starts after the handlers already scheduled in this
            # iteration, so their requests join the first batch.
            self._drain_task = loop.create_task(self._drain())
        return await future

    async def aclose(self) -> None:
        """Refuse new work and finish what is queued."""
        self._closed = True
        if self._drain_task is not None:
            await asyncio.shield(self._drain_task)

    async def _drain(self) -> None:
        try:
            while self._pending:
                jobs = self._take()
                if jobs:
                    await self._run(jobs)
        finally:
            self._drain_task = None

    def _take(self) -> list[_Job]:
        """Queued requests up to `max_batch_texts` texts (at least one; never split), skipping
        those whose client went away."""
        jobs: list[_Job] = []
        n_texts = 0
        while self._pending:
            job = self._pending[0]
            if not job.future.done():
                if jobs and n_texts + len(job.texts) > self._max_batch_texts:
                    break
                jobs.append(job)
                n_texts += len(job.texts)
            self._pending.popleft()
        return jobs

    async def _run(self, jobs: list[_Job]) -> None:
        predictor = self._holder.predictor  # read once: the whole batch uses one model
        assert isinstance(predictor, ProcessPredictor)  # Lanes gives the others a MicroBatcher
        # The child scores a failing request alone (`score_jobs`), so errors come per request.
        try:
            outcomes = await predictor.apredict([(j.texts, j.top_k) for j in jobs], self._channel)
            batch = _Batch(predictor.ref, jobs, outcomes)
        except ScorerDied as exc:
            batch = _Batch(None, jobs, [NotReady(str(exc))] * len(jobs))
        except Exception as exc:  # the child could not run the batch at all: a bug
            batch = _Batch(None, jobs, [exc] * len(jobs))
        _resolve(batch, self._on_batch)

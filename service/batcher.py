"""The batcher: request handlers put their texts here and await a `Result`.

It runs on the event loop, whatever the scorer (`service.scoring`). Requests whose handlers run
in the same loop iteration share a batch; while a batch is with the scorer, the next requests
queue, and go together as soon as it answers. So the loop keeps parsing and answering requests
while the model computes, a lone request is sent at once, and under load the fixed cost of a
scorer call (vectorizer setup, torch dispatch, a hand-off) is paid once per batch.

Two lanes, so that one huge request cannot hold up everybody else's small ones: a request of 256
texts of 30,000 characters keeps a scorer busy for about half a second. Requests with more than
`bulk_chars` characters in total go to the bulk lane, which has its own thread or channel in the
scorer. A whole request always runs in one scorer call, on one model, in one lane.

Each batch reads the `ModelHolder` once, so a hot reload swaps the model while a running batch
finishes on the old one, and every response names the model (`ModelRef`) that produced it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.errors import NotReady
from service.holder import ModelHolder
from service.scoring import LANES, Outcome, ScorerUnavailable
from textclf.schemas import ModelRef

# About 7 ms of tokenizing and inference on one core (~15 M characters/s measured): below that, a
# request costs the others no more than the batching already does.
BULK_CHARS = 100_000


class Result:
    """One request's answer: the model that produced it, the top label of each text, and the
    predictions already serialised as the JSON array the response carries (serialised where
    they were computed: with a child-process scorer, off the event loop)."""

    __slots__ = ("labels", "model", "predictions_json")

    def __init__(self, model: ModelRef, labels: list[str], predictions_json: bytes) -> None:
        self.model = model
        self.labels = labels
        self.predictions_json = predictions_json


class Batcher:
    """`predict` and `aclose` over two lanes (small and bulk requests)."""

    def __init__(
        self,
        holder: ModelHolder,
        *,
        max_batch_texts: int = 1024,
        max_wait_s: float = 0.0,
        bulk_chars: int = BULK_CHARS,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._bulk_chars = bulk_chars
        small = _Lane(holder, 0, max_batch_texts, max_wait_s, on_batch)
        # The bulk lane never waits to fill a batch: its requests are worth running at once.
        bulk = _Lane(holder, 1, max_batch_texts, 0.0, on_batch)
        self.lanes = (small, bulk)
        assert len(self.lanes) == LANES

    async def predict(self, texts: list[str], top_k: int, *, explain_terms: int = 0) -> Result:
        """Predictions for `texts` in order, from whichever batch of the lane their total size
        picks they end up in; with `explain_terms` > 0, each explained by that many terms."""
        lane = self.lanes[1] if sum(map(len, texts)) > self._bulk_chars else self.lanes[0]
        return await lane.predict(texts, top_k, explain_terms)

    async def aclose(self) -> None:
        """Refuse new work (from now on, not once this coroutine first yields) and finish what
        both lanes have queued."""
        for lane in self.lanes:
            lane.closed = True
        await asyncio.gather(*(lane.drained() for lane in self.lanes))


@dataclass(slots=True)
class _Job:
    texts: list[str]
    top_k: int
    explain_terms: int
    future: asyncio.Future[Result]


class _Lane:
    """One queue and at most one batch with the scorer at a time."""

    def __init__(
        self,
        holder: ModelHolder,
        index: int,
        max_batch_texts: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None,
    ) -> None:
        self._holder = holder
        self.index = index
        self._max_batch_texts = max_batch_texts
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._pending: collections.deque[_Job] = collections.deque()
        self._arrived = asyncio.Event()
        self._expected = 1  # requests in the previous batch
        self._drain_task: asyncio.Task[None] | None = None
        self.closed = False

    async def predict(self, texts: list[str], top_k: int, explain_terms: int) -> Result:
        if self.closed:
            raise NotReady("the service is shutting down; retry on another instance")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append(_Job(texts, top_k, explain_terms, future))
        self._arrived.set()
        if self._drain_task is None:
            # A task, not a direct call: it starts after the handlers already scheduled in this
            # iteration, so their requests join the first batch.
            self._drain_task = loop.create_task(self._drain())
        return await future

    async def drained(self) -> None:
        if self._drain_task is not None:
            await asyncio.shield(self._drain_task)

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._gather()
                jobs = self._take()
                if jobs:
                    await self._run(jobs)
        finally:
            self._drain_task = None

    async def _gather(self) -> None:
        """If the previous batch had more requests than are queued now, their clients are
        probably about to send their next ones: wait up to `max_wait_s` for as many. A lone
        client never waits (its previous batch had one request)."""
        if self._max_wait_s <= 0 or self.closed:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        while len(self._pending) < self._expected and loop.time() < deadline:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._arrived.wait()

    def _take(self) -> list[_Job]:
        """Queued requests up to `max_batch_texts` texts (at least one; never split), skipping
        those whose client went away (their future was cancelled)."""
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
        if jobs:
            self._expected = len(jobs)
        return jobs

    async def _run(self, jobs: list[_Job]) -> None:
        scorer = self._holder.scorer  # read once: the whole batch uses one model
        n_labels = len(scorer.labels)  # a top_k above it means all labels, for any scorer
        outcomes: Sequence[Outcome]
        try:
            batch = [(j.texts, min(j.top_k, n_labels), j.explain_terms) for j in jobs]
            outcomes = await scorer.score(batch, self.index)
        except ScorerUnavailable as exc:
            outcomes = [NotReady(str(exc))] * len(jobs)
        except Exception as exc:  # scorers catch per job: this is a bug; fail the batch
            outcomes = [exc] * len(jobs)
        try:
            for job, outcome in zip(jobs, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, Exception):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(Result(scorer.ref, *outcome))
            if self._on_batch is not None:
                self._on_batch(sum(len(j.texts) for j in jobs))
        finally:  # a bug above must not leave a request waiting for ever
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(RuntimeError("the batch's results were lost"))

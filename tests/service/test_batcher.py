"""The batcher, over a thread scorer whose model's calls the test controls step by step."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import TypeAdapter

from service.batcher import Batcher, Result
from service.errors import NotReady
from service.holder import ModelHolder
from service.scoring import ThreadScorer
from textclf.schemas import LabelScore, ModelRef, Prediction

pytestmark = pytest.mark.anyio


class FakeModel:
    """Scores each text by its length; `gate` holds a call until the test releases it."""

    labels = ("short", "long")
    info = None

    def __init__(self, version: str = "v1", *, gated: bool = False) -> None:
        self.ref = ModelRef(name="fake", version=version)
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not gated:
            self.gate.set()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        self.gate.wait()
        if "explode" in texts:
            raise ValueError("cannot classify 'explode'")
        return _scores(texts)


def _expected(texts: Sequence[str], top_k: int) -> list[Prediction]:
    out = []
    for row in _scores(texts).tolist():
        ranked = sorted(zip(FakeModel.labels, row, strict=True), key=lambda p: -p[1])[:top_k]
        top = [LabelScore(label=label, score=score) for label, score in ranked]
        out.append(Prediction(label=top[0].label, score=top[0].score, top_k=top))
    return out


PREDICTIONS = TypeAdapter(list[Prediction])


def _predictions(result: Result) -> list[Prediction]:
    return PREDICTIONS.validate_json(result.predictions_json)


def _scores(texts: Sequence[str]) -> np.ndarray:
    long = np.array([min(len(t), 10) / 10 for t in texts])
    return np.stack([1 - long, long], axis=1)


def _batcher(model: FakeModel, **kwargs: object) -> Batcher:
    return Batcher(ModelHolder(ThreadScorer(model)), **kwargs)  # type: ignore[arg-type]


async def _entered(model: FakeModel) -> None:
    await asyncio.to_thread(model.entered.wait)
    model.entered.clear()


async def test_requests_arriving_during_a_call_share_the_next_one() -> None:
    predictor = FakeModel(gated=True)
    batches: list[int] = []
    batcher = _batcher(predictor, on_batch=batches.append)
    first = asyncio.ensure_future(batcher.predict(["a"], 1))
    await _entered(predictor)  # the first call is running and blocked
    waiting = [asyncio.ensure_future(batcher.predict([f"text {i}", "x" * i], 2)) for i in range(5)]
    await asyncio.sleep(0)
    predictor.gate.set()
    results = await asyncio.gather(first, *waiting)

    assert predictor.calls[0] == ["a"]
    assert len(predictor.calls) == 2, "the five queued requests went in one call"
    assert batches == [1, 10]
    for i, result in enumerate(results[1:]):
        texts = [f"text {i}", "x" * i]
        assert _predictions(result) == _expected(texts, 2)
    await batcher.aclose()


async def test_a_lone_request_is_dispatched_immediately() -> None:
    predictor = FakeModel()
    batcher = _batcher(predictor)

    result = await batcher.predict(["hello world"], 1)

    assert result.model == predictor.ref
    assert _predictions(result)[0].label == "long"
    await batcher.aclose()


async def test_batches_respect_max_batch_texts_but_never_split_a_request() -> None:
    predictor = FakeModel(gated=True)
    batcher = _batcher(predictor, max_batch_texts=4)
    first = asyncio.ensure_future(batcher.predict(["a"], 1))
    await _entered(predictor)
    queued = [asyncio.ensure_future(batcher.predict(["b"] * n, 1)) for n in (3, 2, 6, 1)]
    await asyncio.sleep(0)
    predictor.gate.set()
    await asyncio.gather(first, *queued)

    assert [len(c) for c in predictor.calls] == [1, 3, 2, 6, 1]
    await batcher.aclose()


async def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    predictor = FakeModel(gated=True)
    batcher = _batcher(predictor)
    first = asyncio.ensure_future(batcher.predict(["a"], 1))
    await _entered(predictor)
    good = asyncio.ensure_future(batcher.predict(["fine"], 1))
    bad = asyncio.ensure_future(batcher.predict(["explode"], 1))
    await asyncio.sleep(0)
    predictor.gate.set()
    await first

    assert _predictions(await good)[0].label == "short"
    with pytest.raises(ValueError, match="explode"):
        await bad
    await batcher.aclose()


async def test_cancelled_requests_are_skipped() -> None:
    predictor = FakeModel(gated=True)
    batcher = _batcher(predictor)
    first = asyncio.ensure_future(batcher.predict(["a"], 1))
    await _entered(predictor)
    abandoned = asyncio.ensure_future(batcher.predict(["abandoned"], 1))
    kept = asyncio.ensure_future(batcher.predict(["kept"], 1))
    await asyncio.sleep(0)
    abandoned.cancel()
    predictor.gate.set()
    await asyncio.gather(first, kept)

    assert predictor.calls == [["a"], ["kept"]]
    await batcher.aclose()


async def test_swapping_the_model_lets_in_flight_work_finish_on_the_old_one() -> None:
    old, new = FakeModel("v1", gated=True), FakeModel("v2")
    holder = ModelHolder(ThreadScorer(old))  # type: ignore[arg-type]
    batcher = Batcher(holder)
    in_flight = asyncio.ensure_future(batcher.predict(["a"], 1))
    await _entered(old)
    assert holder.swap(ThreadScorer(new)).ref == old.ref  # type: ignore[arg-type]
    queued = asyncio.ensure_future(batcher.predict(["b"], 1))
    await asyncio.sleep(0)
    old.gate.set()

    assert (await in_flight).model.version == "v1"
    assert (await queued).model.version == "v2"
    await batcher.aclose()


async def test_close_finishes_queued_work_and_refuses_new_work() -> None:
    predictor = FakeModel(gated=True)
    batcher = _batcher(predictor)
    running = asyncio.ensure_future(batcher.predict(["a"], 1))
    await _entered(predictor)
    queued = asyncio.ensure_future(batcher.predict(["b"], 1))
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(batcher.aclose())
    await asyncio.sleep(0)

    with pytest.raises(NotReady, match="shutting down"):
        await batcher.predict(["c"], 1)
    predictor.gate.set()
    await closing
    assert _predictions(await running)
    assert _predictions(await queued)
    assert predictor.calls == [["a"], ["b"]]


async def test_under_load_a_batch_waits_for_as_many_requests_as_the_last_one() -> None:
    predictor = FakeModel(gated=True)
    batcher = _batcher(predictor, max_wait_s=60.0)
    first = asyncio.ensure_future(batcher.predict(["a"], 1))
    await _entered(predictor)
    burst = [asyncio.ensure_future(batcher.predict([f"b{i}"], 1)) for i in range(3)]
    await asyncio.sleep(0)
    predictor.gate.set()
    await asyncio.gather(first, *burst)  # batches: [a], then the burst of three

    stragglers = []
    for i in range(3):  # one at a time, each after the worker has started waiting
        stragglers.append(asyncio.ensure_future(batcher.predict([f"c{i}"], 1)))
        await asyncio.sleep(0.01)
    await asyncio.gather(*stragglers)

    assert predictor.calls == [["a"], ["b0", "b1", "b2"], ["c0", "c1", "c2"]]
    await batcher.aclose()


async def test_a_lone_client_never_waits() -> None:
    predictor = FakeModel()
    batcher = _batcher(predictor, max_wait_s=3600.0)  # would time the test out if it waited

    for i in range(5):
        await batcher.predict([f"text {i}"], 1)

    assert len(predictor.calls) == 5
    await batcher.aclose()

"""Many simultaneous requests over real HTTP: all answered, each exactly as the in-process model."""

from __future__ import annotations

import asyncio

import pytest

from service.testing import LiveServer
from textclf.client import AsyncClient
from textclf.predictor import Predictor
from textclf.schemas import Prediction

pytestmark = pytest.mark.anyio

WORDS = [
    "rocket",
    "orbit",
    "pitcher",
    "inning",
    "shader",
    "polygon",
    "nasa",
    "baseball",
    "render",
    "moon",
    "bat",
    "pixel",
]


def _text(i: int) -> str:
    return " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 5))


def _assert_same(got: list[Prediction], expected: list[Prediction]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.label == e.label
        assert g.score == pytest.approx(e.score, abs=1e-6)
        assert [s.label for s in g.top_k] == [s.label for s in e.top_k]
        assert [s.score for s in g.top_k] == pytest.approx([s.score for s in e.top_k], abs=1e-6)


async def test_fifty_simultaneous_requests(server: LiveServer, predictor: Predictor) -> None:
    texts = [_text(i) for i in range(50)]
    async with AsyncClient(server.url, timeout=60) as client:
        results = await asyncio.gather(*(client.predict(t) for t in texts))

    _assert_same(results, predictor.predict(texts))


async def test_mixed_sizes_and_top_k_in_flight_together(
    server: LiveServer, predictor: Predictor
) -> None:
    """Requests micro-batched together are split back correctly, each with its own top_k."""
    requests = [([_text(i + j) for j in range(1 + i % 4)], 1 + i % 3) for i in range(40)]
    async with AsyncClient(server.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.predict_response(texts, top_k=k) for texts, k in requests)
        )

    for (texts, k), response in zip(requests, responses, strict=True):
        assert response.model == predictor.ref
        _assert_same(response.predictions, predictor.predict(texts, top_k=k))

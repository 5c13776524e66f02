"""Slow clients and huge requests do not hold up everybody else: a trickled body gets 408 with a
message, half-sent headers (slowloris) tie up only their own connection, and while a huge
request is being classified, small ones are still answered."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.batcher import BULK_CHARS
from service.scoring import ThreadScorer
from service.settings import Settings
from service.testing import LiveServer
from tests.service.faults import GatedPredictor
from textclf.predictor import Predictor
from textclf.schemas import ErrorResponse, PredictResponse

SMALL = {"texts": ["the rocket reached orbit"]}


def _open(server: LiveServer, data: bytes) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=60)
    sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _served(http: httpx.Client, n: int = 5) -> list[int]:
    return [http.post("/v1/predict", json=SMALL).status_code for _ in range(n)]


@pytest.fixture
def slow_server(settings: Settings, predictor: Predictor) -> Iterator[LiveServer]:
    quick = settings.model_copy(update={"body_timeout_s": 1.0})
    with LiveServer(create_app(quick, scorer=ThreadScorer(predictor))) as server:
        yield server


def test_a_trickled_body_gets_408_and_others_are_served_meanwhile(
    slow_server: LiveServer,
) -> None:
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    slow = _open(slow_server, head + b'{"texts": ["a')  # ...and the rest never comes
    with httpx.Client(base_url=slow_server.url, timeout=30) as http:
        assert _served(http) == [200] * 5
        with slow:
            answer = _read_all(slow)
        assert _served(http) == [200] * 5

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    error = ErrorResponse.model_validate_json(rest.partition(b"\r\n\r\n")[2]).error
    assert error.type == "request_timeout"
    assert "the request body did not arrive within 1s" in error.message


def test_half_sent_headers_tie_up_only_their_own_connections(server: LiveServer) -> None:
    """uvicorn has no header timeout: such connections stay open (put a proxy with one in front
    when clients are hostile), but they cost the other clients nothing."""
    half = b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nX-Slow"
    lingering = [_open(server, half) for _ in range(50)]
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert _served(http, 20) == [200] * 20
    finally:
        for sock in lingering:
            sock.close()


@pytest.mark.anyio
async def test_small_requests_are_answered_while_a_huge_one_is_classified(
    trained_model_dir: Path, predictor: Predictor
) -> None:
    gated = GatedPredictor(predictor, hold=lambda texts: sum(map(len, texts)) > BULK_CHARS)
    huge = {"texts": [f"orbit {i} " * 3_000 for i in range(256)], "top_k": 2}  # ~7 MB
    settings = Settings(model_path=trained_model_dir, torch_threads=None)
    assert len(json.dumps(huge)) < settings.max_body_bytes
    app = create_app(settings, scorer=ThreadScorer(gated))  # type: ignore[arg-type]
    with LiveServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            in_flight = asyncio.ensure_future(http.post("/v1/predict", json=huge))
            await asyncio.to_thread(gated.entered.wait, 60)  # the huge one is being classified
            small = await asyncio.gather(*(http.post("/v1/predict", json=SMALL) for _ in range(10)))
            huge_still_running = not in_flight.done()
            gated.gate.set()
            answer = await in_flight

    assert [r.status_code for r in small] == [200] * 10
    assert huge_still_running
    assert answer.status_code == 200
    assert len(PredictResponse.model_validate_json(answer.content).predictions) == 256

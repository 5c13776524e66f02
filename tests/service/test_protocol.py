"""The coalescing HTTP protocol: a response's headers and small body leave in one write, and
nothing about the bytes on the wire changes (order, keep-alive, pipelining, large and streamed
bodies)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from service.protocol import HOLD_BYTES, CoalescingTransport
from service.testing import LiveServer


class Recorder:
    """A transport that records each write it is given (one entry per system call it would
    make)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, lines: list[bytes]) -> None:
        self.writes.append(b"".join(lines))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def _turn() -> None:
    """Let the event loop finish its current turn (and run what that turn scheduled)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _coalescing() -> tuple[CoalescingTransport, Recorder]:
    recorder = Recorder()
    return CoalescingTransport(recorder, asyncio.get_running_loop()), recorder  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_headers_and_body_written_in_one_turn_leave_in_one_write() -> None:
    transport, recorder = _coalescing()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await _turn()
    assert len(recorder.writes) == 1  # nothing left over for the end of the turn


@pytest.mark.anyio
async def test_a_lone_small_write_is_sent_at_the_end_of_the_turn() -> None:
    transport, recorder = _coalescing()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert recorder.writes == []
    await _turn()
    assert recorder.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


@pytest.mark.anyio
async def test_a_large_write_is_never_held() -> None:
    transport, recorder = _coalescing()
    big = b"x" * (HOLD_BYTES + 1)
    transport.write(big)
    assert recorder.writes == [big]


@pytest.mark.anyio
async def test_close_sends_what_is_held_first() -> None:
    transport, recorder = _coalescing()
    transport.write(b"bye")
    transport.close()
    assert recorder.writes == [b"bye"] and recorder.closed
    await _turn()
    assert recorder.writes == [b"bye"]  # the scheduled flush finds nothing more to send


@pytest.mark.anyio
async def test_nothing_is_written_to_a_closed_connection() -> None:
    transport, recorder = _coalescing()
    transport.write(b"late")
    recorder.closed = True  # the peer went away before the end of the turn
    await _turn()
    assert recorder.writes == []


@pytest.mark.anyio
async def test_other_calls_reach_the_real_transport() -> None:
    transport, _ = _coalescing()
    assert transport.get_extra_info("peername") == "info:peername"
    assert transport.is_closing() is False


async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="text/plain")


@pytest.fixture(scope="module")
def plain_server() -> Iterator[LiveServer]:
    """A small Starlette app behind `LiveServer`, which runs the coalescing protocol."""
    app = Starlette(
        routes=[
            Route("/small", lambda r: PlainTextResponse("ok")),
            Route("/large", lambda r: PlainTextResponse("y" * (3 * HOLD_BYTES))),
            Route("/stream", _stream),
            Route("/empty", lambda r: Response(status_code=204)),
        ]
    )
    with LiveServer(app) as server:
        yield server


def test_responses_of_every_shape_arrive_whole(plain_server: LiveServer) -> None:
    with httpx.Client(base_url=plain_server.url, timeout=10) as http:  # one kept-alive connection
        for _ in range(3):
            assert http.get("/small").text == "ok"
            assert http.get("/large").text == "y" * (3 * HOLD_BYTES)
            assert http.get("/stream").text == "".join(f"chunk {i}\n" for i in range(5))
            assert http.get("/empty").status_code == 204
            assert http.head("/small").status_code == 200


def test_pipelined_requests_are_answered_in_order(plain_server: LiveServer) -> None:
    request = b"GET /small HTTP/1.1\r\nHost: x\r\n\r\nGET /large HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", plain_server.port), timeout=10) as sock:
        sock.sendall(request)
        received = _read_until(sock, b"y" * (3 * HOLD_BYTES))
    first, _, rest = received.partition(b"\r\n\r\nok")
    assert first.startswith(b"HTTP/1.1 200 OK") and b"content-length: 2" in first
    assert rest.startswith(b"HTTP/1.1 200 OK")
    assert rest.endswith(b"y" * (3 * HOLD_BYTES))


def _read_until(sock: socket.socket, ending: bytes) -> bytes:
    data = b""
    while not data.endswith(ending):
        chunk = sock.recv(1 << 16)
        assert chunk, f"connection closed after {len(data)} bytes"
        data += chunk
    return data

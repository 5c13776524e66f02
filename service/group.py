"""A worker's end of the control pipe to `textclf serve --workers N`'s supervisor.

The supervisor (`service.supervisor`) and each worker exchange small tuples over a
`multiprocessing` pipe, read on the worker's event loop (`add_reader`), never on a thread:

    worker -> supervisor   ("ready",)                      the lifespan has started
                           ("reload", request_id)          a reload was asked of this worker
                           ("prepared", ok, detail, version)
                           ("committed", response)         a `ReloadResponse` as JSON data
    supervisor -> worker   ("prepare",) ("commit",) ("abort",)
                           ("reloaded", request_id, ok, response or message)

If the supervisor goes away (the pipe closes), the worker stops itself gracefully with SIGTERM,
so killing the supervisor never leaves workers serving on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from service.errors import ReloadFailed
from service.reload import Reloader
from textclf.schemas import ReloadResponse

logger = logging.getLogger("textclf.service")

# How long the supervisor waits for each phase of a reload (workers starting, prepare, commit);
# loading the default 20-label model takes a few seconds.
RELOAD_TIMEOUT_S = 60.0

Message = tuple[Any, ...]


class WorkerChannel:
    """Sends this worker's reloads to the supervisor and runs the phases it asks for."""

    def __init__(self, conn: Connection, *, index: int, metrics_dir: Path | None) -> None:
        self.index = index
        self.metrics_dir = metrics_dir  # this run's PROMETHEUS_MULTIPROC_DIR
        self._conn = conn
        self._reloader: Reloader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._next_request = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, reloader: Reloader) -> None:
        """Start taking the supervisor's messages on this event loop, and say we are ready."""
        self._loop, self._reloader = asyncio.get_running_loop(), reloader
        self._loop.add_reader(self._conn.fileno(), self._on_readable)
        self._send(("ready",))

    async def aclose(self) -> None:
        """Stop reading; a phase already running finishes first (no scorer is left loaded)."""
        if self._loop is not None:
            self._loop.remove_reader(self._conn.fileno())
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for future in self._waiting.values():
            if not future.done():
                future.set_result((False, "the server is stopping; the reload did not finish"))

    async def reload(self) -> ReloadResponse:
        """Ask the supervisor to reload every worker; returns once all serve the new model."""
        assert self._loop is not None, "attach() first"
        self._next_request += 1
        request = self._next_request
        future = self._waiting[request] = self._loop.create_future()
        try:
            self._send(("reload", request))
            ok, payload = await asyncio.wait_for(future, 3 * RELOAD_TIMEOUT_S + 5)
        except TimeoutError:
            raise ReloadFailed("the supervisor did not answer; see the server log") from None
        finally:
            self._waiting.pop(request, None)
        if not ok:
            raise ReloadFailed(str(payload))
        return ReloadResponse.model_validate(payload)

    def _on_readable(self) -> None:
        try:
            while self._conn.poll():
                self._dispatch(self._conn.recv())
        except (EOFError, OSError):
            logger.error("the supervisor has gone; stopping this worker")
            assert self._loop is not None
            self._loop.remove_reader(self._conn.fileno())
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown

    def _dispatch(self, message: Message) -> None:
        reloader = self._reloader
        assert reloader is not None
        kind = message[0]
        if kind == "reloaded":
            future = self._waiting.get(message[1])
            if future is not None and not future.done():
                future.set_result((message[2], message[3]))
        elif kind == "prepare":
            task = asyncio.get_running_loop().create_task(self._prepare(reloader))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "commit":
            self._send(("committed", reloader.commit().model_dump(mode="json")))
        elif kind == "abort":
            reloader.abort()

    async def _prepare(self, reloader: Reloader) -> None:
        try:
            ref = await reloader.prepare()
        except ReloadFailed as exc:
            self._send(("prepared", False, exc.message, None))
        else:
            self._send(("prepared", True, None, ref.version))

    def _send(self, message: Message) -> None:
        with contextlib.suppress(OSError):  # the supervisor has gone: _on_readable stops us
            self._conn.send(message)

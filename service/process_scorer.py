"""`ProcessScorer`: the model in a child process, so its work runs beside the event loop.

In one process, TF-IDF counting and torch's dispatch hold the GIL, so the event loop (parsing
requests, writing responses) and the model take turns on one core: with 8 connections a worker
managed about half the requests/s of a bare FastAPI app. Here the event loop writes a batch to a
socket and goes on parsing the next requests until the answer arrives (as BentoML's runners and
TorchServe's workers split serving from inference). The worker itself needs neither torch nor
scikit-learn.

The child loads and verifies the artifact itself and reports a broken one as the same
`ArtifactError`. There is one channel per batcher lane, each served by its own thread in the
child, so a huge request never holds up the small ones. A channel's streams are attached to the
event loop once, in `start` (or when a replacement child starts), never lazily by whichever call
comes first. If the child dies, the batch it held fails with `ScorerUnavailable` and the next
batch starts a fresh child. Frames are described in `service.frames`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import multiprocessing
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from pathlib import Path

from service import frames
from service.encoding import PredictionsJSON
from service.scoring import LANES, Job, Kind, Model, Outcome, ScorerUnavailable, score_jobs
from textclf.errors import ArtifactError
from textclf.schemas import ModelInfo, ModelRef

logger = logging.getLogger("textclf.service")

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ProcessScorer:
    """A model served from a child process. Creating one starts the child and waits until the
    model is loaded (or raises `ArtifactError` with the loader's message); `start` attaches it
    to the event loop."""

    kind: Kind = "process"
    shares_the_gil = False

    def __init__(self, path: Path | str, *, device: str = "cpu", threads: int | None = 1) -> None:
        self._args = (str(path), device, threads)
        self._child: _Child | None = _Child(*self._args)
        self.info: ModelInfo = self._child.info
        self.labels: tuple[str, ...] = tuple(self.info.labels)
        self.ref = ModelRef(name=self.info.name, version=self.info.version)
        self._busy = 0
        self._closing = False
        self._lock = asyncio.Lock()  # attaching or replacing the child: one at a time

    @property
    def pid(self) -> int | None:
        """The child's process id (None once stopped)."""
        return self._child.process.pid if self._child is not None else None

    async def start(self) -> None:
        async with self._lock:
            if self._child is not None and not self._child.attached:
                await self._child.attach()

    async def score(self, jobs: list[Job], lane: int) -> list[Outcome]:
        """Scored and serialised in the child, in one batch. Callers keep at most one batch in
        flight per lane (the batcher's lanes do)."""
        if self._closing:
            raise ScorerUnavailable("this model was replaced or the server is stopping; retry")
        request = frames.encode_jobs(jobs)
        child = await self._live_child()
        self._busy += 1
        try:
            reply = await child.call(lane, request)
        finally:
            self._busy -= 1
            if self._closing and self._busy == 0:
                self._stop(wait=False)
        return frames.decode_reply(reply)

    def close(self, *, wait: bool = False) -> None:
        self._closing = True
        if self._busy == 0:
            self._stop(wait=wait)

    async def _live_child(self) -> _Child:
        """The child, or a new one if it died (started on a thread: it takes a second or two)."""
        if self._child is not None and not self._child.broken:
            return self._child
        async with self._lock:
            if self._child is None or self._child.broken or not self._child.process.is_alive():
                self._child = await self._replacement()
            return self._child

    async def _replacement(self) -> _Child:
        if self._child is not None:
            self._child.stop(wait=False)
        logger.warning("the scoring process stopped; starting a new one")
        try:
            child = await asyncio.to_thread(_Child, *self._args)
        except Exception as exc:
            logger.error("cannot start a new scoring process: %s", exc)
            raise ScorerUnavailable("the model is unavailable; see the server log") from None
        if child.info.version != self.info.version:
            child.stop(wait=False)  # the folder changed under us: a reload's job
            logger.error("the model folder changed: reload the server to serve it")
            raise ScorerUnavailable("the model is unavailable; see the server log")
        await child.attach()
        return child

    def _stop(self, *, wait: bool = True) -> None:
        if self._child is not None:
            self._child.stop(wait=wait)
            self._child = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._stop(wait=False)


class _Child:
    """One child process and the parent's ends of its channels."""

    def __init__(self, path: str, device: str, threads: int | None) -> None:
        # spawn, not fork: a forked copy of a process that has started threads (uvicorn, torch)
        # can deadlock, and CUDA cannot be used after fork.
        context = multiprocessing.get_context("spawn")
        pairs = [socket.socketpair() for _ in range(LANES)]
        self.process: BaseProcess = context.Process(
            target=_child_main,
            args=([theirs for _, theirs in pairs], path, device, threads),
            name="textclf-scorer",
            daemon=True,
        )
        self.process.start()
        for _, theirs in pairs:
            theirs.close()
        self.broken = False
        self._sockets = [ours for ours, _ in pairs]
        self._streams: list[Streams] | None = None
        self.info = self._handshake(self._sockets[0])

    @property
    def attached(self) -> bool:
        return self._streams is not None

    async def attach(self) -> None:
        """Give each channel's socket to the running event loop, once (the caller holds
        `ProcessScorer._lock`): a second registration of a socket fails with EEXIST."""
        if self._streams is not None:
            raise RuntimeError("the scoring process's channels are attached already")
        self._streams = [await asyncio.open_connection(sock=s) for s in self._sockets]

    def _handshake(self, sock: socket.socket) -> ModelInfo:
        try:
            reply = json.loads(frames.recv(sock))
        except (EOFError, OSError):
            self.stop()
            raise RuntimeError(
                f"the scoring process exited (code {self.process.exitcode}) before loading "
                "the model; see the log above"
            ) from None
        if reply[0] == "ok":
            return ModelInfo.model_validate_json(reply[1])
        self.stop()
        raise (ArtifactError if reply[1] == "ArtifactError" else RuntimeError)(reply[2])

    async def call(self, lane: int, request: bytes) -> bytes:
        if self._streams is None:
            raise RuntimeError("ProcessScorer.start() must be awaited before scoring")
        reader, writer = self._streams[lane]
        try:
            writer.write(frames.U64.pack(len(request)) + request)
            await writer.drain()
            (size,) = frames.U64.unpack(await reader.readexactly(frames.U64.size))
            return await reader.readexactly(size)
        except (EOFError, OSError, asyncio.IncompleteReadError):
            self.broken = True
            await asyncio.to_thread(self.process.join, 1)  # never block the loop on it
            raise ScorerUnavailable(
                f"the scoring process stopped (exit code {self.process.exitcode}) while "
                "running this request; retry, a new one is starting"
            ) from None

    def stop(self, *, wait: bool = True) -> None:
        """Shut our ends (the child sees EOF and exits), then reap it, here or on a thread.

        Attached sockets belong to their transports (asyncio's rule for `sock=`): they are shut
        down here, so the child sees EOF at once, and closed by their transports."""
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            if self._streams is None:
                sock.close()
        for writer in [w for _, w in self._streams or []]:
            writer.close()
        if wait:
            self._reap()
        else:  # e.g. after a reload: the event loop must not wait for the old child
            threading.Thread(target=self._reap, name="textclf-reap", daemon=True).start()

    def _reap(self) -> None:
        self.process.join(timeout=10)
        if self.process.is_alive():
            logger.warning("the scoring process did not exit; killing it")
            self.process.kill()
            self.process.join()


def _child_main(channels: list[socket.socket], path: str, device: str, threads: int | None) -> None:
    """The child process's entry point: load the model, say so, then answer each channel on
    its own thread."""
    for name in ("SIGINT", "SIGHUP"):  # the parent decides when to stop (Ctrl-C reaches us too)
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    import textclf

    try:
        predictor = textclf.load(path, device=device, threads=threads)
    except Exception as exc:
        frames.send(channels[0], json.dumps(["error", type(exc).__name__, str(exc)]).encode())
        return
    frames.send(channels[0], json.dumps(["ok", predictor.info.model_dump_json()]).encode())
    # torch and scikit-learn leave many long-lived objects; every full collection would walk
    # them all (100+ ms pauses). Frozen, only what batches allocate is collected from here on.
    gc.collect()
    gc.freeze()
    encoder = PredictionsJSON(predictor.labels)
    servers = [threading.Thread(target=_serve, args=(predictor, encoder, c)) for c in channels]
    for server in servers:
        server.start()
    for server in servers:  # each ends when the parent closes its end of the channel
        server.join()


def _serve(model: Model, encoder: PredictionsJSON, channel: socket.socket) -> None:
    while True:
        try:
            frame = frames.recv(channel)
        except (EOFError, OSError):
            return  # the parent closed the channel: stop
        try:
            reply = frames.encode_reply(score_jobs(model, encoder, frames.decode_jobs(frame)))
        except Exception as exc:
            reply = frames.encode_failure(exc)
        try:
            frames.send(channel, reply)
        except OSError:
            return

"""Scoring in a child process, so the model's work runs beside the event loop, not under its GIL.

In one process, TF-IDF counting and torch's dispatch hold the GIL, so the event loop (parsing
requests, writing responses) and the model take turns on one core, and every hand-off between
the loop and an inference thread waits for the GIL: with 8 connections a worker managed about
half the requests/s of a bare FastAPI app. `ProcessPredictor` has the predictor's metadata
(`labels`, `ref`, `info`) and `apredict`, which scores a batch in a child process: the event
loop writes the batch to a socket and goes on parsing the next requests until the answer arrives
(as BentoML's runners and TorchServe's workers split serving from inference). The worker process
itself needs neither torch nor scikit-learn.

The child loads and verifies the artifact itself and reports a broken one as the same
`ArtifactError`. The sockets carry length-prefixed frames: a batch goes as its texts' UTF-8
bytes behind a table of sizes (JSON would escape and unescape every text, ~10 us a post in the
child), and comes back as a JSON header and the predictions' JSON bytes as they will be sent.
No pickle, so nothing that arrives can run code. There is one channel per batcher
lane, each served by its own thread in the child, so a huge request never holds up the small
ones. If the child dies, the batch it held fails with a retryable error and the next batch starts
a fresh child.
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
import struct
import threading
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textclf.errors import ArtifactError
from textclf.schemas import ModelInfo, ModelRef

if TYPE_CHECKING:
    from textclf.predictor import Predictor

logger = logging.getLogger("textclf.service")

CHANNELS = 2  # the batcher's two lanes (service.lanes)
# Per job: its texts' top labels and its predictions JSON, or the error that job alone raised.
Outcome = tuple[list[str], bytes] | Exception
Outcomes = list[Outcome]
_U64 = struct.Struct("!Q")  # a payload's length, and each integer of a batch frame
# Exceptions a child may report, rebuilt by type name; anything else arrives as a RuntimeError.
_ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError}


class ScorerDied(RuntimeError):
    """The child process stopped (killed, crashed, out of memory) while holding a batch."""


class ProcessPredictor:
    """A model served from a child process. Creating one starts the child and waits until the
    model is loaded (or raises `ArtifactError` with the loader's message)."""

    def __init__(self, path: Path | str, *, device: str = "cpu", threads: int | None = 1) -> None:
        self._args = (str(path), device, threads)
        self._child: _Child | None = _Child(*self._args)
        self.info: ModelInfo = self._child.info
        self.labels: tuple[str, ...] = tuple(self.info.labels)
        self.ref = ModelRef(name=self.info.name, version=self.info.version)
        self._busy = 0
        self._closing = False
        self._restart: asyncio.Lock | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id (None once stopped)."""
        return self._child.process.pid if self._child is not None else None

    async def apredict(self, jobs: list[tuple[list[str], int]], channel: int = 0) -> Outcomes:
        """For each (texts, top_k) job: the top labels and the predictions as a JSON array,
        computed and serialised in the child, in one batch (or the error that job raised).

        Callers keep at most one batch in flight per channel (the batcher's lanes do)."""
        if self._closing:
            raise ScorerDied("this model was replaced or the server is stopping; retry")
        child = await self._live_child()
        self._busy += 1
        try:
            reply = await child.call(channel, encode_jobs(jobs))
        finally:
            self._busy -= 1
            if self._closing and self._busy == 0:
                self._stop(wait=False)
        return _decode_reply(reply)

    def close(self, *, wait: bool = False) -> None:
        """Stop the child once the batches it is running are answered (at once if idle).
        `wait`: return only once it has exited (if it was idle)."""
        self._closing = True
        if self._busy == 0:
            self._stop(wait=wait)

    async def _live_child(self) -> _Child:
        """The child, or a new one if it died (started on a thread: it takes a second or two)."""
        if self._child is not None and not self._child.broken:
            return self._child
        self._restart = self._restart or asyncio.Lock()
        async with self._restart:
            if self._child is None or self._child.broken or not self._child.process.is_alive():
                if self._child is not None:
                    self._child.stop(wait=False)
                logger.warning("the scoring process stopped; starting a new one")
                try:
                    child = await asyncio.to_thread(_Child, *self._args)
                except Exception as exc:
                    logger.error("cannot start a new scoring process: %s", exc)
                    raise ScorerDied("the model is unavailable; see the server log") from None
                if child.info.version != self.info.version:
                    child.stop(wait=False)  # the folder changed under us: a reload's job
                    logger.error("the model folder changed: reload the server to serve it")
                    raise ScorerDied("the model is unavailable; see the server log")
                self._child = child
            return self._child

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
        pairs = [socket.socketpair() for _ in range(CHANNELS)]
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
        self._streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
        self.info = self._handshake(self._sockets[0])

    def _handshake(self, sock: socket.socket) -> ModelInfo:
        try:
            reply = json.loads(_recv(sock))
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

    async def call(self, channel: int, request: bytes) -> bytes:
        if self._streams is None:  # attach to the running loop on first use
            self._streams = [await asyncio.open_connection(sock=s) for s in self._sockets]
        reader, writer = self._streams[channel]
        try:
            writer.write(_U64.pack(len(request)) + request)
            await writer.drain()
            (size,) = _U64.unpack(await reader.readexactly(_U64.size))
            reply = await reader.readexactly(size)
        except (EOFError, OSError, asyncio.IncompleteReadError):
            self.broken = True
            self.process.join(timeout=1)
            raise ScorerDied(
                f"the scoring process stopped (exit code {self.process.exitcode}) while "
                "running this request; retry, a new one is starting"
            ) from None
        return reply

    def stop(self, *, wait: bool = True) -> None:
        """Shut our ends (the child sees EOF and exits), then reap it, here or on a thread."""
        for sock in self._sockets:
            # shutdown, not just close: the event loop's transports hold their own references
            # to these sockets, and a close would only take effect on the loop's next turn.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
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


def _recv(sock: socket.socket) -> bytes:
    (size,) = _U64.unpack(_recv_exactly(sock, _U64.size))
    return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_U64.pack(len(payload)) + payload)


def _child_main(channels: list[socket.socket], path: str, device: str, threads: int | None) -> None:
    """The child process: load the model, say so, then answer each channel on its own thread."""
    for name in ("SIGINT", "SIGHUP"):  # the parent decides when to stop (Ctrl-C reaches us too)
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    import textclf

    try:
        predictor = textclf.load(path, device=device, threads=threads)
    except Exception as exc:
        _send(channels[0], json.dumps(["error", type(exc).__name__, str(exc)]).encode())
        return
    _send(channels[0], json.dumps(["ok", predictor.info.model_dump_json()]).encode())
    gc.collect()
    gc.freeze()  # as the service does: full collections would walk torch's long-lived objects
    servers = [threading.Thread(target=_serve, args=(predictor, c)) for c in channels]
    for server in servers:
        server.start()
    for server in servers:  # each ends when the parent closes its end of the channel
        server.join()


def _serve(predictor: Predictor, channel: socket.socket) -> None:
    while True:
        try:
            frame = _recv(channel)
        except (EOFError, OSError):
            return  # the parent closed the channel: stop
        try:
            reply = _encode_reply(score_jobs(predictor, decode_jobs(frame)))
        except Exception as exc:
            reply = json.dumps({"error": [type(exc).__name__, str(exc)]}).encode() + b"\n"
        try:
            _send(channel, reply)
        except OSError:
            return


def score_jobs(predictor: Predictor, jobs: list[tuple[list[str], int]]) -> Outcomes:
    """One `predict_proba` over every (texts, top_k) job's texts, then each job's top labels and
    predictions JSON. If the batch fails, each job is scored alone, so that one failing request
    does not fail the others that shared its batch. The child runs it for each batch; the thread
    scorer runs it in-process."""
    try:
        return list(_score(predictor, jobs))
    except Exception as exc:
        if len(jobs) == 1:
            return [exc]
        logger.warning("batch of %d requests failed (%s); retrying them one by one", len(jobs), exc)
        return [_score_alone(predictor, job) for job in jobs]


def _score(
    predictor: Predictor, jobs: list[tuple[list[str], int]]
) -> list[tuple[list[str], bytes]]:
    probs = predictor.predict_proba([text for texts, _ in jobs for text in texts])
    return predictor.to_json_blocks(probs, [(len(texts), top_k) for texts, top_k in jobs])


def _score_alone(predictor: Predictor, job: tuple[list[str], int]) -> Outcome:
    try:
        return _score(predictor, [job])[0]
    except Exception as exc:
        return exc


def encode_jobs(jobs: list[tuple[list[str], int]]) -> bytes:
    """A batch as one frame: the number of jobs, each job's (top_k, number of texts), each
    text's size in bytes, then the texts' UTF-8 back to back ("surrogatepass": a JSON body can
    carry lone surrogates)."""
    blobs = [text.encode("utf-8", "surrogatepass") for texts, _ in jobs for text in texts]
    words = [len(jobs)]
    for texts, top_k in jobs:
        words += (top_k, len(texts))
    words += map(len, blobs)
    return struct.pack(f"!{len(words)}Q", *words) + b"".join(blobs)


def decode_jobs(frame: bytes) -> list[tuple[list[str], int]]:
    """`encode_jobs` undone; a malformed frame raises ValueError or struct.error."""
    (n_jobs,) = _U64.unpack_from(frame)
    spec = struct.unpack_from(f"!{2 * n_jobs}Q", frame, _U64.size)
    n_texts = sum(spec[1::2])
    offset = _U64.size * (1 + 2 * n_jobs)
    sizes = struct.unpack_from(f"!{n_texts}Q", frame, offset)
    start = offset + _U64.size * n_texts
    if start + sum(sizes) != len(frame):
        raise ValueError("batch frame: the text sizes do not add up to the frame's length")
    texts = []
    for size in sizes:
        texts.append(str(frame[start : start + size], "utf-8", "surrogatepass"))
        start += size
    jobs, first = [], 0
    for top_k, count in zip(spec[::2], spec[1::2], strict=True):
        jobs.append((texts[first : first + count], top_k))
        first += count
    return jobs


def _encode_reply(outcomes: Outcomes) -> bytes:
    """A JSON line (per job: its labels and the length of its predictions JSON, or its error),
    then the predictions, back to back: they travel as they will be sent, never re-encoded."""
    header: dict[str, list[Any]] = {"labels": [], "sizes": [], "errors": []}
    bodies = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            labels, body, error = None, b"", [type(outcome).__name__, str(outcome)]
        else:
            (labels, body), error = outcome, None
        header["labels"].append(labels)
        header["sizes"].append(len(body))
        header["errors"].append(error)
        bodies.append(body)
    return b"".join([json.dumps(header).encode(), b"\n", *bodies])


def _decode_reply(reply: bytes) -> Outcomes:
    end = reply.index(b"\n")
    header = json.loads(reply[:end])
    if "error" in header:  # the child could not run the batch at all
        raise _error(*header["error"])
    outcomes: Outcomes = []
    start = end + 1
    for labels, size, error in zip(
        header["labels"], header["sizes"], header["errors"], strict=True
    ):
        outcomes.append(_error(*error) if error else (labels, reply[start : start + size]))
        start += size
    return outcomes


def _error(kind: str, message: str) -> Exception:
    return _ERRORS.get(kind, RuntimeError)(message)
